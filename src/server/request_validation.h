// The gRPC messages in the serving layer's terms: a GenerateRequest becomes the embedding API's
// Request (submitted through api::Model, which validates it once with GenerateFieldNames(), as
// the OpenAI API's requests are); what only the wire can get wrong (enum values, a tool's
// parameters_json) is checked here. Every rejection is INVALID_ARGUMENT and names the field
// (`chat.messages[2].role: ...`).
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "dsinfer/types.h"
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

// The field names of GenerateRequest in errors (`chat.messages[1].role`, `token_ids.ids[3]`).
const ServingFieldNames& GenerateFieldNames();

// A GenerateRequest as the API's Request, and the input it chose (for api::ModelAccess's
// WireSubmit). Tenant, priority, arrival and deadline are left for the caller, which knows the
// credentials and the call.
struct GenerateInput {
  api::Request request;
  ServingRequest::Input input = ServingRequest::Input::kNone;
};
absl::StatusOr<GenerateInput> GenerateRequestToApi(const v1::GenerateRequest& request);

// The token ids a TokenizeRequest asks for.
absl::StatusOr<std::vector<int32_t>> TokenizeRequestTokens(const v1::TokenizeRequest& request,
                                                           const ServingText& text);

}  // namespace dsinfer
