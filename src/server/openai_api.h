// The OpenAI-compatible API on an HttpServer (src/http): GET /v1/models, POST
// /v1/chat/completions, POST /v1/completions. Same rules as the gRPC front end (README.md):
// authentication first (`Authorization: Bearer <key>` through the same TenantAuthenticator),
// then the serving state (503 while loading or draining), then validation once
// (serving_request.h), then Engine::Submit, which decides admission at once on the event-loop
// thread (429 with Retry-After from the engine's hint). n choices are n engine requests. A
// client that disconnects cancels every one of its engine requests at once (KV freed). Streams
// follow generate_reactor's rules: the engine thread only posts (merged while a write is in
// flight), never waits. Nothing here logs prompt or completion text, or `user`.
#pragma once

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "src/http/http_server.h"
#include "src/server/inference_service.h"

namespace dsinfer {

class OpenAiApi {
 public:
  // `service` must outlive the API and the HTTP server it is registered on. `model_id` is the
  // name /v1/models lists and responses carry.
  OpenAiApi(InferenceService* service, std::string model_id);

  // Adds the routes and the OpenAI-shaped error bodies (404, 413, ...) to `server`.
  void Register(HttpServer* server);

 private:
  void Models(const std::shared_ptr<HttpExchange>& ex) const;
  void Complete(const std::shared_ptr<HttpExchange>& ex, bool chat) const;
  // Answers a call turned away before the engine saw it (counted in dsinfer_api_calls_total).
  void Reject(const std::shared_ptr<HttpExchange>& ex, const absl::Status& st) const;

  InferenceService* const service_;
  const std::string model_id_;
};

// The OpenAI error response for `status` (429 carries Retry-After, whole seconds >= 1).
HttpResponse OpenAiErrorResponse(const absl::Status& status, double retry_after_seconds = 0);

}  // namespace dsinfer
