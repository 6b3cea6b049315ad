// The protocol-neutral request: what a gRPC GenerateRequest and an OpenAI completion request
// both say, as plain structs, and its one validation into an EngineRequest. Each front end fills
// a ServingRequest from its wire form and names its own fields in errors (ServingFieldNames):
// `chat.messages[1].role` for gRPC, `messages[1].role` for the OpenAI API. Every rejection is
// INVALID_ARGUMENT and begins with the field name and ": ".
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "src/config/priority.h"
#include "src/engine/engine.h"
#include "src/sampling/sampler.h"
#include "src/tokenizer/chat_template.h"
#include "src/tokenizer/tokenizer.h"

namespace dsinfer {

struct RequestLimits {
  int64_t vocab_size = 0;      // token ids lie in [0, vocab_size)
  int64_t context_length = 0;  // prompt + max_tokens at most
  // Tokens the whole KV pool holds (0: unknown). An unset max_tokens stops there too, so a
  // request that leaves it out is servable rather than refused as larger than the pool.
  int64_t kv_capacity_tokens = 0;
  int max_stop_strings = 16;
  int max_stop_string_bytes = 256;
  int max_stop_token_ids = 64;
  int max_client_request_id_bytes = 128;
};

struct ServingRequest {
  enum class Input : uint8_t { kNone, kChat, kPrompt, kTokenIds };
  Input input = Input::kNone;
  std::vector<ChatMessage> messages;  // kChat: system / user / assistant, plain text
  std::string prompt;                 // kPrompt: plain text (special-token strings stay text)
  std::vector<int32_t> token_ids;     // kTokenIds
  SamplingParams sampling;            // stop_token_ids go in `stop_token_ids` below
  std::vector<int32_t> stop_token_ids;
  std::vector<std::string> stop;
  // Unset: the rest of the context (the OpenAI default). 0 is refused.
  std::optional<int64_t> max_tokens;
  bool ignore_eos = false;
  int32_t logprobs = -1;  // -1: none; n >= 0: each token's logprob and n alternatives
  std::string client_request_id;
};

// How a front end names the fields in errors.
struct ServingFieldNames {
  std::string chat = "chat";               // the conversation as a whole
  std::string messages = "chat.messages";  // messages[i]
  std::string prompt = "prompt";
  std::string token_ids = "token_ids.ids";
  std::string sampling_prefix = "sampling.";  // before "temperature", "top_p", ...
  std::string stop_token_ids = "stop_token_ids";
  std::string stop = "stop";
  std::string max_tokens = "max_tokens";
  std::string client_request_id = "client_request_id";
  std::string input = "input";
  std::string input_choices = "one of chat, prompt or token_ids is required";
};

// The prompt of a chat conversation (chat template with the generation prompt; message text is
// always plain text).
absl::StatusOr<std::vector<int32_t>> ChatMessagesTokens(const std::vector<ChatMessage>& messages,
                                                        const Tokenizer* tokenizer,
                                                        const ServingFieldNames& names);

// Validates once and builds the engine's request; tenant, priority, arrival and deadline are
// left for the caller, which knows the credentials and the call.
absl::StatusOr<EngineRequest> ValidateServingRequest(const ServingRequest& request,
                                                     const Tokenizer* tokenizer,
                                                     const RequestLimits& limits,
                                                     const ServingFieldNames& names);

// The tenant's effective class: the requested one (unset = interactive), never above the
// tenant's ceiling.
Priority EffectivePriority(std::optional<Priority> requested, Priority ceiling);

// The field an INVALID_ARGUMENT message names ("messages[1].role: ..." -> "messages[1].role"),
// or "" when it names none.
std::string FieldOfStatus(const absl::Status& status);

}  // namespace dsinfer
