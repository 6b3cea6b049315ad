#include "src/chat/chat_json.h"

#include <string>

#include "absl/strings/str_cat.h"

namespace dsinfer::chat {
namespace {

using OJson = nlohmann::ordered_json;

absl::Status Invalid(absl::string_view field, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", what));
}

absl::StatusOr<std::string> ContentText(const OJson& v, const std::string& at) {
  if (v.is_null()) return std::string();
  if (v.is_string()) return v.get<std::string>();
  if (!v.is_array()) return Invalid(at, "must be a string, null or an array of text parts");
  std::string text;
  for (size_t k = 0; k < v.size(); ++k) {
    const OJson& part = v[k];
    const std::string p = absl::StrCat(at, "[", k, "]");
    if (!part.is_object()) return Invalid(p, "must be an object");
    const std::string type = part.value("type", "");
    if (type != "text") {
      return Invalid(absl::StrCat(p, ".type"),
                     absl::StrCat("unsupported content part \"", type, "\" (only \"text\")"));
    }
    auto t = part.find("text");
    if (t == part.end() || !t->is_string())
      return Invalid(absl::StrCat(p, ".text"), "must be a string");
    text.append(t->get<std::string>());
  }
  return text;
}

absl::StatusOr<std::string> OptionalString(const OJson& obj, const char* key,
                                           const std::string& at) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return std::string();
  if (!it->is_string()) return Invalid(absl::StrCat(at, ".", key), "must be a string");
  return it->get<std::string>();
}

absl::StatusOr<ToolCall> ParseToolCall(const OJson& v, const std::string& at) {
  if (!v.is_object()) return Invalid(at, "must be an object");
  ToolCall call;
  absl::StatusOr<std::string> id = OptionalString(v, "id", at);
  if (!id.ok()) return id.status();
  call.id = *id;
  absl::StatusOr<std::string> type = OptionalString(v, "type", at);
  if (!type.ok()) return type.status();
  if (!type->empty()) call.type = *type;
  auto fn = v.find("function");
  if (fn == v.end() || !fn->is_object())
    return Invalid(absl::StrCat(at, ".function"), "must be an object");
  const std::string f = absl::StrCat(at, ".function");
  absl::StatusOr<std::string> name = OptionalString(*fn, "name", f);
  if (!name.ok()) return name.status();
  call.name = *name;
  auto args = fn->find("arguments");
  if (args == fn->end() || args->is_null()) {
    call.arguments = "{}";
  } else if (args->is_string()) {
    call.arguments = args->get<std::string>();
  } else if (args->is_object()) {
    call.arguments = args->dump();
  } else {
    return Invalid(absl::StrCat(f, ".arguments"), "must be a JSON string");
  }
  return call;
}

absl::StatusOr<std::vector<Message>> ParseMessagesImpl(const OJson& messages) {
  if (!messages.is_array()) return Invalid("messages", "must be an array");
  std::vector<Message> out;
  out.reserve(messages.size());
  for (size_t i = 0; i < messages.size(); ++i) {
    const OJson& v = messages[i];
    const std::string at = absl::StrCat("messages[", i, "]");
    if (!v.is_object()) return Invalid(at, "must be an object");
    Message m;
    auto role = v.find("role");
    if (role == v.end() || !role->is_string())
      return Invalid(absl::StrCat(at, ".role"), "must be a string");
    m.role = role->get<std::string>();
    if (auto c = v.find("content"); c != v.end()) {
      absl::StatusOr<std::string> text = ContentText(*c, absl::StrCat(at, ".content"));
      if (!text.ok()) return text.status();
      m.content = std::move(*text);
    }
    if (auto calls = v.find("tool_calls"); calls != v.end() && !calls->is_null()) {
      if (!calls->is_array()) return Invalid(absl::StrCat(at, ".tool_calls"), "must be an array");
      for (size_t j = 0; j < calls->size(); ++j) {
        absl::StatusOr<ToolCall> call =
            ParseToolCall((*calls)[j], absl::StrCat(at, ".tool_calls[", j, "]"));
        if (!call.ok()) return call.status();
        m.tool_calls.push_back(std::move(*call));
      }
    }
    absl::StatusOr<std::string> id = OptionalString(v, "tool_call_id", at);
    if (!id.ok()) return id.status();
    m.tool_call_id = std::move(*id);
    out.push_back(std::move(m));
  }
  return out;
}

absl::StatusOr<std::vector<Tool>> ParseToolsImpl(const OJson& tools) {
  if (tools.is_null()) return std::vector<Tool>();
  if (!tools.is_array()) return Invalid("tools", "must be an array");
  std::vector<Tool> out;
  for (size_t k = 0; k < tools.size(); ++k) {
    const OJson& v = tools[k];
    const std::string at = absl::StrCat("tools[", k, "]");
    if (!v.is_object()) return Invalid(at, "must be an object");
    const std::string type = v.value("type", "function");
    if (type != "function") {
      return Invalid(absl::StrCat(at, ".type"),
                     absl::StrCat("unsupported type \"", type, "\" (expected \"function\")"));
    }
    auto fn = v.find("function");
    if (fn == v.end() || !fn->is_object())
      return Invalid(absl::StrCat(at, ".function"), "must be an object");
    const std::string f = absl::StrCat(at, ".function");
    Tool tool;
    absl::StatusOr<std::string> name = OptionalString(*fn, "name", f);
    if (!name.ok()) return name.status();
    if (name->empty()) return Invalid(absl::StrCat(f, ".name"), "required");
    tool.name = std::move(*name);
    absl::StatusOr<std::string> description = OptionalString(*fn, "description", f);
    if (!description.ok()) return description.status();
    tool.description = std::move(*description);
    if (auto p = fn->find("parameters"); p != fn->end() && !p->is_null()) {
      if (!p->is_object()) return Invalid(absl::StrCat(f, ".parameters"), "must be an object");
      tool.parameters = *p;
    }
    out.push_back(std::move(tool));
  }
  return out;
}

absl::StatusOr<bool> ThinkingImpl(const OJson& kwargs) {
  if (kwargs.is_null()) return false;
  if (!kwargs.is_object()) return Invalid("chat_template_kwargs", "must be an object");
  for (const char* key : {"thinking", "enable_thinking"}) {
    auto it = kwargs.find(key);
    if (it == kwargs.end() || it->is_null()) continue;
    if (!it->is_boolean())
      return Invalid(absl::StrCat("chat_template_kwargs.", key), "must be a boolean");
    return it->get<bool>();
  }
  return false;
}

// nlohmann::json -> ordered_json keeps the (sorted) order it has; only the tool schemas' order
// is visible in the prompt.
OJson Ordered(const nlohmann::json& v) {
  return OJson::parse(v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

}  // namespace

absl::StatusOr<std::vector<Message>> ParseMessages(const OJson& messages) {
  return ParseMessagesImpl(messages);
}
absl::StatusOr<std::vector<Message>> ParseMessages(const nlohmann::json& messages) {
  return ParseMessagesImpl(Ordered(messages));
}
absl::StatusOr<std::vector<Tool>> ParseTools(const OJson& tools) { return ParseToolsImpl(tools); }
absl::StatusOr<std::vector<Tool>> ParseTools(const nlohmann::json& tools) {
  return ParseToolsImpl(Ordered(tools));
}
absl::StatusOr<bool> ThinkingFromTemplateKwargs(const OJson& kwargs) {
  return ThinkingImpl(kwargs);
}
absl::StatusOr<bool> ThinkingFromTemplateKwargs(const nlohmann::json& kwargs) {
  return ThinkingImpl(Ordered(kwargs));
}

}  // namespace dsinfer::chat
