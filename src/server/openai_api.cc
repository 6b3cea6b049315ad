#include "src/server/openai_api.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>
#include <mutex>
#include <optional>
#include <random>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "nlohmann/json.hpp"
#include "src/server/auth.h"
#include "src/server/chat_output.h"
#include "src/server/openai_protocol.h"

namespace dsinfer {
namespace {

using json = nlohmann::json;

// Replacement characters instead of an exception, should any text not be valid UTF-8.
std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

HttpResponse JsonResponse(int status, const json& body) {
  return HttpResponse{status, "application/json", Dump(body), {}};
}

std::string NewId(const char* prefix) {
  thread_local std::mt19937_64 gen{std::random_device{}()};
  return absl::StrFormat("%s%016x%08x", prefix, gen(), static_cast<uint32_t>(gen()));
}

// A chat delta: {"reasoning_content", "content", "tool_calls": [{index, id, type, function}]},
// the members that have something; an empty object when none has.
json DeltaJson(const ChatOutputDelta& d) {
  json out = json::object();
  if (!d.reasoning_content.empty()) out["reasoning_content"] = d.reasoning_content;
  if (!d.content.empty()) out["content"] = d.content;
  if (!d.tool_calls.empty()) {
    json calls = json::array();
    for (const ToolCallChunk& t : d.tool_calls) {
      json c = {{"index", t.index}};
      if (t.begins_call) {
        c["id"] = t.id;
        c["type"] = "function";
        c["function"] = {{"name", t.name}, {"arguments", t.arguments}};
      } else {
        c["function"] = {{"arguments", t.arguments}};
      }
      calls.push_back(std::move(c));
    }
    out["tool_calls"] = std::move(calls);
  }
  return out;
}

// The same credentials as a gRPC call's: the authorization headers and the identities of the
// client certificate the TLS layer verified against tls.client_ca_file (src/http/tls.h reads
// them as gRPC's auth context does).
CallCredentials HttpCredentials(const HttpRequest& r) {
  CallCredentials c;
  c.authorization = r.Headers("authorization");
  c.cert_identities = r.peer_identities;
  return c;
}

// One completion request: its n engine requests and the HTTP answer they make together.
// Locking: mu_ guards everything; exchange calls are made under it (they only post onto the
// connection's strand, never block), so chunks keep their order across threads.
class OpenAiCall : public std::enable_shared_from_this<OpenAiCall> {
 public:
  // `chat_output`: read each choice's text as a chat answer (reasoning, content, tool calls).
  OpenAiCall(InferenceService* service, std::shared_ptr<HttpExchange> ex, OpenAiRequest request,
             std::string model, const std::optional<chat::OutputParserOptions>& chat_output)
      : service_(service),
        ex_(std::move(ex)),
        request_(std::move(request)),
        model_(std::move(model)),
        id_(NewId(request_.chat ? "chatcmpl-" : "cmpl-")),
        created_(static_cast<int64_t>(std::time(nullptr))),
        choices_(request_.n) {
    if (chat_output.has_value()) {
      for (Choice& c : choices_) c.output.emplace(*chat_output);
    }
  }

  void Start(std::vector<EngineRequest> requests) {
    std::shared_ptr<OpenAiCall> self = shared_from_this();
    ex_->OnClientGone([self] { self->OnGone(); });
    Engine& engine = *service_->engine();
    for (int i = 0; i < static_cast<int>(requests.size()); ++i) {
      const uint64_t id = engine.Submit(
          std::move(requests[i]), [self, i](EngineEvent ev) { self->OnEvent(i, std::move(ev)); });
      std::lock_guard<std::mutex> lock(mu_);
      choices_[i].id = id;
      if (failed_ || gone_) break;  // a rejection (it arrived inside Submit): submit no more
    }
    std::vector<uint64_t> cancel;
    {
      std::lock_guard<std::mutex> lock(mu_);
      submitted_ = true;
      if (gone_ || failed_) {
        cancel = UnfinishedLocked();
        if (failed_ && !gone_) {
          answered_ = true;
          service_->CountCall(ApiProtocol::kOpenAi, error_.code());
          ex_->Respond(OpenAiErrorResponse(error_, retry_after_));
        }
      } else if (request_.stream) {
        ex_->StartStream(200, "text/event-stream", {{"X-Accel-Buffering", "no"}});
        if (!buffered_.empty()) ex_->Send(std::move(buffered_));
        buffered_.clear();
        if (done_ == request_.n) FinishLocked();
      } else if (done_ == request_.n) {
        FinishLocked();
      }
    }
    for (uint64_t id : cancel) engine.Cancel(id);
  }

 private:
  struct Choice {
    std::optional<uint64_t> id;
    bool done = false;
    bool role_sent = false;
    std::string text;                  // without a chat output parser
    std::optional<ChatOutput> output;  // chat answers of DeepSeek formats
    FinishReason finish = FinishReason::kNone;
    Usage usage;
    json logprobs;  // chat: array of entries; completions: the parallel arrays
  };

  // Engine thread (or, for an admission rejection, the submitting thread): never blocks.
  void OnEvent(int i, EngineEvent ev) {
    std::vector<uint64_t> cancel;
    {
      std::lock_guard<std::mutex> lock(mu_);
      Choice& c = choices_[i];
      if (c.done) return;
      if (ev.last()) {
        c.done = true;
        ++done_;
      }
      if (!ev.status.ok()) {
        if (!failed_) {
          failed_ = true;
          error_ = ev.status;
          retry_after_ = ev.retry_after_seconds;
          cancel = UnfinishedLocked();  // the answer is an error: the other choices stop
          if (submitted_ && !gone_ && !answered_) {
            answered_ = true;
            service_->CountCall(ApiProtocol::kOpenAi, ev.status.code());
            if (request_.stream) {
              const OpenAiErrorShape shape = OpenAiErrorFor(ev.status);
              ex_->Send(absl::StrCat(
                  "data: ",
                  Dump(OpenAiError(std::string(ev.status.message()), shape.type, "", shape.code)), "\n\n"));
              ex_->EndStream();
            } else {
              ex_->Respond(OpenAiErrorResponse(ev.status, ev.retry_after_seconds));
            }
          }
        }
      } else if (!failed_ && !gone_ && ev.finish != FinishReason::kCancelled) {
        Append(i, c, ev);
        if (ev.last()) {
          c.finish = ev.finish;
          c.usage = ev.usage;
          if (c.output.has_value()) {
            const json rest = DeltaJson(c.output->Finish());  // text held back, a malformed call
            if (request_.stream && !rest.empty()) Emit(Chunk(i, rest, nullptr, nullptr));
          }
          if (request_.stream) Emit(Chunk(i, json::object(), nullptr, FinishReasonOf(c)));
          if (done_ == request_.n && submitted_) FinishLocked();
        }
      }
    }
    for (uint64_t id : cancel) service_->engine()->Cancel(id);
  }

  // The client went away: every engine request still running stops now (KV freed).
  void OnGone() {
    std::vector<uint64_t> cancel;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!gone_ && !answered_) {
        service_->CountCall(ApiProtocol::kOpenAi, absl::StatusCode::kCancelled);
      }
      gone_ = true;
      cancel = UnfinishedLocked();
    }
    for (uint64_t id : cancel) service_->engine()->Cancel(id);
  }

  std::vector<uint64_t> UnfinishedLocked() const {
    std::vector<uint64_t> ids;
    for (const Choice& c : choices_) {
      if (c.id.has_value() && !c.done) ids.push_back(*c.id);
    }
    return ids;
  }

  void Append(int i, Choice& c, const EngineEvent& ev) {
    const Tokenizer* tok = service_->tokenizer();
    json new_logprobs;
    if (request_.logprobs && !ev.logprobs.empty()) {
      if (request_.chat) {
        new_logprobs = json::array();
        for (const SequenceResult& r : ev.logprobs) new_logprobs.push_back(ChatLogprobEntry(r, tok));
        if (c.logprobs.is_null()) c.logprobs = json::array();
        for (const json& e : new_logprobs) c.logprobs.push_back(e);
      } else {
        // Offsets are where this event's text starts (a multi-token event shares one).
        for (const SequenceResult& r : ev.logprobs) {
          AppendCompletionLogprobs(r, tok, static_cast<int64_t>(c.text.size()), &new_logprobs);
          AppendCompletionLogprobs(r, tok, static_cast<int64_t>(c.text.size()), &c.logprobs);
        }
      }
    }
    json delta;
    if (c.output.has_value()) {
      delta = DeltaJson(c.output->Push(ev.text));
    } else {
      c.text += ev.text;
      if (request_.chat) {
        delta = ev.text.empty() ? json::object() : json{{"content", ev.text}};
      } else {
        delta = ev.text;
      }
    }
    if (!request_.stream) return;
    if (request_.chat && !c.role_sent) {
      c.role_sent = true;
      Emit(Chunk(i, json{{"role", "assistant"}, {"content", ""}}, nullptr, nullptr));
    }
    const bool nothing = request_.chat ? delta.empty() : ev.text.empty();
    if (nothing && new_logprobs.is_null()) return;
    // Logprobs of tokens whose text is held back (a possible control token) come with an empty
    // content delta; the text follows in a later chunk.
    if (request_.chat && delta.empty()) delta = json{{"content", ""}};
    Emit(Chunk(i, std::move(delta), std::move(new_logprobs), nullptr));
  }

  // The choice's finish_reason: "tool_calls" when a chat answer made calls and stopped.
  json FinishReasonOf(const Choice& c) const {
    const char* engine = OpenAiFinishReason(c.finish);
    if (engine == nullptr) return nullptr;
    if (!c.output.has_value()) return engine;
    return c.output->FinishReason(engine);
  }

  // One SSE event. Chat: `delta` is the delta object; completions: the text.
  std::string Chunk(int i, json delta, json logprobs, json finish) const {
    json choice = {{"index", i}, {"logprobs", nullptr}, {"finish_reason", nullptr}};
    if (request_.chat) {
      choice["delta"] = std::move(delta);
      if (!logprobs.is_null()) choice["logprobs"] = json{{"content", std::move(logprobs)}};
    } else {
      choice["text"] = delta.is_string() ? std::move(delta) : json("");
      if (!logprobs.is_null()) choice["logprobs"] = std::move(logprobs);
    }
    if (!finish.is_null()) choice["finish_reason"] = std::move(finish);
    json chunk = Envelope(request_.chat ? "chat.completion.chunk" : "text_completion");
    chunk["choices"] = json::array({std::move(choice)});
    if (request_.include_usage) chunk["usage"] = nullptr;
    return absl::StrCat("data: ", Dump(chunk), "\n\n");
  }

  json Envelope(const char* object) const {
    return json{{"id", id_}, {"object", object}, {"created", created_}, {"model", model_}};
  }

  json UsageJson() const {
    int64_t completion = 0;
    for (const Choice& c : choices_) completion += c.usage.completion_tokens;
    // The prompt is counted once, as OpenAI does for n choices.
    return OpenAiUsage(choices_[0].usage.prompt_tokens, completion, choices_[0].usage.cached_tokens);
  }

  void Emit(std::string event) {
    if (submitted_) {
      ex_->Send(std::move(event));
    } else {
      buffered_ += event;  // the stream starts once every choice is submitted
    }
  }

  // Every choice ended well: the answer, or the end of the stream.
  void FinishLocked() {
    if (answered_) return;
    answered_ = true;
    service_->CountCall(ApiProtocol::kOpenAi, absl::StatusCode::kOk);
    if (request_.stream) {
      if (request_.include_usage) {
        json chunk = Envelope(request_.chat ? "chat.completion.chunk" : "text_completion");
        chunk["choices"] = json::array();
        chunk["usage"] = UsageJson();
        ex_->Send(absl::StrCat("data: ", Dump(chunk), "\n\n"));
      }
      ex_->Send("data: [DONE]\n\n");
      ex_->EndStream();
      return;
    }
    json out = Envelope(request_.chat ? "chat.completion" : "text_completion");
    json choices = json::array();
    for (int i = 0; i < request_.n; ++i) {
      const Choice& c = choices_[i];
      json choice = {{"index", i}, {"finish_reason", FinishReasonOf(c)}};
      if (request_.chat && c.output.has_value()) {
        json message = {{"role", "assistant"}, {"content", c.output->content()}};
        if (!c.output->reasoning_content().empty()) {
          message["reasoning_content"] = c.output->reasoning_content();
        }
        const std::vector<ChatToolCall> calls = c.output->tool_calls();
        if (!calls.empty()) {
          json tool_calls = json::array();
          for (const ChatToolCall& t : calls) {
            tool_calls.push_back({{"id", t.id},
                                  {"type", "function"},
                                  {"function", {{"name", t.name}, {"arguments", t.arguments}}}});
          }
          message["tool_calls"] = std::move(tool_calls);
          if (c.output->content().empty()) message["content"] = nullptr;  // as OpenAI answers
        }
        choice["message"] = std::move(message);
        choice["logprobs"] = c.logprobs.is_null() ? json(nullptr) : json{{"content", c.logprobs}};
      } else if (request_.chat) {
        choice["message"] = {{"role", "assistant"}, {"content", c.text}};
        choice["logprobs"] =
            c.logprobs.is_null() ? json(nullptr) : json{{"content", c.logprobs}};
      } else {
        choice["text"] = c.text;
        choice["logprobs"] = c.logprobs;
      }
      choices.push_back(std::move(choice));
    }
    out["choices"] = std::move(choices);
    out["usage"] = UsageJson();
    ex_->Respond(JsonResponse(200, out));
  }

  InferenceService* const service_;
  const std::shared_ptr<HttpExchange> ex_;
  const OpenAiRequest request_;
  const std::string model_;
  const std::string id_;
  const int64_t created_;

  std::mutex mu_;
  std::vector<Choice> choices_;
  int done_ = 0;
  bool submitted_ = false;  // every Submit returned: the answer may start
  bool answered_ = false;
  bool gone_ = false;
  bool failed_ = false;
  absl::Status error_;
  double retry_after_ = 0;
  std::string buffered_;
};

}  // namespace

HttpResponse OpenAiErrorResponse(const absl::Status& status, double retry_after_seconds) {
  const OpenAiErrorShape shape = OpenAiErrorFor(status);
  HttpResponse r = JsonResponse(
      shape.http_status,
      OpenAiError(std::string(status.message()), shape.type, FieldOfStatus(status), shape.code));
  if (shape.http_status == 429) {
    const int64_t seconds =
        std::max<int64_t>(1, static_cast<int64_t>(std::ceil(retry_after_seconds)));
    r.headers.push_back({"Retry-After", std::to_string(seconds)});
  }
  if (shape.http_status == 401) r.headers.push_back({"WWW-Authenticate", "Bearer"});
  return r;
}

OpenAiApi::OpenAiApi(InferenceService* service, std::string model_id)
    : service_(service), model_id_(std::move(model_id)) {}

void OpenAiApi::Register(HttpServer* server) {
  server->SetErrorFormatter([](int status, std::string_view message) {
    const char* type = status >= 500 ? "server_error" : "invalid_request_error";
    const char* code = status == 413   ? "request_too_large"
                       : status == 431 ? "request_header_too_large"
                       : status == 404 ? "not_found"
                                       : "";
    return JsonResponse(status, OpenAiError(std::string(message), type, "", code));
  });
  const OpenAiApi* api = this;
  server->Route("GET", "/v1/models",
                [api](std::shared_ptr<HttpExchange> ex) { api->Models(ex); });
  server->Route("POST", "/v1/chat/completions",
                [api](std::shared_ptr<HttpExchange> ex) { api->Complete(ex, /*chat=*/true); });
  server->Route("POST", "/v1/completions",
                [api](std::shared_ptr<HttpExchange> ex) { api->Complete(ex, /*chat=*/false); });
}

void OpenAiApi::Models(const std::shared_ptr<HttpExchange>& ex) const {
  const HttpRequest& req = ex->request();
  absl::StatusOr<const TenantConfig*> tenant =
      service_->Authenticate(HttpCredentials(req), "ListModels", req.remote_address);
  if (!tenant.ok()) return ex->Respond(OpenAiErrorResponse(tenant.status()));
  if (absl::Status st = service_->CheckServing(/*draining_ok=*/true); !st.ok()) {
    return ex->Respond(OpenAiErrorResponse(st));
  }
  json model = {{"id", model_id_}, {"object", "model"}, {"created", 0}, {"owned_by", "dsinfer"}};
  if (service_->engine() != nullptr) model["max_model_len"] = service_->limits().context_length;
  ex->Respond(JsonResponse(200, json{{"object", "list"}, {"data", json::array({model})}}));
}

void OpenAiApi::Reject(const std::shared_ptr<HttpExchange>& ex, const absl::Status& st) const {
  service_->CountCall(ApiProtocol::kOpenAi, st.code());
  ex->Respond(OpenAiErrorResponse(st));
}

void OpenAiApi::Complete(const std::shared_ptr<HttpExchange>& ex, bool chat) const {
  // Queue time and time to first token count from here (the request has been read).
  const auto arrived = std::chrono::steady_clock::now();
  const HttpRequest& req = ex->request();
  InferenceService& svc = *service_;
  // Who is calling comes first: an unauthenticated caller learns nothing of the server's state.
  absl::StatusOr<const TenantConfig*> tenant = svc.Authenticate(
      HttpCredentials(req), chat ? "ChatCompletions" : "Completions", req.remote_address);
  if (!tenant.ok()) return Reject(ex, tenant.status());
  if (absl::Status st = svc.CheckServing(/*draining_ok=*/false); !st.ok()) {
    svc.RecordRejection(*tenant, Priority::kInteractive, st, "");
    return Reject(ex, st);
  }
  absl::StatusOr<OpenAiRequest> parsed = ParseOpenAiRequest(req.body, chat);
  if (!parsed.ok()) {
    svc.RecordRejection(*tenant, Priority::kInteractive, parsed.status(), "");
    return Reject(ex, parsed.status());
  }
  const Priority priority = EffectivePriority(parsed->priority, (*tenant)->max_priority);
  absl::StatusOr<ValidatedRequest> validated = ValidateServingRequest(
      parsed->serving, svc.serving_text(), svc.limits(), OpenAiFieldNames(chat));
  if (!validated.ok()) {
    svc.RecordRejection(*tenant, priority, validated.status(), "");
    return Reject(ex, validated.status());
  }
  EngineRequest* engine_request = &validated->engine;
  Engine& engine = *svc.engine();
  engine_request->tenant = (*tenant)->id;
  engine_request->priority = priority;
  engine_request->arrival =
      engine.Now() -
      std::chrono::duration<double>(std::chrono::steady_clock::now() - arrived).count();
  std::vector<EngineRequest> requests(parsed->n, *engine_request);
  // n choices from one seed would be n copies of one answer: each choice gets its own.
  for (int i = 1; i < parsed->n; ++i) {
    if (requests[i].sampling.seed.has_value()) *requests[i].sampling.seed += i;
  }
  auto call = std::make_shared<OpenAiCall>(service_, ex, *std::move(parsed), model_id_,
                                           validated->chat_output);
  call->Start(std::move(requests));
}

}  // namespace dsinfer
