// Renders a conversation in one DeepSeek chat format into prompt token ids. Control tokens
// (<｜User｜>, <｜tool▁sep｜>, ...) come from ids; every piece of client text (message content,
// tool names, arguments, descriptions, schemas) is tokenized with EncodePlain, so text that looks
// like a control token stays text.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "src/chat/chat_format.h"
#include "src/chat/chat_types.h"
#include "src/tokenizer/tokenizer.h"

namespace dsinfer::chat {

struct ChatPrompt {
  std::vector<int32_t> ids;
  // The same prompt as text (what the HF template would print); Decode(ids) equals it.
  std::string text;
  // The prompt ends inside an opened <think> block (R1; V3.1 with thinking): the model's output
  // starts with reasoning. Pass to the output parser (OutputParserOptions::For).
  bool starts_in_reasoning = false;
};

// Errors: InvalidArgument naming the field (`messages[2].role: unknown role "foo"`,
// `messages[3].tool_call_id: required for a tool message`, `tools[0].function.name: empty`,
// ...); FailedPrecondition when the tokenizer lacks a control token the format needs.
absl::StatusOr<ChatPrompt> RenderChat(const Tokenizer& tokenizer, const ChatFormat& format,
                                      absl::Span<const Message> messages,
                                      absl::Span<const Tool> tools, const RenderOptions& options);

}  // namespace dsinfer::chat
