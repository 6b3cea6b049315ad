#include "src/tokenizer/chat_template.h"

#include "absl/strings/str_cat.h"

namespace dsinfer {
namespace {

constexpr std::string_view kUserToken = "<｜User｜>";
constexpr std::string_view kAssistantToken = "<｜Assistant｜>";

void Append(std::vector<int32_t>* ids, const std::vector<int32_t>& more) {
  ids->insert(ids->end(), more.begin(), more.end());
}

}  // namespace

absl::StatusOr<std::vector<int32_t>> ApplyChatTemplate(const Tokenizer& tokenizer,
                                                       absl::Span<const ChatMessage> messages,
                                                       bool add_generation_prompt) {
  for (size_t i = 0; i < messages.size(); ++i) {
    const std::string& r = messages[i].role;
    if (r != "system" && r != "user" && r != "assistant") {
      return absl::InvalidArgumentError(absl::StrCat("chat message ", i, ": unsupported role \"", r,
                                                     "\" (expected system, user or assistant)"));
    }
  }
  if (tokenizer.TokenId("<|im_middle|>").has_value()) {
    return ApplyKimiChatTemplate(tokenizer, messages, add_generation_prompt);
  }
  const std::optional<int32_t> bos = tokenizer.bos_id();
  const std::optional<int32_t> eos = tokenizer.eos_id();
  const std::optional<int32_t> user = tokenizer.TokenId(kUserToken);
  const std::optional<int32_t> assistant = tokenizer.TokenId(kAssistantToken);
  if (!bos || !eos || !user || !assistant) {
    return absl::FailedPreconditionError(
        "chat template needs bos/eos (tokenizer_config.json) and the <｜User｜> and "
        "<｜Assistant｜> tokens");
  }

  std::vector<int32_t> ids = {*bos};
  std::string system;
  bool first_system = true;
  for (const ChatMessage& m : messages) {
    if (m.role != "system") continue;
    if (!first_system) system.append("\n\n");
    system.append(m.content);
    first_system = false;
  }
  Append(&ids, tokenizer.EncodePlain(system));
  for (const ChatMessage& m : messages) {
    if (m.role == "user") {
      ids.push_back(*user);
      Append(&ids, tokenizer.EncodePlain(m.content));
    } else if (m.role == "assistant") {
      ids.push_back(*assistant);
      Append(&ids, tokenizer.EncodePlain(m.content));
      ids.push_back(*eos);
    }
  }
  if (add_generation_prompt) ids.push_back(*assistant);
  return ids;
}

}  // namespace dsinfer
