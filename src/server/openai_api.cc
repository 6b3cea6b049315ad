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
#include "src/api/model_internal.h"
#include "src/server/auth.h"
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
// the members that have something; an empty object when none has. A call's first piece is the
// one with an id.
json DeltaJson(const api::Delta& d) {
  json out = json::object();
  if (!d.reasoning_text.empty()) out["reasoning_content"] = d.reasoning_text;
  if (!d.text.empty()) out["content"] = d.text;
  if (!d.tool_calls.empty()) {
    json calls = json::array();
    for (const api::ToolCallDelta& t : d.tool_calls) {
      json c = {{"index", t.index}};
      if (!t.id.empty()) {
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

// One completion request: its n requests of the server's api::Model and the HTTP answer they
// make together. Locking: mu_ guards everything; exchange calls are made under it (they only
// post onto the connection's strand, never block), so chunks keep their order across threads.
class OpenAiCall : public std::enable_shared_from_this<OpenAiCall> {
 public:
  OpenAiCall(InferenceService* service, std::shared_ptr<HttpExchange> ex, OpenAiRequest request,
             std::string model)
      : service_(service),
        ex_(std::move(ex)),
        request_(std::move(request)),
        model_(std::move(model)),
        id_(NewId(request_.chat ? "chatcmpl-" : "cmpl-")),
        created_(static_cast<int64_t>(std::time(nullptr))),
        choices_(request_.n) {}

  // Submits the n choices (validated once each by the Model, with this API's field names). A
  // refusal answers the call; one from validation is recorded for `tenant` here (the engine's
  // observer records admission refusals).
  void Start(std::vector<api::Request> requests, const TenantConfig* tenant, Priority priority) {
    std::shared_ptr<OpenAiCall> self = shared_from_this();
    ex_->OnClientGone([self] { self->OnGone(); });
    const api::ModelAccess::WireSubmit wire_base{.names = &OpenAiFieldNames(request_.chat),
                                                 .input = request_.serving.input};
    for (int i = 0; i < static_cast<int>(requests.size()); ++i) {
      bool at_admission = false;
      api::ModelAccess::WireSubmit wire = wire_base;
      wire.refused_at_admission = &at_admission;
      absl::StatusOr<api::RequestHandle> h = api::ModelAccess::Submit(
          *service_->model(), requests[i],
          {.on_delta = [self, i](const api::Delta& d) { self->OnDelta(i, d); },
           .on_done = [self, i](const api::Result& r) { self->OnResult(i, r); }},
          wire);
      if (!h.ok() && !at_admission) service_->RecordRejection(tenant, priority, h.status(), "");
      std::lock_guard<std::mutex> lock(mu_);
      if (h.ok()) {
        choices_[i].handle = *h;
      } else if (!failed_) {
        failed_ = true;
        error_ = h.status();
        retry_after_ = api::RetryAfterSeconds(h.status()).value_or(0);
      }
      if (failed_ || gone_) break;  // a refusal: submit no more
    }
    std::vector<api::RequestHandle> cancel;
    {
      std::lock_guard<std::mutex> lock(mu_);
      submitted_ = true;
      if (gone_ || failed_) {
        cancel = UnfinishedLocked();
        if (failed_ && !gone_ && !answered_) {
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
    for (const api::RequestHandle& h : cancel) h.Cancel();
  }

 private:
  struct Choice {
    std::optional<api::RequestHandle> handle;
    bool done = false;
    bool role_sent = false;
    std::string text;       // completions: the text; chat: the content
    std::string reasoning;  // chat answers: reasoning_content
    std::optional<api::FinishReason> finish;  // once it ended well
    api::Result result;     // usage and, for chat answers, the complete tool calls
    json logprobs;  // chat: array of entries; completions: the parallel arrays
  };

  // Engine thread: never blocks.
  void OnDelta(int i, const api::Delta& d) {
    std::lock_guard<std::mutex> lock(mu_);
    Choice& c = choices_[i];
    if (c.done || failed_ || gone_) return;
    Append(i, c, d);
  }

  void OnResult(int i, const api::Result& r) {
    std::vector<api::RequestHandle> cancel;
    {
      std::lock_guard<std::mutex> lock(mu_);
      Choice& c = choices_[i];
      if (c.done) return;
      c.done = true;
      ++done_;
      if (!r.status.ok()) {
        if (!failed_) {
          failed_ = true;
          error_ = r.status;
          retry_after_ = api::RetryAfterSeconds(r.status).value_or(0);
          cancel = UnfinishedLocked();  // the answer is an error: the other choices stop
          if (submitted_ && !gone_ && !answered_) {
            answered_ = true;
            service_->CountCall(ApiProtocol::kOpenAi, r.status.code());
            if (request_.stream) {
              const OpenAiErrorShape shape = OpenAiErrorFor(r.status);
              ex_->Send(absl::StrCat(
                  "data: ",
                  Dump(OpenAiError(std::string(r.status.message()), shape.type, "", shape.code)),
                  "\n\n"));
              ex_->EndStream();
            } else {
              ex_->Respond(OpenAiErrorResponse(r.status, retry_after_));
            }
          }
        }
      } else if (!failed_ && !gone_ && r.finish != api::FinishReason::kCancelled) {
        c.finish = r.finish;
        c.result = r;
        if (request_.stream) Emit(Chunk(i, json::object(), nullptr, FinishReasonOf(c)));
        if (done_ == request_.n && submitted_) FinishLocked();
      }
    }
    for (const api::RequestHandle& h : cancel) h.Cancel();
  }

  // The client went away: every request still running stops now (KV freed).
  void OnGone() {
    std::vector<api::RequestHandle> cancel;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!gone_ && !answered_) {
        service_->CountCall(ApiProtocol::kOpenAi, absl::StatusCode::kCancelled);
      }
      gone_ = true;
      cancel = UnfinishedLocked();
    }
    for (const api::RequestHandle& h : cancel) h.Cancel();
  }

  std::vector<api::RequestHandle> UnfinishedLocked() const {
    std::vector<api::RequestHandle> out;
    for (const Choice& c : choices_) {
      if (c.handle.has_value() && !c.done) out.push_back(*c.handle);
    }
    return out;
  }

  void Append(int i, Choice& c, const api::Delta& d) {
    const Tokenizer* tok = service_->tokenizer();
    json new_logprobs;
    if (request_.logprobs && !d.logprobs.empty()) {
      if (request_.chat) {
        new_logprobs = json::array();
        for (const api::TokenLogprob& r : d.logprobs) {
          new_logprobs.push_back(ChatLogprobEntry(r, tok));
        }
        if (c.logprobs.is_null()) c.logprobs = json::array();
        for (const json& e : new_logprobs) c.logprobs.push_back(e);
      } else {
        // Offsets are where this delta's text starts (a multi-token delta shares one).
        for (const api::TokenLogprob& r : d.logprobs) {
          AppendCompletionLogprobs(r, tok, static_cast<int64_t>(c.text.size()), &new_logprobs);
          AppendCompletionLogprobs(r, tok, static_cast<int64_t>(c.text.size()), &c.logprobs);
        }
      }
    }
    c.text += d.text;
    c.reasoning += d.reasoning_text;
    if (!request_.stream) return;
    json delta = request_.chat ? DeltaJson(d) : json(d.text);
    if (request_.chat && !c.role_sent) {
      c.role_sent = true;
      Emit(Chunk(i, json{{"role", "assistant"}, {"content", ""}}, nullptr, nullptr));
    }
    const bool nothing = request_.chat ? delta.empty() : d.text.empty();
    if (nothing && new_logprobs.is_null()) return;
    // Logprobs of tokens whose text is held back (a possible control token) come with an empty
    // content delta; the text follows in a later chunk.
    if (request_.chat && delta.empty()) delta = json{{"content", ""}};
    Emit(Chunk(i, std::move(delta), std::move(new_logprobs), nullptr));
  }

  // The choice's finish_reason: "tool_calls" when a chat answer made calls and stopped.
  json FinishReasonOf(const Choice& c) const {
    const char* reason = c.finish.has_value() ? OpenAiFinishReason(*c.finish) : nullptr;
    return reason == nullptr ? json(nullptr) : json(reason);
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
    for (const Choice& c : choices_) completion += c.result.usage.completion_tokens;
    // The prompt is counted once, as OpenAI does for n choices.
    const api::Usage& first = choices_[0].result.usage;
    return OpenAiUsage(first.prompt_tokens, completion, first.cached_tokens);
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
      if (request_.chat) {
        json message = {{"role", "assistant"}, {"content", c.text}};
        if (!c.reasoning.empty()) message["reasoning_content"] = c.reasoning;
        if (!c.result.tool_calls.empty()) {
          json tool_calls = json::array();
          for (const api::ToolCall& t : c.result.tool_calls) {
            tool_calls.push_back({{"id", t.id},
                                  {"type", "function"},
                                  {"function", {{"name", t.name}, {"arguments", t.arguments}}}});
          }
          message["tool_calls"] = std::move(tool_calls);
          if (c.text.empty()) message["content"] = nullptr;  // as OpenAI answers
        }
        choice["message"] = std::move(message);
        choice["logprobs"] = c.logprobs.is_null() ? json(nullptr) : json{{"content", c.logprobs}};
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
  api::Request request = api::RequestFromServing(parsed->serving);
  request.tenant = (*tenant)->id;
  request.priority = static_cast<api::Priority>(priority);
  request.arrival = arrived;
  std::vector<api::Request> requests(parsed->n, request);
  // n choices from one seed would be n copies of one answer: each choice gets its own.
  for (int i = 1; i < parsed->n; ++i) {
    if (requests[i].sampling.seed.has_value()) *requests[i].sampling.seed += i;
  }
  auto call = std::make_shared<OpenAiCall>(service_, ex, *std::move(parsed), model_id_);
  call->Start(std::move(requests), *tenant, priority);
}

}  // namespace dsinfer
