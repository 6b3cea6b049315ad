#include "src/server/request_validation.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "src/core/status_macros.h"
#include "src/sampling/sampler.h"
#include "src/tokenizer/chat_template.h"
#include "src/tokenizer/utf8.h"

namespace dsinfer {
namespace {

absl::Status Invalid(absl::string_view field, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", what));
}

absl::Status NeedsTokenizer(const Tokenizer* tokenizer, absl::string_view field) {
  if (tokenizer != nullptr) return absl::OkStatus();
  return Invalid(field, "the served model has no tokenizer; send token_ids");
}

absl::Status CheckText(absl::string_view field, std::string_view text) {
  // The wire parser already refuses invalid UTF-8; this keeps the rule for in-process callers.
  if (!utf8::IsValid(text)) return Invalid(field, "invalid UTF-8");
  return absl::OkStatus();
}

absl::Status CheckTokenId(absl::string_view field, int32_t id, int64_t vocab_size) {
  if (id < 0 || id >= vocab_size) {
    return Invalid(field, absl::StrCat(id, " is outside the vocabulary [0, ", vocab_size, ")"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<int32_t>> PromptTokens(const v1::GenerateRequest& r,
                                                  const Tokenizer* tokenizer,
                                                  const RequestLimits& limits) {
  std::vector<int32_t> ids;
  switch (r.input_case()) {
    case v1::GenerateRequest::kChat:
      return ChatPromptTokens(r.chat(), tokenizer, "chat");
    case v1::GenerateRequest::kPrompt: {
      if (r.prompt().empty()) return Invalid("prompt", "must not be empty");
      RETURN_IF_ERROR(CheckText("prompt", r.prompt()));
      RETURN_IF_ERROR(NeedsTokenizer(tokenizer, "prompt"));
      if (auto bos = tokenizer->bos_id()) ids.push_back(*bos);
      // Untrusted text: special-token strings in it stay text.
      std::vector<int32_t> text = tokenizer->EncodePlain(r.prompt());
      ids.insert(ids.end(), text.begin(), text.end());
      return ids;
    }
    case v1::GenerateRequest::kTokenIds: {
      const auto& in = r.token_ids().ids();
      if (in.empty()) return Invalid("token_ids.ids", "must not be empty");
      for (int i = 0; i < in.size(); ++i) {
        RETURN_IF_ERROR(
            CheckTokenId(absl::StrCat("token_ids.ids[", i, "]"), in[i], limits.vocab_size));
      }
      return std::vector<int32_t>(in.begin(), in.end());
    }
    case v1::GenerateRequest::INPUT_NOT_SET:
      break;
  }
  return Invalid("input", "one of chat, prompt or token_ids is required");
}

absl::StatusOr<SamplingParams> Sampling(const v1::GenerateRequest& r, const RequestLimits& limits) {
  SamplingParams p;
  const v1::SamplingParams& s = r.sampling();
  if (s.has_temperature()) p.temperature = s.temperature();
  if (s.has_top_k()) p.top_k = s.top_k();
  if (s.has_top_p()) p.top_p = s.top_p();
  if (s.has_min_p()) p.min_p = s.min_p();
  if (s.has_repetition_penalty()) p.repetition_penalty = s.repetition_penalty();
  if (s.has_frequency_penalty()) p.frequency_penalty = s.frequency_penalty();
  if (s.has_presence_penalty()) p.presence_penalty = s.presence_penalty();
  if (s.has_seed()) p.seed = s.seed();
  if (absl::Status st = ValidateSamplingParams(p); !st.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("sampling.", st.message()));
  }
  if (r.stop_token_ids_size() > limits.max_stop_token_ids) {
    return Invalid("stop_token_ids", absl::StrCat("at most ", limits.max_stop_token_ids,
                                                  " ids, got ", r.stop_token_ids_size()));
  }
  for (int i = 0; i < r.stop_token_ids_size(); ++i) {
    RETURN_IF_ERROR(CheckTokenId(absl::StrCat("stop_token_ids[", i, "]"), r.stop_token_ids(i),
                                 limits.vocab_size));
    p.stop_token_ids.push_back(r.stop_token_ids(i));
  }
  return p;
}

}  // namespace

absl::StatusOr<std::vector<int32_t>> ChatPromptTokens(const v1::ChatInput& chat,
                                                      const Tokenizer* tokenizer,
                                                      absl::string_view field) {
  const std::string messages = absl::StrCat(field, ".messages");
  if (chat.messages().empty()) return Invalid(messages, "must not be empty");
  std::vector<ChatMessage> msgs;
  msgs.reserve(chat.messages_size());
  for (int i = 0; i < chat.messages_size(); ++i) {
    const v1::ChatMessage& m = chat.messages(i);
    const std::string at = absl::StrCat(messages, "[", i, "]");
    if (m.role() != "system" && m.role() != "user" && m.role() != "assistant") {
      RETURN_IF_ERROR(CheckText(at + ".role", m.role()));
      return Invalid(at + ".role",
                     absl::StrCat("unknown role \"", m.role(), "\" (system, user or assistant)"));
    }
    RETURN_IF_ERROR(CheckText(at + ".content", m.content()));
    msgs.push_back({m.role(), m.content()});
  }
  RETURN_IF_ERROR(NeedsTokenizer(tokenizer, field));
  absl::StatusOr<std::vector<int32_t>> ids =
      ApplyChatTemplate(*tokenizer, msgs, /*add_generation_prompt=*/true);
  if (!ids.ok() && ids.status().code() == absl::StatusCode::kInvalidArgument) {
    return Invalid(field, ids.status().message());
  }
  return ids;
}

absl::StatusOr<EngineRequest> ValidateGenerateRequest(const v1::GenerateRequest& r,
                                                      const Tokenizer* tokenizer,
                                                      const RequestLimits& limits) {
  EngineRequest e;
  ASSIGN_OR_RETURN(e.prompt, PromptTokens(r, tokenizer, limits));
  if (r.input_case() != v1::GenerateRequest::kTokenIds) {
    // Ids from our own tokenizer: outside the model's vocabulary means a mismatched deployment.
    for (int32_t id : e.prompt) {
      if (id < 0 || id >= limits.vocab_size) {
        return absl::FailedPreconditionError(absl::StrCat("the tokenizer produced id ", id,
                                                          " outside the model's vocabulary of ",
                                                          limits.vocab_size));
      }
    }
  }
  if (r.max_tokens() == 0) return Invalid("max_tokens", "must be >= 1");
  const int64_t prompt_len = static_cast<int64_t>(e.prompt.size());
  const int64_t max_tokens = r.max_tokens();
  if (prompt_len + max_tokens > limits.context_length) {
    return Invalid("max_tokens",
                   absl::StrCat("the prompt (", prompt_len, " tokens) + max_tokens (", max_tokens,
                                ") = ", prompt_len + max_tokens, " exceeds the context length ",
                                limits.context_length));
  }
  e.max_tokens = max_tokens;
  ASSIGN_OR_RETURN(e.sampling, Sampling(r, limits));
  if (r.stop_size() > 0) {
    if (r.stop_size() > limits.max_stop_strings) {
      return Invalid("stop", absl::StrCat("at most ", limits.max_stop_strings,
                                          " stop strings, got ", r.stop_size()));
    }
    RETURN_IF_ERROR(NeedsTokenizer(tokenizer, "stop"));
    for (int i = 0; i < r.stop_size(); ++i) {
      const std::string at = absl::StrCat("stop[", i, "]");
      const std::string& s = r.stop(i);
      if (s.empty()) return Invalid(at, "must not be empty");
      if (static_cast<int>(s.size()) > limits.max_stop_string_bytes) {
        return Invalid(at,
                       absl::StrCat(s.size(), " bytes; at most ", limits.max_stop_string_bytes));
      }
      RETURN_IF_ERROR(CheckText(at, s));
      e.stop.push_back(s);
    }
  }
  e.ignore_eos = r.ignore_eos();
  if (static_cast<int>(r.client_request_id().size()) > limits.max_client_request_id_bytes) {
    return Invalid("client_request_id",
                   absl::StrCat(r.client_request_id().size(), " bytes; at most ",
                                limits.max_client_request_id_bytes));
  }
  RETURN_IF_ERROR(CheckText("client_request_id", r.client_request_id()));
  e.client_request_id = r.client_request_id();
  if (!v1::Priority_IsValid(r.priority())) {
    return Invalid("priority", absl::StrCat("unknown value ", static_cast<int>(r.priority())));
  }
  return e;
}

absl::StatusOr<std::vector<int32_t>> TokenizeRequestTokens(const v1::TokenizeRequest& r,
                                                           const Tokenizer* tokenizer) {
  switch (r.input_case()) {
    case v1::TokenizeRequest::kText:
      RETURN_IF_ERROR(CheckText("text", r.text()));
      RETURN_IF_ERROR(NeedsTokenizer(tokenizer, "text"));
      return tokenizer->EncodePlain(r.text());
    case v1::TokenizeRequest::kChat:
      return ChatPromptTokens(r.chat(), tokenizer, "chat");
    case v1::TokenizeRequest::INPUT_NOT_SET:
      break;
  }
  return Invalid("input", "one of text or chat is required");
}

}  // namespace dsinfer
