#include "src/serving/serving_model.h"

#include <chrono>
#include <cstdlib>

#include "src/core/status_macros.h"
#include "src/runner/runner_factory.h"
#include "src/serving/kv_capacity.h"

namespace dsinfer {
namespace {

double SecondsSince(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Tokenizer>> LoadDirectoryTokenizer(const std::string& model_path) {
  const std::optional<std::string> path = Tokenizer::FindInDirectory(model_path);
  if (!path.has_value()) return std::unique_ptr<Tokenizer>();
  return Tokenizer::FromFile(*path);
}

absl::StatusOr<ServingModel> LoadServingModel(const ServerConfig& config, int64_t context_length,
                                              ServingModelHooks hooks) {
  const ParallelConfig& q = config.parallel;
  RunnerOptions o{.model_dir = config.model_path,
                  .backend = config.backend,
                  .threads = config.threads,
                  .progress = std::move(hooks.progress)};
  o.keep_fp8 = !config.dequantize_fp8;
  o.mtp = config.mtp;
  o.mtp_draft_tokens = config.mtp_draft_tokens;
  RETURN_IF_ERROR(CheckBackend(config.backend));
  ASSIGN_OR_RETURN(o.precision, ParsePrecision(config.dtype));
  o.parallel = {.tp = q.tp,
                .ep = q.ep,
                .ranks_per_node = q.ranks_per_node,
                .rendezvous = std::move(hooks.rendezvous),
                .timeout_s = q.timeout_seconds,
                .worker_executable = std::move(hooks.worker_executable)};
  if (const char* env = std::getenv("DSINFER_BIND_ADDRESS"); env != nullptr && *env) {
    o.parallel.bind_address = env;
  } else if (!q.bind_address.empty()) {
    o.parallel.bind_address = q.bind_address;
  }
  const SchedulerConfig& sc = config.scheduler;
  o.cuda.kv_cache_fraction = config.kv_cache.memory_fraction;
  o.cuda.max_batched_tokens = sc.max_batched_tokens;
  o.cuda.max_seqs = sc.max_running;
  // The sizer runs inside MakeModelRunner, while `config` is alive.
  o.kv_sizer = [&config, context_length](const KvCacheSpec& spec, int64_t available) {
    return KvCacheBlocks(config, spec, context_length, available);
  };
  ServingModel m;
  const auto t0 = std::chrono::steady_clock::now();
  // The text side first: a broken tokenizer or chat template fails before the weights load.
  ASSIGN_OR_RETURN(m.tokenizer, LoadDirectoryTokenizer(config.model_path));
  ASSIGN_OR_RETURN(m.chat_format, chat::ChatFormatOfModel(config.model_path, m.tokenizer.get()));
  ASSIGN_OR_RETURN(m.runner, MakeModelRunner(o));
  m.load_seconds = SecondsSince(t0);
  // Decode steps of every batch size the scheduler may run are prepared (CUDA graphs captured)
  // before the first request, so that it does not pay for it.
  const auto tw = std::chrono::steady_clock::now();
  RETURN_IF_ERROR(m.runner->WarmUp(sc.max_running));
  m.warm_up_seconds = SecondsSince(tw);
  return m;
}

std::vector<TenantPolicy> ServingTenantPolicies(const ServerConfig& c) {
  std::vector<TenantPolicy> out;
  for (const TenantConfig& t : c.tenants) {
    out.push_back({.id = t.id,
                   .weight = t.weight,
                   .max_priority = t.max_priority,
                   .max_concurrent = t.max_concurrent,
                   .max_queued = t.max_queued,
                   .tokens_per_minute = t.tokens_per_minute});
  }
  return out;
}

EngineOptions ServingEngineOptions(const ServerConfig& config) {
  EngineOptions options;
  const SchedulerConfig& sc = config.scheduler;
  options.limits.max_batched_tokens = sc.max_batched_tokens;
  options.limits.max_running = sc.max_running;
  options.limits.max_waiting = sc.max_waiting;
  options.limits.max_queue_seconds = sc.max_queue_seconds;
  options.limits.prefill_chunk = sc.prefill_chunk;
  options.limits.max_preemptions_per_request = sc.max_preemptions_per_request;
  options.limits.step_share = sc.step_share;
  options.limits.share_window_seconds = sc.share_window_seconds;
  options.limits.prefix_caching = config.kv_cache.prefix_caching;
  options.limits.share_prefix_across_tenants = config.kv_cache.share_prefix_across_tenants;
  options.tenants = ServingTenantPolicies(config);
  return options;
}

}  // namespace dsinfer
