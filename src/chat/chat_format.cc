#include "src/chat/chat_format.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace dsinfer::chat {
namespace {

bool Has(absl::string_view text, absl::string_view fragment) {
  return absl::StrContains(text, fragment);
}

// V3.1's per-request switch: `{% if not thinking is defined %}{% set thinking = false %}` and
// `{%- if not thinking %}` around the generation prompt. Spacing varies between copies.
bool HasThinkingSwitch(absl::string_view t) {
  return Has(t, "thinking is defined") || Has(t, "if not thinking") || Has(t, "if thinking");
}

// V3/R1 calls print `tool['type']` before <｜tool▁sep｜> and fence the arguments as ```json.
bool HasV3ToolSyntax(absl::string_view t) { return Has(t, "tool['type']") && Has(t, "```json"); }

}  // namespace

std::string_view ChatFormatName(ChatFormatKind kind) {
  switch (kind) {
    case ChatFormatKind::kV3:
      return "deepseek-v3";
    case ChatFormatKind::kR1:
      return "deepseek-r1";
    case ChatFormatKind::kV31:
      return "deepseek-v3.1";
    case ChatFormatKind::kKimiK2:
      return "kimi-k2";
  }
  return "unknown";
}

ChatFormat RecognizeChatTemplate(std::string_view jinja) {
  const absl::string_view t(jinja.data(), jinja.size());
  if (Has(t, "<|im_middle|>")) return {ChatFormatKind::kKimiK2, ""};
  const bool deepseek_turns = Has(t, "<｜User｜>") && Has(t, "<｜Assistant｜>");
  if (!deepseek_turns) {
    std::string why = Has(t, "DSML") ? "a DSML tool-call template (V3.2 and later) is not supported"
                                     : "the chat_template has no <｜User｜>/<｜Assistant｜> turns";
    return {ChatFormatKind::kV3, absl::StrCat(why, "; using the plain DeepSeek-V3 format")};
  }
  if (HasThinkingSwitch(t) && Has(t, "</think>") && !HasV3ToolSyntax(t)) {
    return {ChatFormatKind::kV31, ""};
  }
  // R1 forces thinking by opening the block in the generation prompt. Templates that only
  // strip history reasoning (`split('</think>')`) but end in a bare <｜Assistant｜> (the first
  // R1 release, R1-0528) leave opening <think> to the model: V3 rendering, and the output
  // parser notices a leading <think>.
  if (Has(t, "<｜Assistant｜><think>")) return {ChatFormatKind::kR1, ""};
  return {ChatFormatKind::kV3, ""};
}

absl::StatusOr<ChatFormat> LoadChatFormat(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
  std::stringstream buf;
  buf << in.rdbuf();
  const nlohmann::json config =
      nlohmann::json::parse(buf.str(), nullptr, /*allow_exceptions=*/false);
  if (config.is_discarded() || !config.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": not a JSON object"));
  }
  auto it = config.find("chat_template");
  if (it == config.end() || it->is_null()) {
    return ChatFormat{
        ChatFormatKind::kV3,
        absl::StrCat(path, " has no chat_template; using the plain DeepSeek-V3 format")};
  }
  if (it->is_string()) return RecognizeChatTemplate(it->get_ref<const std::string&>());
  if (it->is_array()) {
    // HF's named templates: use "default", else the first one.
    const nlohmann::json* chosen = nullptr;
    for (const nlohmann::json& entry : *it) {
      if (!entry.is_object() || !entry.contains("template") || !entry["template"].is_string()) {
        return absl::InvalidArgumentError(
            absl::StrCat(path, ": chat_template entries need a string \"template\""));
      }
      if (chosen == nullptr || entry.value("name", "") == "default") chosen = &entry;
      if (entry.value("name", "") == "default") break;
    }
    if (chosen != nullptr) return RecognizeChatTemplate((*chosen)["template"].get<std::string>());
  }
  return absl::InvalidArgumentError(
      absl::StrCat(path, ": chat_template must be a string or a non-empty list of templates"));
}

absl::StatusOr<ChatFormat> ChatFormatOfModel(const std::string& model_dir,
                                             const Tokenizer* tokenizer) {
  const std::string path = (std::filesystem::path(model_dir) / "tokenizer_config.json").string();
  ChatFormat format{ChatFormatKind::kV3,
                    absl::StrCat(model_dir,
                                 " has no tokenizer_config.json; using the plain "
                                 "DeepSeek-V3 format")};
  if (std::filesystem::exists(path)) {
    absl::StatusOr<ChatFormat> loaded = LoadChatFormat(path);
    if (!loaded.ok()) return loaded.status();
    format = *std::move(loaded);
  }
  if (!format.note.empty() && tokenizer != nullptr &&
      tokenizer->TokenId("<|im_middle|>").has_value()) {
    return ChatFormat{ChatFormatKind::kKimiK2,
                      "no recognised chat_template; the tokenizer's <|im_middle|> token selects "
                      "the Kimi-K2 format"};
  }
  return format;
}

}  // namespace dsinfer::chat
