#include "src/server/generate_reactor.h"

#include <chrono>
#include <cmath>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "src/api/model_internal.h"
#include "src/server/grpc_status.h"
#include "src/server/inference_service.h"
#include "src/server/request_validation.h"

namespace dsinfer {
namespace {

v1::FinishReason ToProto(api::FinishReason r) {
  switch (r) {
    case api::FinishReason::kStop:
      return v1::FINISH_REASON_STOP;
    case api::FinishReason::kLength:
      return v1::FINISH_REASON_LENGTH;
    case api::FinishReason::kCancelled:
      return v1::FINISH_REASON_CANCELLED;
    case api::FinishReason::kToolCalls:
      return v1::FINISH_REASON_TOOL_CALLS;
  }
  return v1::FINISH_REASON_UNSPECIFIED;
}

api::Priority ApiPriority(Priority p) { return static_cast<api::Priority>(p); }

void SetUsage(const api::Usage& u, v1::Usage* out) {
  out->set_prompt_tokens(static_cast<uint32_t>(u.prompt_tokens));
  out->set_completion_tokens(static_cast<uint32_t>(u.completion_tokens));
  out->set_cached_tokens(static_cast<uint32_t>(u.cached_tokens));
  out->set_queue_seconds(u.queue_seconds);
  out->set_time_to_first_token_seconds(u.time_to_first_token_seconds);
  out->set_total_seconds(u.total_seconds);
}

// Merges a delta into the pending message: text is the content, reasoning_text the thought;
// a tool-call piece continuing the last pending piece of the same call is appended to it (a
// call's first piece is the one with an id).
void MergeDelta(const api::Delta& d, v1::GenerateResponse* m) {
  m->mutable_token_ids()->Add(d.token_ids.begin(), d.token_ids.end());
  m->mutable_text()->append(d.text);
  m->mutable_reasoning_text()->append(d.reasoning_text);
  for (const api::ToolCallDelta& t : d.tool_calls) {
    const int n = m->tool_calls_size();
    if (t.id.empty() && n > 0 && m->tool_calls(n - 1).index() == static_cast<uint32_t>(t.index)) {
      m->mutable_tool_calls(n - 1)->mutable_arguments()->append(t.arguments);
      continue;
    }
    v1::ToolCallDelta* out = m->add_tool_calls();
    out->set_index(static_cast<uint32_t>(t.index));
    out->set_id(t.id);
    out->set_name(t.name);
    out->set_arguments(t.arguments);
  }
}

grpc::ByteBuffer Serialize(const v1::GenerateResponse& m) {
  const std::string bytes = m.SerializeAsString();
  grpc::Slice slice(bytes);
  return grpc::ByteBuffer(&slice, 1);
}

}  // namespace

GenerateReactor::GenerateReactor(InferenceService* service, grpc::CallbackServerContext* context)
    : service_(service), context_(context) {}

GenerateReactor* GenerateReactor::Start(InferenceService* service,
                                        grpc::CallbackServerContext* context,
                                        const grpc::ByteBuffer& request) {
  auto reactor = std::make_shared<GenerateReactor>(service, context);
  reactor->self_ = reactor;
  reactor->Begin(request);
  return reactor.get();
}

void GenerateReactor::FinishEarly(const absl::Status& status) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (finish_started_) return;  // OnCancel already finished the call
    finish_started_ = true;
  }
  service_->CountCall(ApiProtocol::kGrpc, status.code());
  Finish(ErrorStatus(status));
}

grpc::Status GenerateReactor::ErrorStatus(const absl::Status& status) {
  if (std::optional<double> retry = api::RetryAfterSeconds(status); retry.has_value()) {
    const int64_t ms =
        std::max<int64_t>(1, static_cast<int64_t>(std::ceil(*retry * 1000.0)));
    context_->AddTrailingMetadata("retry-after-ms", std::to_string(ms));
  }
  return ToGrpcStatus(status);
}

CancelReason GenerateReactor::WhyCancelled() const {
  // gRPC cancels a call at its deadline; the timer may fire a moment early.
  const auto deadline = context_->deadline();
  return deadline != std::chrono::system_clock::time_point::max() &&
                 std::chrono::system_clock::now() + std::chrono::milliseconds(5) >= deadline
             ? CancelReason::kDeadline
             : CancelReason::kClient;
}

void GenerateReactor::Begin(const grpc::ByteBuffer& wire) {
  const auto arrived = std::chrono::steady_clock::now();
  InferenceService& svc = *service_;
  // Who is calling comes first: an unauthenticated caller learns nothing of the server's state.
  absl::StatusOr<const TenantConfig*> tenant = svc.Authenticate(context_, "Generate");
  if (!tenant.ok()) {
    FinishEarly(tenant.status());
    return;
  }
  if (absl::Status st = svc.CheckServing(/*draining_ok=*/false); !st.ok()) {
    svc.RecordRejection(*tenant, Priority::kInteractive, st, "");
    FinishEarly(st);
    return;
  }
  v1::GenerateRequest request;
  if (absl::Status st = svc.generate_parser().Parse(wire, &request); !st.ok()) {
    svc.RecordRejection(*tenant, Priority::kInteractive, st, "");
    FinishEarly(st);
    return;
  }
  const Priority priority = EffectivePriority(request.priority(), (*tenant)->max_priority);
  absl::StatusOr<GenerateInput> input = GenerateRequestToApi(request);
  if (!input.ok()) {
    svc.RecordRejection(*tenant, priority, input.status(), "");
    FinishEarly(input.status());
    return;
  }
  api::Request& r = input->request;
  r.tenant = (*tenant)->id;
  r.priority = ApiPriority(priority);
  // Queue time and time to first token count from the call's arrival, parsing included.
  r.arrival = arrived;
  // The client's deadline: a request still queued when it passes is dropped by the scheduler;
  // gRPC also cancels the call (OnCancel) at that moment.
  const auto deadline = context_->deadline();
  if (deadline != std::chrono::system_clock::time_point::max()) {
    r.deadline = std::chrono::steady_clock::now() +
                 std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                     deadline - std::chrono::system_clock::now());
  }
  std::shared_ptr<GenerateReactor> self = shared_from_this();
  bool at_admission = false;
  absl::StatusOr<api::RequestHandle> handle = api::ModelAccess::Submit(
      *svc.model(), r,
      {.on_delta = [self](const api::Delta& d) { self->OnDelta(d); },
       .on_done = [self](const api::Result& res) { self->OnResult(res); }},
      {.names = &GenerateFieldNames(),
       .input = input->input,
       .refused_at_admission = &at_admission});
  if (!handle.ok()) {
    // The engine's observer counted an admission refusal; a validation failure is counted here.
    if (!at_admission) {
      svc.RecordRejection(
          *tenant, priority, handle.status(),
          request.client_request_id().size() <= 128 ? request.client_request_id() : "");
    }
    FinishEarly(handle.status());
    return;
  }
  Next next;
  bool cancel = false;
  CancelReason reason = CancelReason::kClient;
  {
    std::lock_guard<std::mutex> lock(mu_);
    handle_ = *handle;
    // The client may have gone while we were submitting; deltas may already be queued.
    cancel = cancelled_ && !final_status_.has_value();
    reason = cancel_reason_;
    next = NextLocked();
  }
  if (cancel) api::ModelAccess::Cancel(*handle, reason);
  Perform(next);
}

void GenerateReactor::OnDelta(const api::Delta& d) {
  Next next;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (done_ || finish_started_ || final_status_.has_value()) return;
    if (!pending_.has_value()) pending_.emplace();
    MergeDelta(d, &*pending_);
    next = NextLocked();
  }
  Perform(next);
}

void GenerateReactor::OnResult(const api::Result& res) {
  Next next;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (done_ || finish_started_ || final_status_.has_value()) return;
    if (!res.status.ok()) {
      final_status_ = ErrorStatus(res.status);
    } else if (res.finish == api::FinishReason::kCancelled) {
      final_status_ = grpc::Status(grpc::StatusCode::CANCELLED, "request cancelled");
    } else {
      if (!pending_.has_value()) pending_.emplace();
      pending_->set_finish_reason(ToProto(res.finish));
      SetUsage(res.usage, pending_->mutable_usage());
      final_status_ = grpc::Status::OK;
    }
    next = NextLocked();
  }
  Perform(next);
}

GenerateReactor::Next GenerateReactor::NextLocked() {
  Next next;
  if (writing_ || finish_started_ || done_) return next;
  if (cancelled_) {
    finish_started_ = true;
    finish_status_ = grpc::Status(grpc::StatusCode::CANCELLED, "cancelled by the client");
    next.finish = true;
    return next;
  }
  if (pending_.has_value()) {
    if (!handle_.has_value()) return next;  // Begin sends it once Submit returned the id
    if (!id_sent_) {
      pending_->set_request_id(std::to_string(handle_->id()));
      id_sent_ = true;
    }
    in_flight_ = Serialize(*pending_);
    pending_.reset();
    writing_ = true;
    next.write = true;
    return next;
  }
  if (final_status_.has_value()) {
    finish_started_ = true;
    finish_status_ = *final_status_;
    next.finish = true;
  }
  return next;
}

void GenerateReactor::Perform(Next next) {
  // Outside mu_: gRPC may run reactions on other threads meanwhile, never this one's twin.
  if (next.write) StartWrite(&in_flight_);
  if (next.finish) {
    // grpc::StatusCode and absl::StatusCode share their numbering.
    service_->CountCall(ApiProtocol::kGrpc,
                        static_cast<absl::StatusCode>(finish_status_.error_code()));
    Finish(finish_status_);
  }
}

void GenerateReactor::OnWriteDone(bool ok) {
  Next next;
  std::optional<api::RequestHandle> cancel;
  {
    std::lock_guard<std::mutex> lock(mu_);
    writing_ = false;
    if (!ok && !cancelled_) {
      // The stream broke (client gone): stop the engine request, end the call.
      cancelled_ = true;
      if (!final_status_.has_value()) cancel = handle_;
    }
    next = NextLocked();
  }
  if (cancel) cancel->Cancel();
  Perform(next);
}

void GenerateReactor::OnCancel() {
  Next next;
  std::optional<api::RequestHandle> cancel;
  const CancelReason reason = WhyCancelled();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!cancelled_) {
      cancelled_ = true;
      cancel_reason_ = reason;
      if (!final_status_.has_value()) cancel = handle_;
    }
    next = NextLocked();
  }
  if (cancel) api::ModelAccess::Cancel(*cancel, reason);
  Perform(next);
}

void GenerateReactor::OnDone() {
  std::shared_ptr<GenerateReactor> keep;
  {
    std::lock_guard<std::mutex> lock(mu_);
    done_ = true;
    keep = std::move(self_);
  }
  // `keep` may hold the last reference: the object goes away when this returns.
}

}  // namespace dsinfer
