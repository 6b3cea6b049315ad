// The dsinfer.v1.Inference service on gRPC's callback API. Generate and Tokenize take their
// request as raw bytes (RequestParser names a field with invalid UTF-8); Detokenize and
// ModelInfo are plain callbacks. Every method authenticates the caller first, before it says
// anything about the server's state.
#pragma once

#include <grpcpp/server_context.h>
#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/server_callback.h>

#include <atomic>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "dsinfer/model.h"
#include "dsinfer/v1/dsinfer.grpc.pb.h"
#include "src/api/model_internal.h"
#include "src/config/server_config.h"
#include "src/engine/engine.h"
#include "src/metrics/server_metrics.h"
#include "src/server/auth.h"
#include "src/server/request_log.h"
#include "src/server/request_parser.h"
#include "src/server/request_validation.h"

namespace dsinfer {

// Readiness: health NOT_SERVING and UNAVAILABLE for new work except while kServing.
enum class ServingState : uint8_t { kLoading, kServing, kDraining, kStopped };
const char* ServingStateName(ServingState s);  // "loading", "serving", "draining", "stopped"

using InferenceServiceBase = v1::Inference::WithRawCallbackMethod_Generate<
    v1::Inference::WithRawCallbackMethod_Tokenize<v1::Inference::WithCallbackMethod_Detokenize<
        v1::Inference::WithCallbackMethod_ModelInfo<v1::Inference::Service>>>>;

class InferenceService final : public InferenceServiceBase {
 public:
  // `metrics` and `log` (may be null) must outlive the service.
  InferenceService(const ServerConfig& config, ServerMetrics* metrics, JsonLog* log);

  // Once the model is loaded, before SetState(kServing); it must outlive the gRPC server. The
  // front ends submit and cancel through it (api::Model, src/api/model_internal.h).
  void AttachModel(api::Model* model);
  void SetState(ServingState s) { state_.store(s, std::memory_order_release); }
  ServingState state() const { return state_.load(std::memory_order_acquire); }

  grpc::ServerWriteReactor<grpc::ByteBuffer>* Generate(grpc::CallbackServerContext* context,
                                                       const grpc::ByteBuffer* request) override;
  grpc::ServerUnaryReactor* Tokenize(grpc::CallbackServerContext* context,
                                     const grpc::ByteBuffer* request,
                                     grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* Detokenize(grpc::CallbackServerContext* context,
                                       const v1::DetokenizeRequest* request,
                                       v1::DetokenizeResponse* response) override;
  grpc::ServerUnaryReactor* ModelInfo(grpc::CallbackServerContext* context,
                                      const v1::ModelInfoRequest* request,
                                      v1::ModelInfoResponse* response) override;

  // For the front ends (GenerateReactor, OpenAiApi). Null until AttachModel.
  api::Model* model() const { return model_; }
  Engine* engine() const { return model_ != nullptr ? core().engine.get() : nullptr; }
  const Tokenizer* tokenizer() const { return text_.tokenizer; }
  const ServingText& serving_text() const { return text_; }
  const RequestLimits& limits() const { return limits_; }
  const RequestParser& generate_parser() const { return generate_parser_; }
  // UNAVAILABLE unless serving (or, with `draining_ok`, draining). A failed backend (a rank of a
  // sharded model gone) gives its summary only; the details are logged once.
  absl::Status CheckServing(bool draining_ok) const;
  // OK, or UNAVAILABLE with the summary of a failed backend (details logged once). Cheap and
  // thread-safe: /healthz, /readyz and the health watcher call it.
  absl::Status BackendHealth() const;
  // Counts and logs a request turned away before it reached the engine. `tenant` may be null
  // (not yet authenticated). Only the status code and the field name are logged.
  void RecordRejection(const TenantConfig* tenant, Priority priority, const absl::Status& status,
                       const std::string& client_request_id) const;
  JsonLog* log() const { return log_; }
  ServerMetrics* metrics() const { return metrics_; }  // may be null
  // Counts a generation call's end (dsinfer_api_calls_total); null metrics: nothing.
  void CountCall(ApiProtocol protocol, absl::StatusCode code) const {
    if (metrics_ != nullptr) metrics_->ApiCalls(protocol, code).Inc();
  }
  // The caller's tenant; a failure is counted and logged (method, code and peer address only).
  absl::StatusOr<const TenantConfig*> Authenticate(grpc::CallbackServerContext* context,
                                                   const char* method) const;
  // The same for credentials from another front end (the OpenAI API's HTTP headers); `method`
  // names the endpoint and `peer` the client address in the log line.
  absl::StatusOr<const TenantConfig*> Authenticate(const CallCredentials& credentials,
                                                   const char* method,
                                                   const std::string& peer) const;

 private:
  absl::Status BackendDown(const absl::Status& health) const;
  api::ModelCore& core() const { return api::ModelAccess::Core(*model_); }

  std::atomic<ServingState> state_{ServingState::kLoading};
  mutable std::atomic<bool> backend_down_logged_{false};
  TenantAuthenticator auth_;
  ServerMetrics* metrics_;
  JsonLog* log_;
  RequestParser generate_parser_;
  RequestParser tokenize_parser_;
  // Set once by AttachModel before the state becomes kServing; read-only afterwards.
  api::Model* model_ = nullptr;
  ServingText text_;
  RequestLimits limits_;
  v1::ModelInfoResponse model_info_;
};

// The tenant's effective class: the requested one (unspecified = interactive), never above the
// tenant's ceiling.
Priority EffectivePriority(v1::Priority requested, Priority ceiling);

}  // namespace dsinfer
