#include "src/api/api_options.h"

#include <unistd.h>

#include <cmath>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "src/core/status_macros.h"

namespace dsinfer::api_internal {
namespace {

namespace fs = std::filesystem;

absl::Status Invalid(absl::string_view field, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", what));
}

template <typename T>
absl::Status InRange(absl::string_view field, T value, T lo, T hi) {
  if (value >= lo && value <= hi) return absl::OkStatus();
  return Invalid(field, absl::StrCat(value, " is not in [", lo, ", ", hi, "]"));
}

absl::Status CheckModelPath(const std::string& path) {
  if (path.empty()) return Invalid("model_path", "must name a model directory");
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (!fs::exists(st)) {
    return absl::NotFoundError(absl::StrCat("model_path: ", path, " does not exist"));
  }
  if (!fs::is_directory(st))
    return Invalid("model_path", absl::StrCat(path, " is not a directory"));
  return absl::OkStatus();
}

absl::Status CheckParallel(const api::ParallelOptions& p) {
  RETURN_IF_ERROR(InRange("parallel.tp", p.tp, 1, 1024));
  RETURN_IF_ERROR(InRange("parallel.ep", p.ep, 1, p.tp));
  if (p.tp % p.ep != 0) {
    return Invalid("parallel.ep", absl::StrCat(p.ep, " does not divide parallel.tp (", p.tp, ")"));
  }
  if (!(p.timeout_seconds > 0) || !std::isfinite(p.timeout_seconds)) {
    return Invalid("parallel.timeout_seconds", "must be > 0");
  }
  if (p.tp == 1) {
    if (!p.worker_executable.empty())
      return Invalid("parallel.worker_executable", "set but parallel.tp is 1");
    return absl::OkStatus();
  }
  if (p.worker_executable.empty()) {
    return Invalid("parallel.worker_executable",
                   "required when parallel.tp > 1: the dsinfer binary that runs the other ranks "
                   "(installed as <prefix>/bin/dsinfer)");
  }
  if (access(p.worker_executable.c_str(), X_OK) != 0) {
    return Invalid("parallel.worker_executable",
                   absl::StrCat(p.worker_executable, " is not an executable file"));
  }
  return absl::OkStatus();
}

absl::Status CheckKvCache(const api::KvCacheOptions& k) {
  if (k.num_blocks < 0) return Invalid("kv_cache.num_blocks", "must be >= 0");
  if (k.memory_bytes < 0) return Invalid("kv_cache.memory_bytes", "must be >= 0");
  if (k.num_blocks > 0 && k.memory_bytes > 0) {
    return Invalid("kv_cache.memory_bytes",
                   "set together with kv_cache.num_blocks: set one of them");
  }
  if (!(k.memory_fraction > 0 && k.memory_fraction <= 1)) {
    return Invalid("kv_cache.memory_fraction",
                   absl::StrCat(k.memory_fraction, " is not in (0, 1]"));
  }
  return absl::OkStatus();
}

absl::Status CheckScheduler(const api::SchedulerOptions& s) {
  RETURN_IF_ERROR(
      InRange<int64_t>("scheduler.max_batched_tokens", s.max_batched_tokens, 1, 1 << 24));
  RETURN_IF_ERROR(InRange<int32_t>("scheduler.max_running", s.max_running, 1, 1 << 20));
  RETURN_IF_ERROR(InRange<int32_t>("scheduler.max_waiting", s.max_waiting, 0, 1 << 24));
  RETURN_IF_ERROR(InRange<int64_t>("scheduler.prefill_chunk", s.prefill_chunk, 1, 1 << 24));
  if (!(s.max_queue_seconds > 0 && s.max_queue_seconds <= 86400)) {
    return Invalid("scheduler.max_queue_seconds",
                   absl::StrCat(s.max_queue_seconds, " is not in (0, 86400]"));
  }
  if (s.max_running > s.max_batched_tokens) {
    return Invalid(
        "scheduler.max_running",
        absl::StrCat(s.max_running, " exceeds scheduler.max_batched_tokens (", s.max_batched_tokens,
                     "): every running sequence decodes a token a step"));
  }
  if (s.prefill_chunk > s.max_batched_tokens) {
    return Invalid("scheduler.prefill_chunk",
                   absl::StrCat(s.prefill_chunk, " exceeds scheduler.max_batched_tokens (",
                                s.max_batched_tokens, ")"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ServerConfig> ServerConfigFromOptions(const api::LoadOptions& o) {
  RETURN_IF_ERROR(CheckModelPath(o.model_path));
  if (o.backend != "cpu" && o.backend != "cuda") {
    return Invalid("backend", absl::StrCat("\"", o.backend, "\" is not one of cpu, cuda"));
  }
  if (o.dtype != "bf16" && o.dtype != "f32") {
    return Invalid("dtype", absl::StrCat("\"", o.dtype, "\" is not one of bf16, f32"));
  }
  if (o.backend == "cuda" && o.dtype != "bf16")
    return Invalid("dtype", "the cuda backend runs bf16");
  RETURN_IF_ERROR(InRange("threads", o.threads, 0, 4096));
  RETURN_IF_ERROR(CheckParallel(o.parallel));
  RETURN_IF_ERROR(CheckKvCache(o.kv_cache));
  RETURN_IF_ERROR(CheckScheduler(o.scheduler));

  ServerConfig c;
  c.model_path = o.model_path;
  c.backend = o.backend;
  c.dtype = o.dtype;
  c.threads = o.threads;
  c.parallel.tp = o.parallel.tp;
  c.parallel.ep = o.parallel.ep;
  c.parallel.timeout_seconds = o.parallel.timeout_seconds;
  c.kv_cache.num_blocks = o.kv_cache.num_blocks;
  c.kv_cache.memory_bytes = o.kv_cache.memory_bytes;
  c.kv_cache.memory_fraction = o.kv_cache.memory_fraction;
  c.kv_cache.prefix_caching = o.kv_cache.prefix_caching;
  c.scheduler.max_running = o.scheduler.max_running;
  c.scheduler.max_batched_tokens = o.scheduler.max_batched_tokens;
  c.scheduler.max_waiting = o.scheduler.max_waiting;
  c.scheduler.max_queue_seconds = o.scheduler.max_queue_seconds;
  c.scheduler.prefill_chunk = o.scheduler.prefill_chunk;
  c.tenants = {{.id = kEmbeddedTenant, .max_priority = Priority::kEmergency}};
  c.default_tenant = kEmbeddedTenant;
  return c;
}

absl::StatusOr<EngineRequest> EngineRequestFromApi(const api::Request& r,
                                                   const ServingText& text,
                                                   const RequestLimits& limits) {
  ServingRequest s;
  const int inputs = !r.prompt.empty() + !r.token_ids.empty() + !r.messages.empty();
  if (inputs > 1) return Invalid("request", "set only one of prompt, token_ids or messages");
  if (!r.prompt.empty()) {
    s.input = ServingRequest::Input::kPrompt;
    s.prompt = r.prompt;
  } else if (!r.token_ids.empty()) {
    s.input = ServingRequest::Input::kTokenIds;
    s.token_ids = r.token_ids;
  } else if (!r.messages.empty()) {
    s.input = ServingRequest::Input::kChat;
    for (const api::ChatMessage& m : r.messages) {
      s.chat.messages.push_back({.role = m.role, .content = m.content});
    }
  }
  const int priority = static_cast<int>(r.priority);
  if (priority < 0 || priority >= kNumPriorities) {
    return Invalid("priority",
                   absl::StrCat(priority, " is not one of emergency, interactive, batch"));
  }
  if (!(r.timeout_seconds >= 0) || !std::isfinite(r.timeout_seconds)) {
    return Invalid("timeout_seconds", "must be >= 0 (0: none)");
  }
  const api::SamplingOptions& p = r.sampling;
  s.sampling = {.temperature = p.temperature,
                .top_k = p.top_k,
                .top_p = p.top_p,
                .min_p = p.min_p,
                .repetition_penalty = p.repetition_penalty,
                .frequency_penalty = p.frequency_penalty,
                .presence_penalty = p.presence_penalty,
                .seed = p.seed};
  s.stop_token_ids = r.stop_token_ids;
  s.stop = r.stop;
  s.max_tokens = r.max_tokens;
  s.ignore_eos = r.ignore_eos;
  ServingFieldNames names;
  names.chat = "messages";
  names.messages = "messages";
  names.prompt = "prompt";
  names.token_ids = "token_ids";
  names.sampling_prefix = "sampling.";
  names.input = "request";
  names.input_choices = "one of prompt, token_ids or messages is required";
  ASSIGN_OR_RETURN(ValidatedRequest v, ValidateServingRequest(s, text, limits, names));
  EngineRequest e = std::move(v.engine);
  e.tenant = kEmbeddedTenant;
  e.priority = static_cast<Priority>(priority);
  return e;
}

}  // namespace dsinfer::api_internal
