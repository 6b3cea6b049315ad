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
#include "src/chat/chat_format.h"
#include "src/chat/chat_types.h"
#include "src/chat/output_parser.h"
#include "src/config/priority.h"
#include "src/engine/engine.h"
#include "src/sampling/sampler.h"
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

// The served model's text side, fixed at load: the tokenizer (null: token ids only) and the
// chat format every chat of every front end is rendered in (chat::ChatFormatOfModel, once).
struct ServingText {
  const Tokenizer* tokenizer = nullptr;
  chat::ChatFormat chat_format;
};

// tool_choice: "auto" (the default: tools rendered, calls parsed) or "none" (tools not rendered
// and tool-call parsing off, so the model answers in text). A named or "required" choice is not
// served (each front end refuses it by name).
enum class ToolChoice : uint8_t { kAuto, kNone };

// A conversation, as both front ends say it (src/chat's plain structs).
struct ServingChat {
  std::vector<chat::Message> messages;  // system / user / assistant (tool_calls) / tool
  std::vector<chat::Tool> tools;
  ToolChoice tool_choice = ToolChoice::kAuto;
  bool thinking = false;  // V3.1's switch (chat_template_kwargs.thinking); R1 always thinks
};

struct ServingRequest {
  enum class Input : uint8_t { kNone, kChat, kPrompt, kTokenIds };
  Input input = Input::kNone;
  ServingChat chat;                   // kChat
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
  std::string tools = "chat.tools";        // tools[i]
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

// A chat rendered into its prompt, and how its output is read back.
struct RenderedChat {
  std::vector<int32_t> ids;
  // DeepSeek formats: the output parser's options (reasoning, tool calls when tools are on).
  // Empty for formats whose output is plain text (Kimi-K2).
  std::optional<chat::OutputParserOptions> output;
};

// The one place a conversation becomes prompt ids, for every front end (Generate, Tokenize,
// chat completions): the served chat format (src/chat), the generation prompt, tools unless
// tool_choice is "none", the thinking switch. Message text is always plain text. Errors name
// the front end's fields (`chat.messages[2].tool_call_id: ...`).
absl::StatusOr<RenderedChat> RenderServingChat(const ServingChat& chat, const ServingText& text,
                                               const ServingFieldNames& names);

struct ValidatedRequest {
  EngineRequest engine;
  // Chat requests of a DeepSeek format: parse the output (ChatOutput, chat_output.h).
  std::optional<chat::OutputParserOptions> chat_output;
};

// Validates once and builds the engine's request; tenant, priority, arrival and deadline are
// left for the caller, which knows the credentials and the call.
absl::StatusOr<ValidatedRequest> ValidateServingRequest(const ServingRequest& request,
                                                        const ServingText& text,
                                                        const RequestLimits& limits,
                                                        const ServingFieldNames& names);

// The tenant's effective class: the requested one (unset = interactive), never above the
// tenant's ceiling.
Priority EffectivePriority(std::optional<Priority> requested, Priority ceiling);

// The field an INVALID_ARGUMENT message names ("messages[1].role: ..." -> "messages[1].role"),
// or "" when it names none.
std::string FieldOfStatus(const absl::Status& status);

}  // namespace dsinfer
