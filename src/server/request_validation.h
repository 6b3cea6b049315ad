// Checks a request once, at the entry, and turns it into the engine's form: the gRPC messages
// become a ServingRequest (serving_request.h), validated there as the OpenAI API's are. Every rejection is
// INVALID_ARGUMENT and names the field (`chat.messages[2].role: ...`); nothing past this point
// re-validates client input.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "dsinfer/v1/dsinfer.pb.h"
#include "src/engine/engine.h"
#include "src/serving/serving_request.h"
#include "src/tokenizer/tokenizer.h"

namespace dsinfer {

// The prompt of a chat conversation, rendered by the serving layer's one entry point
// (RenderServingChat: the served chat format, tools, thinking; message text is always plain
// text). `field` prefixes the names in errors ("chat").
absl::StatusOr<std::vector<int32_t>> ChatPromptTokens(const v1::ChatInput& chat,
                                                      const ServingText& text,
                                                      absl::string_view field);

// A GenerateRequest as an EngineRequest (and, for chat input, how to read its output); tenant,
// priority and deadline are left for the caller, which knows the credentials and the call.
absl::StatusOr<ValidatedRequest> ValidateGenerateRequest(const v1::GenerateRequest& request,
                                                         const ServingText& text,
                                                         const RequestLimits& limits);

// The token ids a TokenizeRequest asks for.
absl::StatusOr<std::vector<int32_t>> TokenizeRequestTokens(const v1::TokenizeRequest& request,
                                                           const ServingText& text);

}  // namespace dsinfer
