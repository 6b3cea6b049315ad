// Kimi-K2's chat format, natively: control tokens are inserted as ids, role names and message
// text go through EncodePlain. HF renders the template to text and encodes it with special
// tokens allowed, so each stretch between two control tokens is encoded on its own; encoding
// each role name and content separately gives the same ids, and content that spells a control
// token stays text here (no prompt injection).
#include "src/chat/kimi_renderer.h"

#include <optional>
#include <string_view>

#include "absl/strings/str_cat.h"

namespace dsinfer::chat {
namespace {

constexpr std::string_view kDefaultSystem = "You are Kimi, an AI assistant created by Moonshot AI.";

struct KimiTokens {
  int32_t system, user, assistant, middle, end;
};

absl::Status Invalid(const std::string& field, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", what));
}

}  // namespace

absl::StatusOr<ChatPrompt> RenderKimiChat(const Tokenizer& tokenizer,
                                          absl::Span<const Message> messages,
                                          absl::Span<const Tool> tools,
                                          const RenderOptions& options) {
  if (!tools.empty()) return Invalid("tools", "the Kimi-K2 chat format is served without tools");
  for (size_t i = 0; i < messages.size(); ++i) {
    const Message& m = messages[i];
    const std::string at = absl::StrCat("messages[", i, "]");
    if (m.role != "system" && m.role != "user" && m.role != "assistant") {
      return Invalid(at + ".role",
                     absl::StrCat("unknown role \"", m.role,
                                  "\" (the Kimi-K2 chat format takes system, user or assistant)"));
    }
    if (!m.tool_calls.empty()) {
      return Invalid(at + ".tool_calls", "the Kimi-K2 chat format is served without tools");
    }
  }
  KimiTokens t{};
  for (auto [name, slot] : {std::pair{"<|im_system|>", &t.system},
                            {"<|im_user|>", &t.user},
                            {"<|im_assistant|>", &t.assistant},
                            {"<|im_middle|>", &t.middle},
                            {"<|im_end|>", &t.end}}) {
    std::optional<int32_t> id = tokenizer.TokenId(name);
    if (!id.has_value()) {
      return absl::FailedPreconditionError(
          absl::StrCat("the Kimi-K2 chat format needs the token ", name));
    }
    *slot = *id;
  }

  ChatPrompt out;
  std::vector<int32_t>& ids = out.ids;
  auto text = [&](std::string_view s) {
    const std::vector<int32_t> more = tokenizer.EncodePlain(s);
    ids.insert(ids.end(), more.begin(), more.end());
  };
  // One block: role token, role name, <|im_middle|>, content, and <|im_end|> when `close`.
  auto block = [&](int32_t role_token, std::string_view role, std::string_view content,
                   bool close) {
    ids.push_back(role_token);
    text(role);
    ids.push_back(t.middle);
    text(content);
    if (close) ids.push_back(t.end);
  };
  if (!messages.empty() && messages[0].role != "system") {
    block(t.system, "system", kDefaultSystem, /*close=*/true);
  }
  for (size_t i = 0; i < messages.size(); ++i) {
    const Message& m = messages[i];
    const int32_t role_token = m.role == "user"        ? t.user
                               : m.role == "assistant" ? t.assistant
                                                       : t.system;
    const bool last = i + 1 == messages.size();
    block(role_token, m.role, m.content, /*close=*/!last || options.add_generation_prompt);
  }
  if (options.add_generation_prompt) {
    ids.push_back(t.assistant);
    text("assistant");
    ids.push_back(t.middle);
  }
  absl::StatusOr<std::string> decoded = tokenizer.Decode(ids);
  if (!decoded.ok()) return decoded.status();
  out.text = *std::move(decoded);
  return out;
}

}  // namespace dsinfer::chat
