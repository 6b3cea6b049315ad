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

// The API's names for request fields in errors (`messages[1].role`, `sampling.top_p`, ...).
const ServingFieldNames& ApiFieldNames();

// The conversation of a chat request (messages, tools, tool_choice, thinking) as the serving
// layer's; a tool's parameters_json must be a JSON object (`<names.tools>[k].parameters_json`).
absl::StatusOr<ServingChat> ServingChatFromApi(const api::Request& request,
                                               const ServingFieldNames& names);

// Validates once (exactly one input; priority; timeout; logprobs; the rest as the server does,
// with `names`) and builds the engine's request: tenant resolved ("" -> the config's default
// tenant) and the priority capped at its ceiling. Arrival and deadline are the caller's, which
// knows the engine clock. `declared`: the input a wire request chose (kNone: whichever is set),
// so that an empty one is named as empty rather than as missing.
absl::StatusOr<ValidatedRequest> EngineRequestFromApi(
    const api::Request& request, const ServerConfig& config, const ServingText& text,
    const RequestLimits& limits, const ServingFieldNames& names,
    ServingRequest::Input declared = ServingRequest::Input::kNone);

// The protocol-neutral request as the API's (tools' parameters as JSON text).
api::Request ApiRequestFromServing(const ServingRequest& request);

}  // namespace dsinfer::api_internal
