// Admission off the engine thread. Engine::Submit asks this object on the caller's (RPC) thread
// whether a request may join the queue: tenant, size against the model and the KV pool, the
// global queue (requests and tokens), the tenant's queue, concurrency and token rate. It answers
// at once from counters it owns, under its own mutex, never waiting for a step. The engine thread
// tells it when an admitted request first runs and when it ends. Retry hints come from the drain
// rates it observes (requests starting and ending per second, per tenant and overall).
#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "src/scheduler/admission.h"
#include "src/scheduler/policy.h"
#include "src/scheduler/request.h"

namespace dsinfer {

// Events per second over a sliding window of whole-second buckets.
class EventRate {
 public:
  static constexpr int kBuckets = 10;  // seconds of history

  void Add(double now, double amount = 1);
  // Events per second over the last kBuckets seconds (over the time since the first event when
  // that is shorter, but at least one second); 0 when none.
  double PerSecond(double now) const;

 private:
  std::array<double, kBuckets> amount_{};
  std::array<int64_t, kBuckets> second_{};  // which second each bucket holds
  double first_ = -1;
};

class AdmissionController {
 public:
  static constexpr double kMinRetrySeconds = 0.05;  // never invite a retry storm
  static constexpr double kMaxRetrySeconds = 300;

  // What the engine keeps for an admitted request and hands back on Started and Ended.
  struct Ticket {
    int32_t tenant = -1;
    int64_t prompt_tokens = 0;
    bool started = false;
  };

  // `limits` and `tenants` as configured (the scheduler's own queue limits are then not needed).
  AdmissionController(const SchedulerLimits& limits, std::vector<TenantPolicy> tenants);

  // OK (the request is counted as waiting and `ticket` filled) or the rejection: PERMISSION_DENIED
  // for an unknown tenant, INVALID_ARGUMENT for what can never be served, RESOURCE_EXHAUSTED with
  // a retry hint from the current drain rates. Thread-safe; never blocks on the engine.
  AdmitResult Admit(const std::string& tenant, const RequestSize& request, double now,
                    Ticket* ticket);
  // The request ran its first step (waiting -> running). Idempotent.
  void Started(Ticket* ticket, double now);
  // The request ended, however it did; its counts are released.
  void Ended(const Ticket& ticket, double now);

  // Seconds for the requests waiting now to start at the recent start rate: the retry hint for
  // a request that timed out in the queue.
  double QueueDrainSeconds(double now) const;

  int32_t waiting() const;
  int32_t running() const;
  int64_t rejected() const;

 private:
  struct TenantCounts {
    int32_t waiting = 0;  // admitted, not yet started
    int32_t running = 0;  // started, not ended (preempted ones included)
    EventRate starts, ends;
  };
  // `excess` requests must start (or end) at `rate` per second.
  double Hint(double excess, double rate) const;
  double RetryHint(RejectReason reason, const TenantPolicy& policy, const TenantCounts& t,
                   int64_t prompt_tokens, double now) const;

  const SchedulerLimits limits_;
  const std::vector<TenantPolicy> policies_;
  absl::flat_hash_map<std::string, int32_t> index_;

  mutable std::mutex mu_;
  AdmissionControl checks_;  // the pure checks and the token-rate windows
  std::vector<TenantCounts> tenants_;
  int32_t waiting_ = 0;
  int64_t waiting_tokens_ = 0;
  int32_t running_ = 0;
  int64_t rejected_ = 0;
  EventRate starts_, ends_, started_tokens_;
};

}  // namespace dsinfer
