#include "src/server/openai_protocol.h"

#include <cmath>
#include <limits>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "src/chat/chat_json.h"
#include "src/core/status_macros.h"
#include "src/tokenizer/utf8.h"

namespace dsinfer {
namespace {

using nlohmann::json;
// Requests are read in the client's key order: tool schemas are printed into the prompt as sent.
using ojson = nlohmann::ordered_json;

absl::Status Invalid(const std::string& param, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat(param, ": ", what));
}

absl::Status Unsupported(const std::string& param) {
  return Invalid(param, "not supported yet");
}

// Optional members read with their types checked; absent or null leaves `out` as it is.
absl::StatusOr<bool> Number(const ojson& body, const char* key, double* out) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return false;
  if (!it->is_number()) return Invalid(key, "must be a number");
  *out = it->get<double>();
  if (!std::isfinite(*out)) return Invalid(key, "must be finite");
  return true;
}

absl::StatusOr<bool> Integer(const ojson& body, const char* key, int64_t min, int64_t max,
                             int64_t* out) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return false;
  if (!it->is_number_integer()) return Invalid(key, "must be an integer");
  if (it->is_number_unsigned() && it->get<uint64_t>() > static_cast<uint64_t>(max)) {
    return Invalid(key, absl::StrCat("must be <= ", max));
  }
  const int64_t v = it->get<int64_t>();
  if (v < min) return Invalid(key, absl::StrCat("must be >= ", min));
  if (v > max) return Invalid(key, absl::StrCat("must be <= ", max));
  *out = v;
  return true;
}

absl::StatusOr<bool> Bool(const ojson& body, const char* key, bool* out) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return false;
  if (!it->is_boolean()) return Invalid(key, "must be true or false");
  *out = it->get<bool>();
  return true;
}

absl::Status Messages(const ojson& body, ServingRequest* s) {
  auto it = body.find("messages");
  if (it == body.end() || it->is_null()) return Invalid("messages", "required");
  s->input = ServingRequest::Input::kChat;
  // Roles, tool calls and tool results are checked where they are rendered (src/chat).
  ASSIGN_OR_RETURN(s->chat.messages, chat::ParseMessages(*it));
  for (chat::Message& m : s->chat.messages) {
    if (m.role == "developer") m.role = "system";  // OpenAI's newer name for the system role
  }
  return absl::OkStatus();
}

// tools, tool_choice ("auto" or "none"), chat_template_kwargs.thinking.
absl::Status ChatOptions(const ojson& body, ServingRequest* s) {
  if (auto it = body.find("tools"); it != body.end() && !it->is_null()) {
    ASSIGN_OR_RETURN(s->chat.tools, chat::ParseTools(*it));
  }
  if (auto it = body.find("tool_choice"); it != body.end() && !it->is_null()) {
    if (*it == "none") {
      s->chat.tool_choice = ToolChoice::kNone;
    } else if (*it != "auto") {
      return Invalid("tool_choice",
                     "only \"auto\" and \"none\" are supported (not \"required\" or a named tool)");
    }
  }
  if (auto it = body.find("chat_template_kwargs"); it != body.end()) {
    ASSIGN_OR_RETURN(s->chat.thinking, chat::ThinkingFromTemplateKwargs(*it));
  }
  return absl::OkStatus();
}

absl::Status Prompt(const ojson& body, ServingRequest* s) {
  auto it = body.find("prompt");
  if (it == body.end() || it->is_null()) return Invalid("prompt", "required");
  const ojson* p = &*it;
  // A list of one prompt is that prompt; several prompts in one request are not served.
  if (p->is_array() && !p->empty() && ((*p)[0].is_string() || (*p)[0].is_array())) {
    if (p->size() != 1) return Invalid("prompt", "one prompt per request is supported");
    p = &(*p)[0];
  }
  if (p->is_string()) {
    s->input = ServingRequest::Input::kPrompt;
    s->prompt = p->get<std::string>();
    return absl::OkStatus();
  }
  if (p->is_array()) {
    s->input = ServingRequest::Input::kTokenIds;
    for (size_t i = 0; i < p->size(); ++i) {
      const ojson& id = (*p)[i];
      if (!id.is_number_integer() || id.get<int64_t>() < 0 ||
          id.get<int64_t>() > std::numeric_limits<int32_t>::max()) {
        return Invalid(absl::StrCat("prompt[", i, "]"), "must be a token id");
      }
      s->token_ids.push_back(static_cast<int32_t>(id.get<int64_t>()));
    }
    return absl::OkStatus();
  }
  return Invalid("prompt", "must be a string, an array of token ids, or a list of one of them");
}

absl::Status Stop(const ojson& body, ServingRequest* s) {
  auto it = body.find("stop");
  if (it == body.end() || it->is_null()) return absl::OkStatus();
  if (it->is_string()) {
    s->stop.push_back(it->get<std::string>());
    return absl::OkStatus();
  }
  if (!it->is_array()) return Invalid("stop", "must be a string or an array of strings");
  for (size_t i = 0; i < it->size(); ++i) {
    if (!(*it)[i].is_string()) return Invalid(absl::StrCat("stop[", i, "]"), "must be a string");
    s->stop.push_back((*it)[i].get<std::string>());
  }
  return absl::OkStatus();
}

absl::Status Sampling(const ojson& body, ServingRequest* s) {
  SamplingParams& p = s->sampling;
  p.temperature = 1.0f;  // OpenAI's default
  double d = 0;
  int64_t i = 0;
  bool set = false;
  ASSIGN_OR_RETURN(set, Number(body, "temperature", &d));
  if (set) {
    if (d < 0 || d > 2) return Invalid("temperature", "must be in [0, 2]");
    p.temperature = static_cast<float>(d);
  }
  ASSIGN_OR_RETURN(set, Number(body, "top_p", &d));
  if (set) p.top_p = static_cast<float>(d);
  ASSIGN_OR_RETURN(set, Number(body, "min_p", &d));
  if (set) p.min_p = static_cast<float>(d);
  ASSIGN_OR_RETURN(set, Number(body, "presence_penalty", &d));
  if (set) {
    if (d < -2 || d > 2) return Invalid("presence_penalty", "must be in [-2, 2]");
    p.presence_penalty = static_cast<float>(d);
  }
  ASSIGN_OR_RETURN(set, Number(body, "frequency_penalty", &d));
  if (set) {
    if (d < -2 || d > 2) return Invalid("frequency_penalty", "must be in [-2, 2]");
    p.frequency_penalty = static_cast<float>(d);
  }
  ASSIGN_OR_RETURN(set, Number(body, "repetition_penalty", &d));
  if (set) p.repetition_penalty = static_cast<float>(d);
  ASSIGN_OR_RETURN(set, Integer(body, "top_k", -1, std::numeric_limits<int32_t>::max(), &i));
  if (set) p.top_k = i < 0 ? 0 : static_cast<int32_t>(i);  // -1: off (vLLM's convention)
  auto seed = body.find("seed");
  if (seed != body.end() && !seed->is_null()) {
    if (!seed->is_number_integer()) return Invalid("seed", "must be an integer");
    p.seed = seed->is_number_unsigned() ? seed->get<uint64_t>()
                                        : static_cast<uint64_t>(seed->get<int64_t>());
  }
  return absl::OkStatus();
}

}  // namespace

const ServingFieldNames& OpenAiFieldNames(bool chat) {
  static const ServingFieldNames* names[2] = {nullptr, nullptr};
  static std::once_flag once;
  std::call_once(once, [] {
    for (int c = 0; c < 2; ++c) {
      auto* n = new ServingFieldNames;
      n->chat = "messages";
      n->messages = "messages";
      n->tools = "tools";
      n->prompt = "prompt";
      n->token_ids = "prompt";
      n->sampling_prefix = "";
      n->stop_token_ids = "stop_token_ids";
      n->max_tokens = "max_tokens";
      n->client_request_id = "user";
      n->input = c == 1 ? "messages" : "prompt";
      n->input_choices = "required";
      names[c] = n;
    }
  });
  return *names[chat ? 1 : 0];
}

absl::StatusOr<OpenAiRequest> ParseOpenAiRequest(std::string_view body_text, bool chat) {
  ojson body = ojson::parse(body_text, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded()) return Invalid("body", "not valid JSON");
  if (!body.is_object()) return Invalid("body", "must be a JSON object");
  OpenAiRequest r;
  r.chat = chat;
  ServingRequest& s = r.serving;
  auto model = body.find("model");
  if (model != body.end() && !model->is_null() && !model->is_string()) {
    return Invalid("model", "must be a string");
  }
  // Refused by name rather than ignored: a client relying on them would get wrong answers.
  for (const char* key : {"logit_bias", "functions", "function_call", "audio", "prediction",
                          "suffix", "web_search_options"}) {
    auto it = body.find(key);
    if (it != body.end() && !it->is_null() && !(it->is_array() && it->empty()) &&
        !(it->is_object() && it->empty())) {
      return Unsupported(key);
    }
  }
  if (!chat) {
    for (const char* key : {"tools", "tool_choice", "chat_template_kwargs"}) {
      auto it = body.find(key);
      if (it != body.end() && !it->is_null()) return Invalid(key, "only for chat completions");
    }
  }
  if (auto it = body.find("response_format"); it != body.end() && !it->is_null()) {
    if (!it->is_object() || it->value("type", "") != "text") return Unsupported("response_format");
  }
  if (auto it = body.find("echo"); it != body.end() && it->is_boolean() && it->get<bool>()) {
    return Unsupported("echo");
  }
  if (chat) {
    RETURN_IF_ERROR(Messages(body, &s));
    RETURN_IF_ERROR(ChatOptions(body, &s));
  } else {
    RETURN_IF_ERROR(Prompt(body, &s));
  }
  RETURN_IF_ERROR(Sampling(body, &s));
  RETURN_IF_ERROR(Stop(body, &s));
  int64_t v = 0;
  bool set = false;
  const int64_t kMaxTokens = std::numeric_limits<int32_t>::max();
  if (chat) {
    ASSIGN_OR_RETURN(set, Integer(body, "max_completion_tokens", 1, kMaxTokens, &v));
    if (set) s.max_tokens = v;
  }
  if (!set) {
    ASSIGN_OR_RETURN(set, Integer(body, "max_tokens", 1, kMaxTokens, &v));
    if (set) s.max_tokens = v;
  }
  ASSIGN_OR_RETURN(set, Integer(body, "n", 1, kOpenAiMaxChoices, &v));
  if (set) r.n = static_cast<int>(v);
  if (!chat) {
    ASSIGN_OR_RETURN(set, Integer(body, "best_of", 1, kOpenAiMaxChoices, &v));
    if (set && v != r.n) return Invalid("best_of", "must equal n (best-of selection is not supported)");
  }
  RETURN_IF_ERROR(Bool(body, "stream", &r.stream).status());
  if (auto it = body.find("stream_options"); it != body.end() && !it->is_null()) {
    if (!it->is_object()) return Invalid("stream_options", "must be an object");
    if (!r.stream) return Invalid("stream_options", "only allowed with stream: true");
    auto u = it->find("include_usage");
    if (u != it->end() && !u->is_null()) {
      if (!u->is_boolean()) return Invalid("stream_options.include_usage", "must be true or false");
      r.include_usage = u->get<bool>();
    }
  }
  RETURN_IF_ERROR(Bool(body, "ignore_eos", &s.ignore_eos).status());
  if (chat) {
    RETURN_IF_ERROR(Bool(body, "logprobs", &r.logprobs).status());
    ASSIGN_OR_RETURN(set, Integer(body, "top_logprobs", 0, kOpenAiMaxTopLogprobs, &v));
    if (set) {
      if (!r.logprobs) return Invalid("top_logprobs", "requires logprobs: true");
      r.top_logprobs = static_cast<int>(v);
    }
  } else {
    ASSIGN_OR_RETURN(set, Integer(body, "logprobs", 0, 5, &v));
    if (set) {
      r.logprobs = true;
      r.top_logprobs = static_cast<int>(v);
    }
  }
  if (r.logprobs) s.logprobs = r.top_logprobs;
  if (auto it = body.find("priority"); it != body.end() && !it->is_null()) {
    std::optional<Priority> p;
    if (it->is_string()) p = ParsePriority(it->get<std::string>());
    if (!p) return Invalid("priority", "must be one of emergency, interactive, batch");
    r.priority = p;
  }
  // `user` is accepted and ignored: it never reaches a log line.
  if (auto it = body.find("user"); it != body.end() && !it->is_null() && !it->is_string()) {
    return Invalid("user", "must be a string");
  }
  return r;
}

json OpenAiError(const std::string& message, const std::string& type, const std::string& param,
                 const std::string& code) {
  json e = {{"message", message}, {"type", type}, {"param", nullptr}, {"code", nullptr}};
  if (!param.empty()) e["param"] = param;
  if (!code.empty()) e["code"] = code;
  return json{{"error", std::move(e)}};
}

OpenAiErrorShape OpenAiErrorFor(const absl::Status& st) {
  switch (st.code()) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange:
      return {400, "invalid_request_error", "invalid_parameter"};
    case absl::StatusCode::kUnauthenticated:
      return {401, "authentication_error", "invalid_api_key"};
    case absl::StatusCode::kPermissionDenied:
      return {403, "permission_error", "permission_denied"};
    case absl::StatusCode::kResourceExhausted:
      return {429, "rate_limit_error", "rate_limit_exceeded"};
    case absl::StatusCode::kUnavailable:
      return {503, "server_error", "unavailable"};
    case absl::StatusCode::kDeadlineExceeded:
      return {504, "server_error", "timeout"};
    default:
      return {500, "server_error", "internal_error"};
  }
}

const char* OpenAiFinishReason(api::FinishReason r) {
  switch (r) {
    case api::FinishReason::kStop:
      return "stop";
    case api::FinishReason::kLength:
      return "length";
    case api::FinishReason::kToolCalls:
      return "tool_calls";
    case api::FinishReason::kCancelled:
      break;
  }
  return nullptr;
}

json OpenAiUsage(int64_t prompt_tokens, int64_t completion_tokens, int64_t cached_tokens) {
  return json{{"prompt_tokens", prompt_tokens},
              {"completion_tokens", completion_tokens},
              {"total_tokens", prompt_tokens + completion_tokens},
              {"prompt_tokens_details", {{"cached_tokens", cached_tokens}}}};
}

namespace {

std::string TokenText(int32_t id, const Tokenizer* tokenizer) {
  if (tokenizer == nullptr) return absl::StrCat("<", id, ">");
  absl::StatusOr<std::string> t = tokenizer->Decode(absl::MakeConstSpan(&id, 1));
  return t.ok() ? *t : absl::StrCat("<", id, ">");
}

json Bytes(const std::string& s) {
  json b = json::array();
  for (unsigned char c : s) b.push_back(static_cast<int>(c));
  return b;
}

// A token's text may be part of a UTF-8 character: valid JSON text needs the replacement.
std::string Printable(const std::string& s) {
  if (utf8::IsValid(s)) return s;
  return json::parse(json(s).dump(-1, ' ', false, json::error_handler_t::replace))
      .get<std::string>();
}

}  // namespace

json ChatLogprobEntry(const api::TokenLogprob& r, const Tokenizer* tokenizer) {
  const std::string text = TokenText(r.token_id, tokenizer);
  json top = json::array();
  for (const api::TopLogprob& t : r.top) {
    const std::string tt = TokenText(t.token_id, tokenizer);
    top.push_back({{"token", Printable(tt)}, {"logprob", t.logprob}, {"bytes", Bytes(tt)}});
  }
  return json{{"token", Printable(text)},
              {"logprob", r.logprob},
              {"bytes", Bytes(text)},
              {"top_logprobs", std::move(top)}};
}

void AppendCompletionLogprobs(const api::TokenLogprob& r, const Tokenizer* tokenizer,
                              int64_t text_offset, json* c) {
  if (c->is_null()) {
    *c = json{{"tokens", json::array()},
              {"token_logprobs", json::array()},
              {"top_logprobs", json::array()},
              {"text_offset", json::array()}};
  }
  (*c)["tokens"].push_back(Printable(TokenText(r.token_id, tokenizer)));
  (*c)["token_logprobs"].push_back(r.logprob);
  json top = json::object();
  for (const api::TopLogprob& t : r.top) {
    top[Printable(TokenText(t.token_id, tokenizer))] = t.logprob;
  }
  (*c)["top_logprobs"].push_back(std::move(top));
  (*c)["text_offset"].push_back(text_offset);
}

}  // namespace dsinfer
