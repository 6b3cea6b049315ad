#include "src/server/request_validation.h"

#include <string>

#include "absl/strings/str_cat.h"
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
  return names;
}

std::vector<ChatMessage> Messages(const v1::ChatInput& chat) {
  std::vector<ChatMessage> out;
  out.reserve(chat.messages_size());
  for (const v1::ChatMessage& m : chat.messages()) out.push_back({m.role(), m.content()});
  return out;
}

// The GenerateRequest as the protocol-neutral request.
ServingRequest FromProto(const v1::GenerateRequest& r) {
  ServingRequest s;
  switch (r.input_case()) {
    case v1::GenerateRequest::kChat:
      s.input = ServingRequest::Input::kChat;
      s.messages = Messages(r.chat());
      break;
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
                                                      const Tokenizer* tokenizer,
                                                      absl::string_view field) {
  return ChatMessagesTokens(Messages(chat), tokenizer, GrpcNames(field));
}

absl::StatusOr<EngineRequest> ValidateGenerateRequest(const v1::GenerateRequest& r,
                                                      const Tokenizer* tokenizer,
                                                      const RequestLimits& limits) {
  ASSIGN_OR_RETURN(EngineRequest e,
                   ValidateServingRequest(FromProto(r), tokenizer, limits, GrpcNames("chat")));
  if (!v1::Priority_IsValid(r.priority())) {
    return Invalid("priority", absl::StrCat("unknown value ", static_cast<int>(r.priority())));
  }
  return e;
}

absl::StatusOr<std::vector<int32_t>> TokenizeRequestTokens(const v1::TokenizeRequest& r,
                                                           const Tokenizer* tokenizer) {
  switch (r.input_case()) {
    case v1::TokenizeRequest::kText:
      if (!utf8::IsValid(r.text())) return Invalid("text", "invalid UTF-8");
      if (tokenizer == nullptr) {
        return Invalid("text", "the served model has no tokenizer; send token_ids");
      }
      return tokenizer->EncodePlain(r.text());
    case v1::TokenizeRequest::kChat:
      return ChatPromptTokens(r.chat(), tokenizer, "chat");
    case v1::TokenizeRequest::INPUT_NOT_SET:
      break;
  }
  return Invalid("input", "one of text or chat is required");
}

}  // namespace dsinfer
