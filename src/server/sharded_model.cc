// parallel.tp > 1: the server is the leader (rank 0) of a model sharded over processes. It
// starts its node's other ranks, hosts the rendezvous for ranks on other nodes (which their
// deployment starts with `dsinfer worker --config ... --node-rank N --leader HOST:PORT`), and
// drives every rank through the ShardedExecutor.
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "src/core/status_macros.h"
#include "src/distributed/sharded_run.h"
#include "src/server/inference_server.h"
#include "src/server/kv_capacity.h"
#ifdef DSINFER_HAVE_RENDEZVOUS
#include "src/comm/rendezvous_store.h"
#endif

namespace dsinfer {

absl::Status InferenceServer::LoadShardedModel(ProgressFn progress) {
  const ParallelConfig& q = config_.parallel;
  if (config_.backend != "cpu") {
    return absl::InvalidArgumentError("parallel.tp > 1 runs on backend: cpu in this build");
  }
  ShardLoad load{.model_dir = config_.model_path, .threads = config_.threads,
                 .progress = std::move(progress)};
  ASSIGN_OR_RETURN(load.precision, ParsePrecision(config_.dtype));
  ParallelOptions par{.tp = q.tp, .ep = q.ep, .ranks_per_node = q.ranks_per_node,
                      .timeout_s = q.timeout_seconds};
  if (const char* env = std::getenv("DSINFER_BIND_ADDRESS"); env != nullptr && *env) {
    par.bind_address = env;
  } else if (!q.bind_address.empty()) {
    par.bind_address = q.bind_address;
  }
  if (par.local_ranks() < q.tp) {
#ifdef DSINFER_HAVE_RENDEZVOUS
    auto server = std::make_shared<RendezvousServer>();
    ASSIGN_OR_RETURN(int port, server->Start(q.rendezvous_listen,
                                             std::getenv("DSINFER_RENDEZVOUS_TOKEN")
                                                 ? std::getenv("DSINFER_RENDEZVOUS_TOKEN")
                                                 : ""));
    // This node's ranks reach it where it listens (loopback when it listens everywhere).
    std::string host = q.rendezvous_listen.substr(0, q.rendezvous_listen.rfind(':'));
    if (host.empty() || host == "0.0.0.0" || host == "[::]" || host == "::") host = "127.0.0.1";
    par.rendezvous = absl::StrCat("grpc:", host, ":", port);
    rendezvous_ = server;
    log_->Write(LogLevel::kInfo, "rendezvous_listening", {{"port", port}});
#else
    return absl::UnimplementedError("multi-node parallel layouts need the gRPC rendezvous");
#endif
  }
  log_->Write(LogLevel::kInfo, "model_loading",
              {{"model", config_.model_path}, {"dtype", config_.dtype}, {"backend", "cpu"},
               {"tp", q.tp}, {"ep", q.ep}, {"local_ranks", par.local_ranks()}});
  const auto t0 = std::chrono::steady_clock::now();
  // This node's ranks hold their share of the weights, and each the whole latent cache.
  RETURN_IF_ERROR(
      CheckSizes(load.precision, static_cast<double>(par.local_ranks()) / q.tp, par.local_ranks()));
  ASSIGN_OR_RETURN(int32_t blocks,
                   KvCacheBlocks(config_, model_, MemoryAvailable() / par.local_ranks()));
  ASSIGN_OR_RETURN(std::unique_ptr<ShardedExecutor> ex, StartShardedLeader(load, par, blocks));
  std::unique_ptr<Tokenizer> tokenizer;
  {
    const std::string path = config_.model_path + "/tokenizer.json";
    if (std::filesystem::exists(path)) {
      ASSIGN_OR_RETURN(tokenizer, Tokenizer::FromFile(path));
    }
  }
  log_->Write(
      LogLevel::kInfo, "model_loaded",
      {{"seconds", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()},
       {"kv_cache_blocks", blocks},
       {"tp", q.tp},
       {"ep", q.ep},
       {"tokenizer", tokenizer != nullptr}});
  return StartEngine(std::move(ex), std::move(tokenizer));
}

}  // namespace dsinfer
