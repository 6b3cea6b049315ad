#include "src/api/api_options.h"

#include <unistd.h>

#include <cmath>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "src/config/model_config.h"
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

// api::SamplingOptions and SamplingParams name their fields alike; stop ids travel apart.
template <typename To, typename From>
To CopySampling(const From& p) {
  To q;
  q.temperature = p.temperature;
  q.top_k = p.top_k;
  q.top_p = p.top_p;
  q.min_p = p.min_p;
  q.repetition_penalty = p.repetition_penalty;
  q.frequency_penalty = p.frequency_penalty;
  q.presence_penalty = p.presence_penalty;
  q.seed = p.seed;
  return q;
}

// What api::Request and ServingRequest both say about the output, under the same names.
template <typename From, typename To>
void CopyOutputFields(const From& f, To* t) {
  t->stop_token_ids = f.stop_token_ids;
  t->stop = f.stop;
  t->max_tokens = f.max_tokens;
  t->ignore_eos = f.ignore_eos;
  t->logprobs = f.logprobs;
  t->client_request_id = f.client_request_id;
}

absl::Status CheckTenants(const std::vector<api::TenantOptions>& tenants) {
  for (size_t i = 0; i < tenants.size(); ++i) {
    const api::TenantOptions& t = tenants[i];
    const std::string at = absl::StrCat("tenants[", i, "]");
    constexpr char kIdChars[] =
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-";
    if (t.id.empty() || t.id.size() > 64 || t.id.find_first_not_of(kIdChars) != std::string::npos) {
      return Invalid(at + ".id", absl::StrCat("\"", t.id, "\" is not 1-64 of [A-Za-z0-9_.-]"));
    }
    for (size_t j = 0; j < i; ++j) {
      if (tenants[j].id == t.id) {
        return Invalid(at + ".id", absl::StrCat("\"", t.id, "\" repeats tenants[", j, "]"));
      }
    }
    if (!(t.weight > 0) || !std::isfinite(t.weight)) return Invalid(at + ".weight", "must be > 0");
    const int p = static_cast<int>(t.max_priority);
    if (p < 0 || p >= kNumPriorities) {
      return Invalid(at + ".max_priority",
                     absl::StrCat(p, " is not one of emergency, interactive, batch"));
    }
    if (t.max_concurrent < 0) return Invalid(at + ".max_concurrent", "must be >= 0");
    if (t.max_queued < 0) return Invalid(at + ".max_queued", "must be >= 0");
    if (t.tokens_per_minute < 0) return Invalid(at + ".tokens_per_minute", "must be >= 0");
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
  RETURN_IF_ERROR(InRange("mtp_draft_tokens", o.mtp_draft_tokens, 1, kMaxMtpDraftTokens));
  if (o.mtp_draft_tokens != 1 && !o.mtp) {
    return Invalid("mtp_draft_tokens", absl::StrCat(o.mtp_draft_tokens, " drafts but mtp is false"));
  }
  RETURN_IF_ERROR(CheckParallel(o.parallel));
  RETURN_IF_ERROR(CheckKvCache(o.kv_cache));
  RETURN_IF_ERROR(CheckScheduler(o.scheduler));
  RETURN_IF_ERROR(CheckTenants(o.tenants));

  ServerConfig c;
  c.model_path = o.model_path;
  c.backend = o.backend;
  c.dtype = o.dtype;
  c.threads = o.threads;
  c.dequantize_fp8 = o.dequantize_fp8;
  c.mtp = o.mtp;
  c.mtp_draft_tokens = o.mtp_draft_tokens;
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
  if (o.tenants.empty()) {
    c.tenants = {{.id = kEmbeddedTenant, .max_priority = Priority::kEmergency}};
    c.default_tenant = kEmbeddedTenant;
  }
  for (const api::TenantOptions& t : o.tenants) {
    c.tenants.push_back({.id = t.id,
                         .weight = t.weight,
                         .max_priority = static_cast<Priority>(t.max_priority),
                         .max_concurrent = t.max_concurrent,
                         .max_queued = t.max_queued,
                         .tokens_per_minute = t.tokens_per_minute});
  }
  if (o.tenants.size() == 1) c.default_tenant = o.tenants[0].id;
  return c;
}

const ServingFieldNames& ApiFieldNames() {
  static const ServingFieldNames* names = [] {
    auto* n = new ServingFieldNames;
    n->chat = "messages";
    n->messages = "messages";
    n->tools = "tools";
    n->prompt = "prompt";
    n->token_ids = "token_ids";
    n->sampling_prefix = "sampling.";
    n->input = "request";
    n->input_choices = "one of prompt, token_ids or messages is required";
    return n;
  }();
  return *names;
}

absl::StatusOr<ServingChat> ServingChatFromApi(const api::Request& r,
                                               const ServingFieldNames& names) {
  ServingChat chat;
  for (const api::ChatMessage& m : r.messages) {
    chat::Message msg{.role = m.role, .content = m.content, .tool_call_id = m.tool_call_id};
    for (const api::ToolCall& c : m.tool_calls) {
      msg.tool_calls.push_back({.id = c.id, .name = c.name, .arguments = c.arguments});
    }
    chat.messages.push_back(std::move(msg));
  }
  for (size_t k = 0; k < r.tools.size(); ++k) {
    const api::Tool& t = r.tools[k];
    chat::Tool tool{.name = t.name, .description = t.description};
    if (!t.parameters_json.empty()) {
      // Parsed in order: it is printed into the prompt as the caller wrote it.
      tool.parameters = nlohmann::ordered_json::parse(t.parameters_json, nullptr,
                                                      /*allow_exceptions=*/false);
      if (tool.parameters.is_discarded() || !tool.parameters.is_object()) {
        return Invalid(absl::StrCat(names.tools, "[", k, "].parameters_json"),
                       "must be a JSON object (a JSON Schema)");
      }
    }
    chat.tools.push_back(std::move(tool));
  }
  switch (r.tool_choice) {
    case api::ToolChoice::kAuto:
      chat.tool_choice = ToolChoice::kAuto;
      break;
    case api::ToolChoice::kNone:
      chat.tool_choice = ToolChoice::kNone;
      break;
    default:
      return Invalid(absl::StrCat(names.chat, ".tool_choice"),
                     absl::StrCat("unknown value ", static_cast<int>(r.tool_choice)));
  }
  chat.thinking = r.thinking;
  return chat;
}

absl::StatusOr<ValidatedRequest> EngineRequestFromApi(const api::Request& r,
                                                      const ServerConfig& config,
                                                      const ServingText& text,
                                                      const RequestLimits& limits,
                                                      const ServingFieldNames& names,
                                                      ServingRequest::Input declared) {
  ServingRequest s;
  s.input = declared;
  const int inputs = !r.prompt.empty() + !r.token_ids.empty() + !r.messages.empty();
  if (inputs > 1) return Invalid(names.input, "set only one of prompt, token_ids or messages");
  if (r.messages.empty() && declared != ServingRequest::Input::kChat &&
      (!r.tools.empty() || r.thinking)) {
    return Invalid(r.tools.empty() ? "thinking" : names.tools, "only for chat messages");
  }
  if (!r.prompt.empty()) {
    s.input = ServingRequest::Input::kPrompt;
    s.prompt = r.prompt;
  } else if (!r.token_ids.empty()) {
    s.input = ServingRequest::Input::kTokenIds;
    s.token_ids = r.token_ids;
  } else if (!r.messages.empty() || declared == ServingRequest::Input::kChat) {
    s.input = ServingRequest::Input::kChat;
    ASSIGN_OR_RETURN(s.chat, ServingChatFromApi(r, names));
  }
  const int priority = static_cast<int>(r.priority);
  if (priority < 0 || priority >= kNumPriorities) {
    return Invalid("priority",
                   absl::StrCat(priority, " is not one of emergency, interactive, batch"));
  }
  if (!(r.timeout_seconds >= 0) || !std::isfinite(r.timeout_seconds)) {
    return Invalid("timeout_seconds", "must be >= 0 (0: none)");
  }
  if (r.logprobs < -1 || r.logprobs > 20) {
    return Invalid("logprobs", absl::StrCat(r.logprobs, " is not in [0, 20] (-1: none)"));
  }
  const std::string& tenant = r.tenant.empty() ? config.default_tenant : r.tenant;
  if (tenant.empty()) {
    return Invalid("tenant", absl::StrCat("required: the model has ", config.tenants.size(),
                                          " tenants and no default"));
  }
  s.sampling = CopySampling<SamplingParams>(r.sampling);
  CopyOutputFields(r, &s);
  ASSIGN_OR_RETURN(ValidatedRequest v, ValidateServingRequest(s, text, limits, names));
  v.engine.tenant = tenant;
  // The tenant's ceiling caps the class; an unknown tenant is the engine's PERMISSION_DENIED.
  Priority ceiling = Priority::kEmergency;
  for (const TenantConfig& t : config.tenants) {
    if (t.id == tenant) ceiling = t.max_priority;
  }
  v.engine.priority = EffectivePriority(static_cast<Priority>(priority), ceiling);
  return v;
}

api::Request ApiRequestFromServing(const ServingRequest& s) {
  api::Request r;
  switch (s.input) {
    case ServingRequest::Input::kChat:
      for (const chat::Message& m : s.chat.messages) {
        api::ChatMessage msg{.role = m.role, .content = m.content, .tool_call_id = m.tool_call_id};
        for (const chat::ToolCall& c : m.tool_calls) {
          msg.tool_calls.push_back({.id = c.id, .name = c.name, .arguments = c.arguments});
        }
        r.messages.push_back(std::move(msg));
      }
      for (const chat::Tool& t : s.chat.tools) {
        r.tools.push_back({.name = t.name,
                           .description = t.description,
                           .parameters_json = t.parameters.dump()});
      }
      r.tool_choice =
          s.chat.tool_choice == ToolChoice::kNone ? api::ToolChoice::kNone : api::ToolChoice::kAuto;
      r.thinking = s.chat.thinking;
      break;
    case ServingRequest::Input::kPrompt:
      r.prompt = s.prompt;
      break;
    case ServingRequest::Input::kTokenIds:
      r.token_ids = s.token_ids;
      break;
    case ServingRequest::Input::kNone:
      break;
  }
  r.sampling = CopySampling<api::SamplingOptions>(s.sampling);
  CopyOutputFields(s, &r);
  return r;
}

}  // namespace dsinfer::api_internal
