// Kimi-K2's chat format, natively: control tokens are inserted as ids, role names and message
// text go through EncodePlain. HF renders the template to text and encodes it with special
// tokens allowed, so each stretch between two control tokens is encoded on its own; encoding
// each role name and content separately gives the same ids, and content that spells a control
// token stays text here (no prompt injection).
#include "absl/strings/str_cat.h"
#include "src/tokenizer/chat_template.h"

namespace dsinfer {
namespace {

constexpr std::string_view kDefaultSystem =
    "You are Kimi, an AI assistant created by Moonshot AI.";

struct KimiTokens {
  int32_t system, user, assistant, middle, end;
};

void Append(std::vector<int32_t>* ids, const std::vector<int32_t>& more) {
  ids->insert(ids->end(), more.begin(), more.end());
}

}  // namespace

absl::StatusOr<std::vector<int32_t>> ApplyKimiChatTemplate(const Tokenizer& tokenizer,
                                                           absl::Span<const ChatMessage> messages,
                                                           bool add_generation_prompt) {
  for (size_t i = 0; i < messages.size(); ++i) {
    const std::string& r = messages[i].role;
    if (r != "system" && r != "user" && r != "assistant") {
      return absl::InvalidArgumentError(absl::StrCat("chat message ", i, ": unsupported role \"", r,
                                                     "\" (expected system, user or assistant)"));
    }
  }
  KimiTokens t{};
  for (auto [name, slot] : {std::pair{"<|im_system|>", &t.system}, {"<|im_user|>", &t.user},
                            {"<|im_assistant|>", &t.assistant}, {"<|im_middle|>", &t.middle},
                            {"<|im_end|>", &t.end}}) {
    std::optional<int32_t> id = tokenizer.TokenId(name);
    if (!id.has_value()) {
      return absl::FailedPreconditionError(
          absl::StrCat("Kimi chat template needs the token ", name));
    }
    *slot = *id;
  }

  std::vector<int32_t> ids;
  // One block: role token, role name, <|im_middle|>, content, and <|im_end|> when `close`.
  auto block = [&](int32_t role_token, std::string_view role, std::string_view content,
                   bool close) {
    ids.push_back(role_token);
    Append(&ids, tokenizer.EncodePlain(role));
    ids.push_back(t.middle);
    Append(&ids, tokenizer.EncodePlain(content));
    if (close) ids.push_back(t.end);
  };
  if (!messages.empty() && messages[0].role != "system") {
    block(t.system, "system", kDefaultSystem, /*close=*/true);
  }
  for (size_t i = 0; i < messages.size(); ++i) {
    const ChatMessage& m = messages[i];
    const int32_t role_token =
        m.role == "user" ? t.user : m.role == "assistant" ? t.assistant : t.system;
    const bool last = i + 1 == messages.size();
    block(role_token, m.role, m.content, /*close=*/!last || add_generation_prompt);
  }
  if (add_generation_prompt) {
    ids.push_back(t.assistant);
    Append(&ids, tokenizer.EncodePlain("assistant"));
    ids.push_back(t.middle);
  }
  return ids;
}

}  // namespace dsinfer
