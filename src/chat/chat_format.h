// Which DeepSeek chat format a checkpoint uses, decided from its tokenizer_config.json
// `chat_template` by distinctive fragments of the Jinja text (never by model name, and without a
// Jinja engine): the formats themselves are implemented natively in prompt_renderer.cc.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "src/tokenizer/tokenizer.h"

namespace dsinfer::chat {

enum class ChatFormatKind {
  kV3,  // plain turns; tool calls `function<｜tool▁sep｜>name\n```json\nargs\n```` (V3, V3-0324)
  kR1,   // V3 turns and tools, always thinking: prompt ends "<｜Assistant｜><think>\n"
  kV31,  // hybrid: `thinking` selects "<think>" or "</think>"; calls `name<｜tool▁sep｜>args`
  kKimiK2,  // Kimi-K2's <|im_user|>...<|im_middle|>...<|im_end|> turns; text only (no tools)
};

struct ChatFormat {
  ChatFormatKind kind = ChatFormatKind::kV3;
  // Why this format was chosen when it was a fallback (no template, unknown template); empty
  // when the template was recognised. Callers log it once at start-up.
  std::string note;
};

std::string_view ChatFormatName(ChatFormatKind kind);  // "deepseek-v3", "deepseek-r1", ...

// Recognises a chat_template string. Unknown templates give kV3 with a note; never fails.
// Kimi-K2's template is recognised by its <|im_middle|> token.
ChatFormat RecognizeChatTemplate(std::string_view jinja);

// Reads tokenizer_config.json (a missing `chat_template` gives kV3 with a note). `chat_template`
// may be a string or HF's list form [{"name": "default", "template": ...}, ...].
// Unreadable file or malformed JSON -> a Status naming the path.
absl::StatusOr<ChatFormat> LoadChatFormat(const std::string& tokenizer_config_path);

// The chat format of a model directory, decided once at load by everything that renders chats
// (the serving layer, the CLI): `<model_dir>/tokenizer_config.json` when it exists
// (LoadChatFormat), else kV3 with a note. Where that gives a fallback (a note) and `tokenizer`
// has Kimi-K2's <|im_middle|> token, kKimiK2 with a note saying so. `tokenizer` may be null.
absl::StatusOr<ChatFormat> ChatFormatOfModel(const std::string& model_dir,
                                             const Tokenizer* tokenizer);

}  // namespace dsinfer::chat
