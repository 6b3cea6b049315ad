// Kimi-K2's chat format (internal to prompt_renderer.cc; callers use RenderChat).
#pragma once

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "src/chat/chat_types.h"
#include "src/chat/prompt_renderer.h"
#include "src/tokenizer/tokenizer.h"

namespace dsinfer::chat {

// chat_template.jinja of Kimi-K2-Instruct for text conversations:
// "<|im_system|>system<|im_middle|>You are Kimi, an AI assistant created by Moonshot AI.<|im_end|>"
// first when the first message is not a system message; then per message
// <|im_user|>user / <|im_assistant|>assistant / <|im_system|>system, "<|im_middle|>", content,
// "<|im_end|>" (left out after the last message unless `add_generation_prompt`); then
// "<|im_assistant|>assistant<|im_middle|>" with `add_generation_prompt`. No bos. Equals HF
// apply_chat_template(tokenize=True) for messages without special-token text. Tools, tool
// messages and tool calls are InvalidArgument naming the field (not served in this format);
// missing <|im_...|> tokens -> FailedPrecondition. `thinking` is ignored.
absl::StatusOr<ChatPrompt> RenderKimiChat(const Tokenizer& tokenizer,
                                          absl::Span<const Message> messages,
                                          absl::Span<const Tool> tools,
                                          const RenderOptions& options);

}  // namespace dsinfer::chat
