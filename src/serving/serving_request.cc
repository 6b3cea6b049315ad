#include "src/serving/serving_request.h"

#include <algorithm>
#include <string>

#include "absl/strings/str_cat.h"
#include "src/chat/prompt_renderer.h"
#include "src/core/status_macros.h"
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
  // Wire parsers already refuse invalid UTF-8; this keeps the rule for every caller.
  if (!utf8::IsValid(text)) return Invalid(field, "invalid UTF-8");
  return absl::OkStatus();
}

absl::Status CheckTokenId(absl::string_view field, int32_t id, int64_t vocab_size) {
  if (id < 0 || id >= vocab_size) {
    return Invalid(field, absl::StrCat(id, " is outside the vocabulary [0, ", vocab_size, ")"));
  }
  return absl::OkStatus();
}

// src/chat names fields as the OpenAI API does ("messages[2].role: ..."); the front end's own
// names replace them ("chat.messages[2].role: ..." on gRPC).
absl::Status Renamed(const absl::Status& st, const ServingFieldNames& names) {
  if (st.code() != absl::StatusCode::kInvalidArgument) return st;
  const absl::string_view m = st.message();
  for (const auto& [from, to] :
       {std::pair<absl::string_view, const std::string&>{"messages", names.messages},
        {"tools", names.tools}}) {
    if (m.size() > from.size() && m.substr(0, from.size()) == from &&
        (m[from.size()] == '[' || m[from.size()] == ':' || m[from.size()] == '.')) {
      return absl::InvalidArgumentError(absl::StrCat(to, m.substr(from.size())));
    }
  }
  return absl::InvalidArgumentError(absl::StrCat(names.chat, ": ", m));
}

absl::Status CheckChatText(const ServingChat& c, const ServingFieldNames& names) {
  for (size_t i = 0; i < c.messages.size(); ++i) {
    const chat::Message& m = c.messages[i];
    const std::string at = absl::StrCat(names.messages, "[", i, "]");
    RETURN_IF_ERROR(CheckText(at + ".role", m.role));
    // Before anything needs the tokenizer: a token-ids-only server still names the field.
    if (m.role != "system" && m.role != "user" && m.role != "assistant" && m.role != "tool") {
      return Invalid(at + ".role", absl::StrCat("unknown role \"", m.role,
                                                "\" (system, user, assistant or tool)"));
    }
    RETURN_IF_ERROR(CheckText(at + ".content", m.content));
    RETURN_IF_ERROR(CheckText(at + ".tool_call_id", m.tool_call_id));
    for (size_t j = 0; j < m.tool_calls.size(); ++j) {
      const std::string call = absl::StrCat(at, ".tool_calls[", j, "]");
      RETURN_IF_ERROR(CheckText(call + ".id", m.tool_calls[j].id));
      RETURN_IF_ERROR(CheckText(call + ".function.name", m.tool_calls[j].name));
      RETURN_IF_ERROR(CheckText(call + ".function.arguments", m.tool_calls[j].arguments));
    }
  }
  for (size_t k = 0; k < c.tools.size(); ++k) {
    const std::string at = absl::StrCat(names.tools, "[", k, "].function");
    RETURN_IF_ERROR(CheckText(at + ".name", c.tools[k].name));
    RETURN_IF_ERROR(CheckText(at + ".description", c.tools[k].description));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<int32_t>> PromptTokens(
    const ServingRequest& r, const ServingText& text, const RequestLimits& limits,
    const ServingFieldNames& names, std::optional<chat::OutputParserOptions>* output) {
  const Tokenizer* tokenizer = text.tokenizer;
  std::vector<int32_t> ids;
  switch (r.input) {
    case ServingRequest::Input::kChat: {
      ASSIGN_OR_RETURN(RenderedChat rendered, RenderServingChat(r.chat, text, names));
      *output = rendered.output;
      return std::move(rendered.ids);
    }
    case ServingRequest::Input::kPrompt: {
      if (r.prompt.empty()) return Invalid(names.prompt, "must not be empty");
      RETURN_IF_ERROR(CheckText(names.prompt, r.prompt));
      RETURN_IF_ERROR(NeedsTokenizer(tokenizer, names.prompt));
      if (auto bos = tokenizer->prompt_bos_id()) ids.push_back(*bos);
      // Untrusted text: special-token strings in it stay text.
      std::vector<int32_t> text = tokenizer->EncodePlain(r.prompt);
      ids.insert(ids.end(), text.begin(), text.end());
      return ids;
    }
    case ServingRequest::Input::kTokenIds: {
      if (r.token_ids.empty()) return Invalid(names.token_ids, "must not be empty");
      for (size_t i = 0; i < r.token_ids.size(); ++i) {
        RETURN_IF_ERROR(CheckTokenId(absl::StrCat(names.token_ids, "[", i, "]"), r.token_ids[i],
                                     limits.vocab_size));
      }
      return r.token_ids;
    }
    case ServingRequest::Input::kNone:
      break;
  }
  return Invalid(names.input, names.input_choices);
}

absl::StatusOr<SamplingParams> Sampling(const ServingRequest& r, const RequestLimits& limits,
                                        const ServingFieldNames& names) {
  SamplingParams p = r.sampling;
  p.stop_token_ids.clear();
  if (absl::Status st = ValidateSamplingParams(p); !st.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(names.sampling_prefix, st.message()));
  }
  if (static_cast<int>(r.stop_token_ids.size()) > limits.max_stop_token_ids) {
    return Invalid(names.stop_token_ids, absl::StrCat("at most ", limits.max_stop_token_ids,
                                                      " ids, got ", r.stop_token_ids.size()));
  }
  for (size_t i = 0; i < r.stop_token_ids.size(); ++i) {
    RETURN_IF_ERROR(CheckTokenId(absl::StrCat(names.stop_token_ids, "[", i, "]"),
                                 r.stop_token_ids[i], limits.vocab_size));
    p.stop_token_ids.push_back(r.stop_token_ids[i]);
  }
  return p;
}

}  // namespace

absl::StatusOr<RenderedChat> RenderServingChat(const ServingChat& c, const ServingText& text,
                                               const ServingFieldNames& names) {
  if (c.messages.empty()) return Invalid(names.messages, "must not be empty");
  RETURN_IF_ERROR(CheckChatText(c, names));
  RETURN_IF_ERROR(NeedsTokenizer(text.tokenizer, names.chat));
  // "none": the model is not offered the tools, and markup it writes anyway stays text.
  const bool tools_on = c.tool_choice == ToolChoice::kAuto && !c.tools.empty();
  chat::RenderOptions options;
  options.add_generation_prompt = true;
  options.thinking = c.thinking;
  absl::StatusOr<chat::ChatPrompt> prompt = chat::RenderChat(
      *text.tokenizer, text.chat_format, c.messages,
      tools_on ? absl::MakeConstSpan(c.tools) : absl::Span<const chat::Tool>(), options);
  if (!prompt.ok()) return Renamed(prompt.status(), names);
  RenderedChat out;
  if (text.chat_format.kind != chat::ChatFormatKind::kKimiK2) {
    chat::OutputParserOptions o = chat::OutputParserOptions::For(text.chat_format, *prompt);
    o.parse_tool_calls = tools_on;
    out.output = o;
  }
  out.ids = std::move(prompt->ids);
  return out;
}

absl::StatusOr<ValidatedRequest> ValidateServingRequest(const ServingRequest& r,
                                                        const ServingText& text,
                                                        const RequestLimits& limits,
                                                        const ServingFieldNames& names) {
  const Tokenizer* tokenizer = text.tokenizer;
  ValidatedRequest out;
  EngineRequest& e = out.engine;
  ASSIGN_OR_RETURN(e.prompt, PromptTokens(r, text, limits, names, &out.chat_output));
  if (r.input != ServingRequest::Input::kTokenIds) {
    // Ids from our own tokenizer: outside the model's vocabulary means a mismatched deployment.
    for (int32_t id : e.prompt) {
      if (id < 0 || id >= limits.vocab_size) {
        return absl::FailedPreconditionError(absl::StrCat("the tokenizer produced id ", id,
                                                          " outside the model's vocabulary of ",
                                                          limits.vocab_size));
      }
    }
  }
  const int64_t prompt_len = static_cast<int64_t>(e.prompt.size());
  if (r.max_tokens.has_value() && *r.max_tokens <= 0) {
    return Invalid(names.max_tokens, "must be >= 1");
  }
  if (!r.max_tokens.has_value() && prompt_len >= limits.context_length) {
    return Invalid(names.max_tokens,
                   absl::StrCat("the prompt (", prompt_len,
                                " tokens) leaves no room in the context length ",
                                limits.context_length));
  }
  int64_t room = limits.context_length - prompt_len;
  if (limits.kv_capacity_tokens > prompt_len) {
    room = std::min(room, limits.kv_capacity_tokens - prompt_len);
  }
  const int64_t max_tokens = r.max_tokens.value_or(room);
  if (prompt_len + max_tokens > limits.context_length) {
    return Invalid(names.max_tokens,
                   absl::StrCat("the prompt (", prompt_len, " tokens) + max_tokens (", max_tokens,
                                ") = ", prompt_len + max_tokens, " exceeds the context length ",
                                limits.context_length));
  }
  e.max_tokens = max_tokens;
  ASSIGN_OR_RETURN(e.sampling, Sampling(r, limits, names));
  if (!r.stop.empty()) {
    if (static_cast<int>(r.stop.size()) > limits.max_stop_strings) {
      return Invalid(names.stop, absl::StrCat("at most ", limits.max_stop_strings,
                                              " stop strings, got ", r.stop.size()));
    }
    RETURN_IF_ERROR(NeedsTokenizer(tokenizer, names.stop));
    for (size_t i = 0; i < r.stop.size(); ++i) {
      const std::string at = absl::StrCat(names.stop, "[", i, "]");
      const std::string& s = r.stop[i];
      if (s.empty()) return Invalid(at, "must not be empty");
      if (static_cast<int>(s.size()) > limits.max_stop_string_bytes) {
        return Invalid(at,
                       absl::StrCat(s.size(), " bytes; at most ", limits.max_stop_string_bytes));
      }
      RETURN_IF_ERROR(CheckText(at, s));
      e.stop.push_back(s);
    }
  }
  e.ignore_eos = r.ignore_eos;
  e.logprobs = r.logprobs;
  if (static_cast<int>(r.client_request_id.size()) > limits.max_client_request_id_bytes) {
    return Invalid(names.client_request_id,
                   absl::StrCat(r.client_request_id.size(), " bytes; at most ",
                                limits.max_client_request_id_bytes));
  }
  RETURN_IF_ERROR(CheckText(names.client_request_id, r.client_request_id));
  e.client_request_id = r.client_request_id;
  return out;
}

Priority EffectivePriority(std::optional<Priority> requested, Priority ceiling) {
  const Priority p = requested.value_or(Priority::kInteractive);
  // Lower value = more urgent: the ceiling is the most urgent class allowed.
  return static_cast<Priority>(std::max(static_cast<int>(p), static_cast<int>(ceiling)));
}

std::string FieldOfStatus(const absl::Status& st) {
  if (st.code() != absl::StatusCode::kInvalidArgument) return "";
  const absl::string_view m = st.message();
  const size_t colon = m.find(':');
  if (colon == absl::string_view::npos || colon > 80 ||
      m.substr(0, colon).find(' ') != absl::string_view::npos) {
    return "";
  }
  return std::string(m.substr(0, colon));
}

}  // namespace dsinfer
