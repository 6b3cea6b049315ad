// The serving process as one object: logs, metrics, the ops HTTP endpoint (/metrics, /healthz,
// /readyz), the gRPC server (Inference, grpc.health.v1.Health, reflection), the OpenAI API and,
// once the model is loaded, one api::Model (the embedding API, include/dsinfer) that both front
// ends submit to. Life cycle:
//   Create -> StartListeners (loading; the OpenAI API answers 503: health NOT_SERVING, /readyz 503, Generate UNAVAILABLE)
//          -> LoadModel or StartEngine (serving)
//          -> Drain (draining: NOT_SERVING, new requests UNAVAILABLE, running ones finish within
//             the grace period, then the rest end with UNAVAILABLE; then stopped).
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "dsinfer/model.h"
#include "src/chat/chat_format.h"
#include "src/config/model_config.h"
#include "src/config/server_config.h"
#include "src/engine/engine.h"
#include "src/http/http_server.h"
#include "src/metrics/http_server.h"
#include "src/metrics/server_metrics.h"
#include "src/server/inference_service.h"
#include "src/server/request_log.h"
#include "src/server/server_observer.h"
#include "src/weights/weight_store.h"

namespace grpc {
class Server;
}

namespace dsinfer {

class OpenAiApi;

class InferenceServer {
 public:
  // `model` is the config.json of the model to be served (metric labels, request limits).
  static absl::StatusOr<std::unique_ptr<InferenceServer>> Create(ServerConfig config,
                                                                 ModelConfig model);
  ~InferenceServer();  // Drain(0) if still running
  InferenceServer(const InferenceServer&) = delete;
  InferenceServer& operator=(const InferenceServer&) = delete;

  // Binds config.http_listen and config.grpc_listen (port 0: any free port).
  absl::Status StartListeners();
  // Loads the weights from config.model_path (progress may be null), sizes the KV pool
  // (kv_capacity.h), loads the directory's tokenizer.json or tiktoken.model if it has one,
  // and starts serving.
  absl::Status LoadModel(ProgressFn progress);
  // Starts serving with a ready runner; `tokenizer` may be null (token ids only). The chat
  // format is `chat_format` when given, else the model directory's (chat::ChatFormatOfModel on
  // config.model_path); it is logged once (`chat_format`, with the fallback's note).
  absl::Status StartEngine(std::unique_ptr<ModelRunner> runner,
                           std::unique_ptr<Tokenizer> tokenizer,
                           std::optional<chat::ChatFormat> chat_format = std::nullopt);
  // See the life cycle above. Idempotent; returns how many requests the grace period cut off.
  int64_t Drain(double grace_seconds);

  int grpc_port() const { return grpc_port_; }
  int http_port() const;
  int openai_port() const;  // 0 when openai_listen is empty
  ServingState state() const { return service_->state(); }
  Engine* engine() const { return service_->engine(); }  // null until the model is started
  api::Model* model() const { return api_model_.get(); }
  ServerMetrics& metrics() { return *metrics_; }
  JsonLog& log() { return *log_; }
  const ServerConfig& config() const { return config_; }

 private:
  // parallel: the rendezvous other nodes' ranks reach (multi-node layouts), in model_loading.cc.
  absl::Status StartRendezvous(std::string* spec);
  InferenceServer(ServerConfig config, ModelConfig model);
  void SetHealth(bool serving);
  // While serving: turns grpc.health.v1 NOT_SERVING as soon as the backend fails (as /readyz).
  void WatchBackend();

  ServerConfig config_;
  ModelConfig model_;
  std::string metrics_model_name_;  // the model directory's name: metrics label, API model id
  // Declared in the order they must outlive each other (destroyed bottom-up).
  std::shared_ptr<void> rendezvous_;  // the multi-node rendezvous server, when this leads one
  std::unique_ptr<JsonLog> log_;
  std::unique_ptr<ServerMetrics> metrics_;
  std::unique_ptr<ServerObserver> observer_;
  // Both front ends submit to it; its engine reports to observer_.
  std::unique_ptr<api::Model> api_model_;
  std::unique_ptr<InferenceService> service_;
  std::unique_ptr<grpc::Server> grpc_server_;
  std::unique_ptr<MetricsHttpServer> http_;
  std::unique_ptr<OpenAiApi> openai_;
  std::unique_ptr<HttpServer> openai_http_;  // the OpenAI API (openai_listen), when set
  int grpc_port_ = 0;
  std::mutex drain_mu_;
  bool stopped_ = false;
  std::thread backend_watch_;
  std::mutex watch_mu_;
  std::condition_variable watch_cv_;
  bool watch_stop_ = false;
};

}  // namespace dsinfer
