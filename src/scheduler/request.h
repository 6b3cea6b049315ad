// Requests as the scheduler sees them: priority classes, the input of admission and its answer.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "src/config/priority.h"  // Priority: strict classes, kEmergency highest (header only)

namespace dsinfer {

// Classes are strict; a tenant's policy caps the class its requests may use.
inline int PriorityIndex(Priority p) { return static_cast<int>(p); }

struct NewRequest {
  uint64_t id = 0;  // unique among the scheduler's live requests
  std::string tenant;
  Priority priority = Priority::kInteractive;
  std::vector<int32_t> prompt;  // token ids, at least one
  int64_t max_tokens = 0;       // tokens to generate at most, at least one
  double deadline =
      std::numeric_limits<double>::infinity();  // absolute seconds, same clock as `now`
};

// Why a request was turned away (at admission or later, from the queue); a metric label.
enum class RejectReason : uint8_t {
  kNone = 0,
  kInvalid,           // INVALID_ARGUMENT / ALREADY_EXISTS: can never be served as sent
  kUnknownTenant,     // PERMISSION_DENIED
  kQueueFull,         // RESOURCE_EXHAUSTED: global waiting queue
  kTenantQueued,      // RESOURCE_EXHAUSTED: tenant's max_queued
  kTenantConcurrent,  // RESOURCE_EXHAUSTED: tenant's max_concurrent (queued + running)
  kTenantRate,        // RESOURCE_EXHAUSTED: tenant's tokens_per_minute
  kQueueTimeout,      // RESOURCE_EXHAUSTED: waited longer than max_queue_seconds
  kDeadline,          // DEADLINE_EXCEEDED
};
inline constexpr int kNumRejectReasons = 9;
const char* RejectReasonName(RejectReason r);  // "invalid", "unknown_tenant", "queue_full", ...

struct AdmitResult {
  absl::Status status;             // OK: the request waits for the scheduler
  double retry_after_seconds = 0;  // with RESOURCE_EXHAUSTED: when a retry may succeed
  RejectReason reason = RejectReason::kNone;
};

}  // namespace dsinfer
