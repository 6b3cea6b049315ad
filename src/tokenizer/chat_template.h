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

// bos, then the system prompts (joined with "\n\n"), then per message "<｜User｜>" + content or
// "<｜Assistant｜>" + content + "<｜end▁of▁sentence｜>", then "<｜Assistant｜>" when
// `add_generation_prompt`. For benign text this equals HF apply_chat_template(tokenize=True).
// Unknown role -> InvalidArgument; a tokenizer without these tokens -> FailedPrecondition.
absl::StatusOr<std::vector<int32_t>> ApplyChatTemplate(const Tokenizer& tokenizer,
                                                       absl::Span<const ChatMessage> messages,
                                                       bool add_generation_prompt);

}  // namespace dsinfer
