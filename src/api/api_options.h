// LoadOptions (include/dsinfer/types.h) -> the ServerConfig the serving layer loads from
// (src/serving/serving_model.h), validated once; and the public Request -> EngineRequest through
// the serving layer's one request validation (src/serving/serving_request.h).
#pragma once

#include "absl/status/statusor.h"
#include "dsinfer/types.h"
#include "src/config/server_config.h"
#include "src/engine/engine.h"
#include "src/serving/serving_request.h"
#include "src/tokenizer/tokenizer.h"

namespace dsinfer::api_internal {

// The one tenant of an embedded model: every request is its own; its ceiling is emergency, so a
// request's priority is what it asks for.
inline constexpr char kEmbeddedTenant[] = "embedded";

// Errors name the option (`model_path: ...`, `dtype: ...`, `parallel.ep: ...`).
absl::StatusOr<ServerConfig> ServerConfigFromOptions(const api::LoadOptions& options);

// Validates once (exactly one input; priority; timeout; the rest as the server does, with the
// API's field names) and builds the engine's request (tenant and priority set; the deadline is
// the caller's, which knows the engine clock).
absl::StatusOr<EngineRequest> EngineRequestFromApi(const api::Request& request,
                                                   const ServingText& text,
                                                   const RequestLimits& limits);

}  // namespace dsinfer::api_internal
