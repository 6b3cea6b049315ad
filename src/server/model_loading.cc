// Loading the model to serve: the runner factory builds it from the config (backend, dtype,
// parallel layout), the KV pool is sized from the runner's KvCacheSpec (kv_capacity.h), and
// the model directory's tokenizer is loaded when it has one. With parallel.tp > 1 the server is
// the leader (rank 0): the factory starts its node's other ranks, and the server hosts the
// rendezvous for ranks on other nodes (which their deployment starts with
// `dsinfer worker --config ... --node-rank N --leader HOST:PORT`).
#include <chrono>
#include <cstdlib>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "src/core/status_macros.h"
#include "src/runner/runner_factory.h"
#include "src/server/inference_server.h"
#include "src/server/kv_capacity.h"
#ifdef DSINFER_HAVE_RENDEZVOUS
#include "src/comm/rendezvous_store.h"
#endif

namespace dsinfer {
namespace {

// The model directory's tokenizer, when it has one (token ids only otherwise): tokenizer.json,
// else tiktoken.model (Kimi-K2).
absl::StatusOr<std::unique_ptr<Tokenizer>> LoadTokenizer(const std::string& model_path) {
  const std::optional<std::string> path = Tokenizer::FindInDirectory(model_path);
  if (!path.has_value()) return std::unique_ptr<Tokenizer>();
  return Tokenizer::FromFile(*path);
}

}  // namespace

absl::Status InferenceServer::StartRendezvous(std::string* spec) {
#ifdef DSINFER_HAVE_RENDEZVOUS
  const ParallelConfig& q = config_.parallel;
  auto server = std::make_shared<RendezvousServer>();
  ASSIGN_OR_RETURN(int port, server->Start(q.rendezvous_listen,
                                           std::getenv("DSINFER_RENDEZVOUS_TOKEN")
                                               ? std::getenv("DSINFER_RENDEZVOUS_TOKEN")
                                               : ""));
  // This node's ranks reach it where it listens (loopback when it listens everywhere).
  std::string host = q.rendezvous_listen.substr(0, q.rendezvous_listen.rfind(':'));
  if (host.empty() || host == "0.0.0.0" || host == "[::]" || host == "::") host = "127.0.0.1";
  *spec = absl::StrCat("grpc:", host, ":", port);
  rendezvous_ = server;
  log_->Write(LogLevel::kInfo, "rendezvous_listening", {{"port", port}});
  return absl::OkStatus();
#else
  return absl::UnimplementedError("multi-node parallel layouts need the gRPC rendezvous");
#endif
}

absl::Status InferenceServer::LoadModel(ProgressFn progress) {
  const ParallelConfig& q = config_.parallel;
  RunnerOptions o{.model_dir = config_.model_path,
                  .backend = config_.backend,
                  .threads = config_.threads,
                  .progress = std::move(progress)};
  RETURN_IF_ERROR(CheckBackend(config_.backend));
  ASSIGN_OR_RETURN(o.precision, ParsePrecision(config_.dtype));
  o.parallel = {.tp = q.tp, .ep = q.ep, .ranks_per_node = q.ranks_per_node,
                .timeout_s = q.timeout_seconds};
  if (const char* env = std::getenv("DSINFER_BIND_ADDRESS"); env != nullptr && *env) {
    o.parallel.bind_address = env;
  } else if (!q.bind_address.empty()) {
    o.parallel.bind_address = q.bind_address;
  }
  if (q.tp > 1 && o.parallel.local_ranks() < q.tp) RETURN_IF_ERROR(StartRendezvous(&o.parallel.rendezvous));
  const SchedulerConfig& sc = config_.scheduler;
  o.cuda.kv_cache_fraction = config_.kv_cache.memory_fraction;
  o.cuda.max_batched_tokens = sc.max_batched_tokens;
  o.cuda.max_seqs = sc.max_running;
  const int64_t context = model_.max_position_embeddings;
  const ServerConfig& cfg = config_;
  o.kv_sizer = [&cfg, context](const KvCacheSpec& spec, int64_t available) {
    return KvCacheBlocks(cfg, spec, context, available);
  };
  log_->Write(LogLevel::kInfo, "model_loading",
              {{"model", config_.model_path}, {"dtype", config_.dtype},
               {"backend", config_.backend}, {"tp", q.tp}, {"ep", q.ep}});
  const auto t0 = std::chrono::steady_clock::now();
  ASSIGN_OR_RETURN(std::unique_ptr<ModelRunner> runner, MakeModelRunner(o));
  ASSIGN_OR_RETURN(std::unique_ptr<Tokenizer> tokenizer, LoadTokenizer(config_.model_path));
  // Decode steps of every batch size the scheduler may run are prepared (CUDA graphs captured)
  // while /readyz still says loading, so the first requests do not pay for it.
  const auto tw = std::chrono::steady_clock::now();
  RETURN_IF_ERROR(runner->WarmUp(sc.max_running));
  log_->Write(LogLevel::kInfo, "warmed_up",
              {{"seconds", std::chrono::duration<double>(std::chrono::steady_clock::now() - tw).count()},
               {"max_batch", sc.max_running}});
  const KvCacheSpec& spec = runner->kv_cache_spec();
  log_->Write(
      LogLevel::kInfo, "model_loaded",
      {{"seconds", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()},
       {"weight_bytes", runner->weight_bytes()},
       {"kv_cache_blocks", runner->num_kv_blocks()},
       {"kv_cache_bytes", static_cast<int64_t>(runner->num_kv_blocks()) * spec.bytes_per_block()},
       {"kv_bytes_per_token", spec.bytes_per_token()},
       {"tp", q.tp},
       {"ep", q.ep},
       {"tokenizer", tokenizer != nullptr}});
  return StartEngine(std::move(runner), std::move(tokenizer));
}

}  // namespace dsinfer
