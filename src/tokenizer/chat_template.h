// The DeepSeek-V3 chat format (tokenizer_config.json's chat_template), implemented natively for
// plain conversations: control tokens are inserted as ids and message text goes through
// EncodePlain, so text that looks like a control token stays text.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "src/tokenizer/tokenizer.h"

namespace dsinfer {

struct ChatMessage {
  std::string role;  // "system", "user" or "assistant"
  std::string content;
};

// Picks the format from the tokenizer's tokens: Kimi-K2's (ApplyKimiChatTemplate) when it has
// "<|im_middle|>", else DeepSeek-V3's:
// bos, then the system prompts (joined with "\n\n"), then per message "<｜User｜>" + content or
// "<｜Assistant｜>" + content + "<｜end▁of▁sentence｜>", then "<｜Assistant｜>" when
// `add_generation_prompt`. For benign text this equals HF apply_chat_template(tokenize=True).
// Unknown role -> InvalidArgument; a tokenizer without these tokens -> FailedPrecondition.
absl::StatusOr<std::vector<int32_t>> ApplyChatTemplate(const Tokenizer& tokenizer,
                                                       absl::Span<const ChatMessage> messages,
                                                       bool add_generation_prompt);

// Kimi-K2's chat format (chat_template.jinja of Kimi-K2-Instruct, text messages, no tools):
// "<|im_system|>system<|im_middle|>You are Kimi, an AI assistant created by Moonshot AI.<|im_end|>"
// first when the first message is not a system message; then per message
// <|im_user|>user / <|im_assistant|>assistant / <|im_system|>system, "<|im_middle|>", content,
// "<|im_end|>" (left out after the last message unless `add_generation_prompt`); then
// "<|im_assistant|>assistant<|im_middle|>" when `add_generation_prompt`. No bos. Equals HF
// apply_chat_template(tokenize=True) for messages without special-token text. Unknown role ->
// InvalidArgument; missing <|im_...|> tokens -> FailedPrecondition.
absl::StatusOr<std::vector<int32_t>> ApplyKimiChatTemplate(const Tokenizer& tokenizer,
                                                           absl::Span<const ChatMessage> messages,
                                                           bool add_generation_prompt);

}  // namespace dsinfer
