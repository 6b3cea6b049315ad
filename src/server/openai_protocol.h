// The OpenAI wire format: request JSON -> ServingRequest (plus n, stream, ...), and the JSON of
// responses, stream chunks and errors. No I/O here. Every rejection is INVALID_ARGUMENT and
// begins with the parameter's name (`temperature: ...`, `messages[2].role: ...`), which the
// error body carries as `param`.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "dsinfer/types.h"
#include "nlohmann/json.hpp"
#include "src/config/priority.h"
#include "src/engine/engine.h"
#include "src/serving/serving_request.h"

namespace dsinfer {

inline constexpr int kOpenAiMaxChoices = 16;
inline constexpr int kOpenAiMaxTopLogprobs = 20;

struct OpenAiRequest {
  bool chat = true;  // /v1/chat/completions, else /v1/completions
  ServingRequest serving;
  int n = 1;
  bool stream = false;
  bool include_usage = false;           // stream_options.include_usage
  std::optional<Priority> priority;     // extra: "emergency" | "interactive" | "batch"
  bool logprobs = false;                // chat: logprobs; completions: logprobs set
  int top_logprobs = 0;
};

// The field names of errors on this API.
const ServingFieldNames& OpenAiFieldNames(bool chat);

// Parses a request body (JSON, kept in the client's key order for tool schemas): messages with
// tool calls and tool results, tools, tool_choice ("auto" | "none"), chat_template_kwargs.
// Unsupported parameters are refused by name ("logit_bias: not supported yet"); unknown extra
// keys are ignored, as OpenAI's own clients send some.
absl::StatusOr<OpenAiRequest> ParseOpenAiRequest(std::string_view body, bool chat);

// {"error": {"message", "type", "param", "code"}}; `param` is null when empty.
nlohmann::json OpenAiError(const std::string& message, const std::string& type,
                           const std::string& param, const std::string& code);

// The HTTP status, error type and code of a Status from validation or the engine.
struct OpenAiErrorShape {
  int http_status;
  const char* type;
  const char* code;
};
OpenAiErrorShape OpenAiErrorFor(const absl::Status& status);

// "stop", "length", "tool_calls"; nullptr for a cancelled request.
const char* OpenAiFinishReason(api::FinishReason r);

nlohmann::json OpenAiUsage(int64_t prompt_tokens, int64_t completion_tokens,
                           int64_t cached_tokens);

// Per-token logprobs in the chat shape ({"token","logprob","bytes","top_logprobs"}), or the
// completions shape's parallel arrays appended to `completion` ({"tokens","token_logprobs",
// "top_logprobs","text_offset"}); token text from the tokenizer (may be null: ids as text).
nlohmann::json ChatLogprobEntry(const api::TokenLogprob& r, const Tokenizer* tokenizer);
void AppendCompletionLogprobs(const api::TokenLogprob& r, const Tokenizer* tokenizer,
                              int64_t text_offset, nlohmann::json* completion);

}  // namespace dsinfer
