#include "src/server/request_validation.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "src/api/model_internal.h"
#include "src/core/status_macros.h"
#include "src/tokenizer/utf8.h"

namespace dsinfer {
namespace {

absl::Status Invalid(absl::string_view field, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", what));
}

ServingFieldNames GrpcNames(absl::string_view chat_field) {
  ServingFieldNames names;  // the defaults are the GenerateRequest's field paths
  names.chat = std::string(chat_field);
  names.messages = absl::StrCat(chat_field, ".messages");
  names.tools = absl::StrCat(chat_field, ".tools");
  return names;
}

// The ChatInput as the protocol-neutral conversation; a tool's parameters_json must be a JSON
// object (parsed in order: it is printed into the prompt).
absl::StatusOr<ServingChat> ChatFromProto(const v1::ChatInput& chat, absl::string_view field) {
  ServingChat out;
  out.messages.reserve(chat.messages_size());
  for (const v1::ChatMessage& m : chat.messages()) {
    chat::Message msg;
    msg.role = m.role();
    msg.content = m.content();
    msg.tool_call_id = m.tool_call_id();
    for (const v1::ToolCall& c : m.tool_calls()) {
      chat::ToolCall call;
      call.id = c.id();
      call.name = c.name();
      call.arguments = c.arguments();
      msg.tool_calls.push_back(std::move(call));
    }
    out.messages.push_back(std::move(msg));
  }
  for (int k = 0; k < chat.tools_size(); ++k) {
    const v1::Tool& t = chat.tools(k);
    chat::Tool tool;
    tool.name = t.name();
    tool.description = t.description();
    if (!t.parameters_json().empty()) {
      tool.parameters = nlohmann::ordered_json::parse(t.parameters_json(), nullptr,
                                                      /*allow_exceptions=*/false);
      if (tool.parameters.is_discarded() || !tool.parameters.is_object()) {
        return Invalid(absl::StrCat(field, ".tools[", k, "].parameters_json"),
                       "must be a JSON object (a JSON Schema)");
      }
    }
    out.tools.push_back(std::move(tool));
  }
  if (!v1::ToolChoice_IsValid(chat.tool_choice())) {
    return Invalid(absl::StrCat(field, ".tool_choice"),
                   absl::StrCat("unknown value ", static_cast<int>(chat.tool_choice())));
  }
  out.tool_choice =
      chat.tool_choice() == v1::TOOL_CHOICE_NONE ? ToolChoice::kNone : ToolChoice::kAuto;
  out.thinking = chat.thinking();
  return out;
}

// The GenerateRequest as the protocol-neutral request.
absl::StatusOr<ServingRequest> FromProto(const v1::GenerateRequest& r) {
  ServingRequest s;
  switch (r.input_case()) {
    case v1::GenerateRequest::kChat: {
      s.input = ServingRequest::Input::kChat;
      ASSIGN_OR_RETURN(s.chat, ChatFromProto(r.chat(), "chat"));
      break;
    }
    case v1::GenerateRequest::kPrompt:
      s.input = ServingRequest::Input::kPrompt;
      s.prompt = r.prompt();
      break;
    case v1::GenerateRequest::kTokenIds:
      s.input = ServingRequest::Input::kTokenIds;
      s.token_ids.assign(r.token_ids().ids().begin(), r.token_ids().ids().end());
      break;
    case v1::GenerateRequest::INPUT_NOT_SET:
      break;
  }
  const v1::SamplingParams& p = r.sampling();
  SamplingParams& q = s.sampling;
  if (p.has_temperature()) q.temperature = p.temperature();
  if (p.has_top_k()) q.top_k = p.top_k();
  if (p.has_top_p()) q.top_p = p.top_p();
  if (p.has_min_p()) q.min_p = p.min_p();
  if (p.has_repetition_penalty()) q.repetition_penalty = p.repetition_penalty();
  if (p.has_frequency_penalty()) q.frequency_penalty = p.frequency_penalty();
  if (p.has_presence_penalty()) q.presence_penalty = p.presence_penalty();
  if (p.has_seed()) q.seed = p.seed();
  s.stop_token_ids.assign(r.stop_token_ids().begin(), r.stop_token_ids().end());
  s.stop.assign(r.stop().begin(), r.stop().end());
  s.max_tokens = r.max_tokens();  // 0 (unset on the wire) is refused, as before
  s.ignore_eos = r.ignore_eos();
  s.client_request_id = r.client_request_id();
  return s;
}

}  // namespace

absl::StatusOr<std::vector<int32_t>> ChatPromptTokens(const v1::ChatInput& chat,
                                                      const ServingText& text,
                                                      absl::string_view field) {
  ASSIGN_OR_RETURN(ServingChat c, ChatFromProto(chat, field));
  ASSIGN_OR_RETURN(RenderedChat rendered, RenderServingChat(c, text, GrpcNames(field)));
  return std::move(rendered.ids);
}

const ServingFieldNames& GenerateFieldNames() {
  static const ServingFieldNames* names = new ServingFieldNames(GrpcNames("chat"));
  return *names;
}

absl::StatusOr<GenerateInput> GenerateRequestToApi(const v1::GenerateRequest& r) {
  ASSIGN_OR_RETURN(ServingRequest s, FromProto(r));
  if (!v1::Priority_IsValid(r.priority())) {
    return Invalid("priority", absl::StrCat("unknown value ", static_cast<int>(r.priority())));
  }
  return GenerateInput{.request = api::RequestFromServing(s), .input = s.input};
}

absl::StatusOr<std::vector<int32_t>> TokenizeRequestTokens(const v1::TokenizeRequest& r,
                                                           const ServingText& serving_text) {
  const Tokenizer* tokenizer = serving_text.tokenizer;
  switch (r.input_case()) {
    case v1::TokenizeRequest::kText:
      if (!utf8::IsValid(r.text())) return Invalid("text", "invalid UTF-8");
      if (tokenizer == nullptr) {
        return Invalid("text", "the served model has no tokenizer; send token_ids");
      }
      return tokenizer->EncodePlain(r.text());
    case v1::TokenizeRequest::kChat:
      return ChatPromptTokens(r.chat(), serving_text, "chat");
    case v1::TokenizeRequest::INPUT_NOT_SET:
      break;
  }
  return Invalid("input", "one of text or chat is required");
}

}  // namespace dsinfer
