// Loading the model to serve, through the serving layer's one path (src/serving/serving_model.h,
// shared with the embedding API): the runner factory builds it from the config (backend, dtype,
// parallel layout), the KV pool is sized from the runner's KvCacheSpec (kv_capacity.h), and the
// model directory's tokenizer is loaded when it has one. This file adds the server's part: the
// log lines and, with parallel.tp > 1, the rendezvous for ranks on other nodes (which their
// deployment starts with `dsinfer worker --config ... --node-rank N --leader HOST:PORT`); the
// server is the leader (rank 0) and the factory starts its node's other ranks.
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "src/core/status_macros.h"
#include "src/server/inference_server.h"
#include "src/serving/serving_model.h"
#ifdef DSINFER_HAVE_RENDEZVOUS
#include "src/comm/rendezvous_store.h"
#endif

namespace dsinfer {

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
  ServingModelHooks hooks{.progress = std::move(progress)};
  const int local_ranks = q.ranks_per_node > 0 ? q.ranks_per_node : q.tp;
  if (q.tp > 1 && local_ranks < q.tp) RETURN_IF_ERROR(StartRendezvous(&hooks.rendezvous));
  log_->Write(LogLevel::kInfo, "model_loading",
              {{"model", config_.model_path}, {"dtype", config_.dtype},
               {"backend", config_.backend}, {"tp", q.tp}, {"ep", q.ep}});
  ASSIGN_OR_RETURN(ServingModel m,
                   LoadServingModel(config_, model_.max_position_embeddings, std::move(hooks)));
  log_->Write(LogLevel::kInfo, "warmed_up",
              {{"seconds", m.warm_up_seconds}, {"max_batch", config_.scheduler.max_running}});
  const KvCacheSpec& spec = m.runner->kv_cache_spec();
  log_->Write(
      LogLevel::kInfo, "model_loaded",
      {{"seconds", m.load_seconds + m.warm_up_seconds},
       {"weight_bytes", m.runner->weight_bytes()},
       {"kv_cache_blocks", m.runner->num_kv_blocks()},
       {"kv_cache_bytes", static_cast<int64_t>(m.runner->num_kv_blocks()) * spec.bytes_per_block()},
       {"kv_bytes_per_token", spec.bytes_per_token()},
       {"tp", q.tp},
       {"ep", q.ep},
       {"tokenizer", m.tokenizer != nullptr}});
  return StartEngine(std::move(m.runner), std::move(m.tokenizer), std::move(m.chat_format));
}

}  // namespace dsinfer
