// Admission control: what a request must pass, at once and without waiting, before it may join
// the waiting queue. Requests that can never be served get INVALID_ARGUMENT naming the numbers;
// requests over a queue, concurrency or rate limit get RESOURCE_EXHAUSTED with a retry hint.
#pragma once

#include <cstdint>
#include <deque>
#include <utility>
#include <vector>

#include "src/scheduler/policy.h"
#include "src/scheduler/request.h"

namespace dsinfer {

// What admission looks at in a request (not its tokens).
struct RequestSize {
  int64_t prompt_tokens = 0;
  int64_t max_tokens = 0;
  Priority priority = Priority::kInteractive;
};

struct AdmissionLoad {
  int32_t waiting_total = 0;   // all tenants, all classes
  int64_t waiting_tokens = 0;  // their tokens
  int32_t tenant_waiting = 0;
  int32_t tenant_running = 0;
};

class AdmissionControl {
 public:
  static constexpr double kRateWindowSeconds = 60;

  AdmissionControl(const SchedulerLimits& limits, int32_t num_tenants);

  // Checks shape, model length, KV pool size, then the queue, tenant and rate limits.
  // Expires old rate-window entries but records nothing. INVALID_ARGUMENT messages lead with
  // the request field they concern (`max_tokens: ...`, `prompt: ...`).
  AdmitResult Check(const RequestSize& request, const TenantPolicy& policy, int32_t tenant,
                    const AdmissionLoad& load, double now);
  // The request was accepted: counts its tokens (prompt + max_tokens) in the tenant's window.
  void Record(int32_t tenant, int64_t tokens, double now);
  // Tokens accepted for `tenant` within the window ending at the last Check/Record.
  int64_t window_tokens(int32_t tenant) const { return windows_[tenant].sum; }

 private:
  struct RateWindow {
    std::deque<std::pair<double, int64_t>> events;  // (accepted at, tokens), oldest first
    int64_t sum = 0;
  };
  void Expire(RateWindow& w, double now);

  SchedulerLimits limits_;
  std::vector<RateWindow> windows_;
};

}  // namespace dsinfer
