#include "src/scheduler/admission.h"

#include <algorithm>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "src/kv_cache/block_pool.h"

namespace dsinfer {
namespace {

AdmitResult Reject(absl::Status status, RejectReason reason, double retry_after = 0) {
  return {std::move(status), retry_after, reason};
}

}  // namespace

AdmissionControl::AdmissionControl(const SchedulerLimits& limits, int32_t num_tenants)
    : limits_(limits), windows_(num_tenants) {}

void AdmissionControl::Expire(RateWindow& w, double now) {
  while (!w.events.empty() && w.events.front().first <= now - kRateWindowSeconds) {
    w.sum -= w.events.front().second;
    w.events.pop_front();
  }
}

AdmitResult AdmissionControl::Check(const RequestSize& r, const TenantPolicy& policy,
                                    int32_t tenant, const AdmissionLoad& load, double now) {
  const int64_t prompt = r.prompt_tokens;
  if (prompt <= 0) {
    return Reject(absl::InvalidArgumentError("prompt: is empty"), RejectReason::kInvalid);
  }
  if (r.max_tokens < 1) {
    return Reject(absl::InvalidArgumentError(
                      absl::StrCat("max_tokens: must be at least 1, got ", r.max_tokens)),
                  RejectReason::kInvalid);
  }
  if (static_cast<uint8_t>(r.priority) >= kNumPriorities) {
    return Reject(absl::InvalidArgumentError(
                      absl::StrCat("priority: unknown value ", static_cast<int>(r.priority))),
                  RejectReason::kInvalid);
  }
  const int64_t total = prompt + r.max_tokens;
  const std::string sum =
      absl::StrCat("max_tokens: the prompt (", prompt, " tokens) + max_tokens (", r.max_tokens,
                   ") = ", total, " tokens");
  if (total > limits_.max_model_len) {
    return Reject(absl::InvalidArgumentError(absl::StrCat(sum, " exceeds the model's context of ",
                                                          limits_.max_model_len, " tokens")),
                  RejectReason::kInvalid);
  }
  const int64_t blocks = BlocksForTokens(total);
  if (blocks > limits_.num_kv_blocks) {
    return Reject(absl::InvalidArgumentError(absl::StrCat(sum, " need ", blocks, " KV blocks of ",
                                                          kKvBlockSize, " tokens; the KV pool has ",
                                                          limits_.num_kv_blocks, " blocks")),
                  RejectReason::kInvalid);
  }
  if (policy.tokens_per_minute > 0 && total > policy.tokens_per_minute) {
    return Reject(absl::InvalidArgumentError(
                      absl::StrCat(sum, " exceed tenant '", policy.id,
                                   "' tokens_per_minute = ", policy.tokens_per_minute)),
                  RejectReason::kInvalid);
  }

  if (limits_.max_waiting_tokens > 0 && prompt > limits_.max_waiting_tokens) {
    return Reject(absl::InvalidArgumentError(absl::StrCat(
                      "prompt: ", prompt,
                      " tokens exceed max_waiting_tokens = ", limits_.max_waiting_tokens)),
                  RejectReason::kInvalid);
  }

  const double retry = limits_.queue_full_retry_seconds;
  if (load.waiting_total >= limits_.max_waiting) {
    return Reject(absl::ResourceExhaustedError(absl::StrCat(
                      "waiting queue is full (max_waiting = ", limits_.max_waiting, ")")),
                  RejectReason::kQueueFull, retry);
  }
  if (limits_.max_waiting_tokens > 0 && load.waiting_tokens + prompt > limits_.max_waiting_tokens) {
    return Reject(absl::ResourceExhaustedError(absl::StrCat(
                      "waiting queue holds ", load.waiting_tokens, " tokens; this prompt's ",
                      prompt, " would exceed max_waiting_tokens = ", limits_.max_waiting_tokens)),
                  RejectReason::kQueueFull, retry);
  }
  if (policy.max_queued > 0 && load.tenant_waiting >= policy.max_queued) {
    return Reject(absl::ResourceExhaustedError(
                      absl::StrCat("tenant '", policy.id, "' has ", load.tenant_waiting,
                                   " requests queued (max_queued = ", policy.max_queued, ")")),
                  RejectReason::kTenantQueued, retry);
  }
  if (policy.max_concurrent > 0 &&
      load.tenant_waiting + load.tenant_running >= policy.max_concurrent) {
    return Reject(
        absl::ResourceExhaustedError(absl::StrCat(
            "tenant '", policy.id, "' has ", load.tenant_waiting + load.tenant_running,
            " requests queued or running (max_concurrent = ", policy.max_concurrent, ")")),
        RejectReason::kTenantConcurrent, retry);
  }
  if (policy.tokens_per_minute > 0) {
    RateWindow& w = windows_[tenant];
    Expire(w, now);
    const int64_t excess = w.sum + total - policy.tokens_per_minute;
    if (excess > 0) {
      // The earliest time enough accepted tokens have left the window.
      int64_t freed = 0;
      double at = now;
      for (const auto& [t, tokens] : w.events) {
        freed += tokens;
        at = t + kRateWindowSeconds;
        if (freed >= excess) break;
      }
      const double retry_after = std::max(0.0, at - now);
      return Reject(absl::ResourceExhaustedError(absl::StrFormat(
                        "tenant '%s' used %d of tokens_per_minute = %d in the last 60 s; this "
                        "request needs %d; retry in %.1f s",
                        policy.id, w.sum, policy.tokens_per_minute, total, retry_after)),
                    RejectReason::kTenantRate, retry_after);
    }
  }
  return {};
}

void AdmissionControl::Record(int32_t tenant, int64_t tokens, double now) {
  RateWindow& w = windows_[tenant];
  Expire(w, now);
  w.events.emplace_back(now, tokens);
  w.sum += tokens;
}

}  // namespace dsinfer
