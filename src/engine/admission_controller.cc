#include "src/engine/admission_controller.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "src/core/status_macros.h"

namespace dsinfer {

void EventRate::Add(double now, double amount) {
  if (first_ < 0) first_ = now;
  const int64_t sec = static_cast<int64_t>(std::floor(now));
  const size_t b = static_cast<size_t>(((sec % kBuckets) + kBuckets) % kBuckets);
  if (second_[b] != sec) {
    second_[b] = sec;
    amount_[b] = 0;
  }
  amount_[b] += amount;
}

double EventRate::PerSecond(double now) const {
  if (first_ < 0) return 0;
  const int64_t sec = static_cast<int64_t>(std::floor(now));
  double sum = 0;
  for (int b = 0; b < kBuckets; ++b) {
    if (second_[b] > sec - kBuckets && second_[b] <= sec) sum += amount_[b];
  }
  const double span = std::clamp(now - first_, 1.0, static_cast<double>(kBuckets));
  return sum / span;
}

AdmissionController::AdmissionController(const SchedulerLimits& limits,
                                         std::vector<TenantPolicy> tenants)
    : limits_(limits),
      policies_(std::move(tenants)),
      checks_(limits, static_cast<int32_t>(policies_.size())),
      tenants_(policies_.size()) {
  for (size_t t = 0; t < policies_.size(); ++t) index_[policies_[t].id] = static_cast<int32_t>(t);
}

double AdmissionController::Hint(double excess, double rate) const {
  if (!(rate > 0)) return std::max(kMinRetrySeconds, limits_.queue_full_retry_seconds);
  return std::clamp(std::max(1.0, excess) / rate, kMinRetrySeconds, kMaxRetrySeconds);
}

double AdmissionController::RetryHint(RejectReason reason, const TenantPolicy& policy,
                                      const TenantCounts& t, int64_t prompt_tokens,
                                      double now) const {
  switch (reason) {
    case RejectReason::kQueueFull:
      if (waiting_ >= limits_.max_waiting) {
        return Hint(waiting_ - limits_.max_waiting + 1, starts_.PerSecond(now));
      }
      // Queued tokens: enough of them must start.
      return Hint(static_cast<double>(waiting_tokens_ + prompt_tokens - limits_.max_waiting_tokens),
                  started_tokens_.PerSecond(now));
    case RejectReason::kTenantQueued: {
      const double rate = t.starts.PerSecond(now);
      return Hint(t.waiting - policy.max_queued + 1, rate > 0 ? rate : starts_.PerSecond(now));
    }
    case RejectReason::kTenantConcurrent: {
      const double rate = t.ends.PerSecond(now);
      return Hint(t.waiting + t.running - policy.max_concurrent + 1,
                  rate > 0 ? rate : ends_.PerSecond(now));
    }
    default:
      return kMinRetrySeconds;
  }
}

AdmitResult AdmissionController::Admit(const std::string& tenant, const RequestSize& request,
                                       double now, Ticket* ticket) {
  auto it = index_.find(tenant);
  std::lock_guard<std::mutex> lock(mu_);
  if (it == index_.end()) {
    ++rejected_;
    return {absl::PermissionDeniedError(absl::StrCat("unknown tenant '", tenant, "'")), 0,
            RejectReason::kUnknownTenant};
  }
  const int32_t t = it->second;
  TenantCounts& counts = tenants_[t];
  AdmitResult r = checks_.Check(request, policies_[t], t,
                                {waiting_, waiting_tokens_, counts.waiting, counts.running}, now);
  if (!r.status.ok()) {
    ++rejected_;
    if (r.reason != RejectReason::kTenantRate && r.reason != RejectReason::kInvalid) {
      r.retry_after_seconds = RetryHint(r.reason, policies_[t], counts, request.prompt_tokens, now);
    }
    return r;
  }
  checks_.Record(t, request.prompt_tokens + request.max_tokens, now);
  ++counts.waiting;
  ++waiting_;
  waiting_tokens_ += request.prompt_tokens;
  *ticket = {t, request.prompt_tokens, false};
  return r;
}

void AdmissionController::Started(Ticket* ticket, double now) {
  if (ticket->tenant < 0 || ticket->started) return;
  std::lock_guard<std::mutex> lock(mu_);
  TenantCounts& counts = tenants_[ticket->tenant];
  --counts.waiting;
  ++counts.running;
  --waiting_;
  waiting_tokens_ -= ticket->prompt_tokens;
  ++running_;
  counts.starts.Add(now);
  starts_.Add(now);
  started_tokens_.Add(now, static_cast<double>(ticket->prompt_tokens));
  ticket->started = true;
}

void AdmissionController::Ended(const Ticket& ticket, double now) {
  if (ticket.tenant < 0) return;
  std::lock_guard<std::mutex> lock(mu_);
  TenantCounts& counts = tenants_[ticket.tenant];
  if (ticket.started) {
    --counts.running;
    --running_;
    counts.ends.Add(now);
    ends_.Add(now);
  } else {
    --counts.waiting;
    --waiting_;
    waiting_tokens_ -= ticket.prompt_tokens;
  }
  DSINFER_CHECK(counts.waiting >= 0 && counts.running >= 0 && waiting_ >= 0 && running_ >= 0);
}

double AdmissionController::QueueDrainSeconds(double now) const {
  std::lock_guard<std::mutex> lock(mu_);
  return Hint(waiting_, starts_.PerSecond(now));
}

int32_t AdmissionController::waiting() const {
  std::lock_guard<std::mutex> lock(mu_);
  return waiting_;
}

int32_t AdmissionController::running() const {
  std::lock_guard<std::mutex> lock(mu_);
  return running_;
}

int64_t AdmissionController::rejected() const {
  std::lock_guard<std::mutex> lock(mu_);
  return rejected_;
}

}  // namespace dsinfer
