// The engine's observer in the server: updates the dsinfer_* metrics and writes one structured
// log line per finished request (ids, tenant, priority, outcome, token counts, timings; never
// text or token ids). Called on the engine thread (and, for admission rejections, on RPC
// threads): only relaxed atomics and a queued log line. Gauges follow every change of the
// scheduler's state (OnStats), not only steps, so they never show load that is gone.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "src/engine/engine.h"
#include "src/metrics/server_metrics.h"
#include "src/server/request_log.h"

namespace dsinfer {

class ServerObserver : public EngineObserver {
 public:
  // Both must outlive the engine. `log` may be null.
  ServerObserver(ServerMetrics* metrics, JsonLog* log) : metrics_(metrics), log_(log) {}

  void OnStep(const StepInfo& step, const SchedulerStats& stats,
              const ExpertLoad& expert_load) override;
  void OnStats(const SchedulerStats& stats,
               const std::array<int32_t, kNumPriorities>& admitted) override;
  void OnAdmitted(Priority p) override;
  void OnFirstToken(const std::string& tenant, Priority p, double ttft_seconds,
                    double queue_seconds) override;
  void OnRequestEnd(uint64_t id, const std::string& tenant, Priority p, const std::string& outcome,
                    const Usage& usage, const std::string& client_request_id) override;
  void OnRejected(const std::string& tenant, Priority p, RejectReason reason) override;

 private:
  ServerMetrics* metrics_;
  JsonLog* log_;
  // Engine-thread state: the cumulative scheduler/executor counters seen last, so metrics
  // counters get the increments.
  int64_t prefix_queries_ = 0;
  int64_t prefix_hits_ = 0;
  std::array<int64_t, kNumPriorities> preemptions_{};
  std::vector<std::vector<int64_t>> expert_tokens_;
  std::vector<int64_t> delta_;
  // Per draft position: the series, looked up once.
  std::array<Counter*, kMaxMtpDraftTokens> drafted_at_{}, accepted_at_{};
};

// The `reason` label of dsinfer_rejections_total for an admission rejection.
RejectionReason RejectionLabel(RejectReason reason);

// The `outcome` label of dsinfer_requests_total for an engine outcome ("ok", "cancelled" or a
// status-code name) of a request that produced `completion_tokens`.
RequestOutcome OutcomeOf(const std::string& outcome, int64_t completion_tokens);

}  // namespace dsinfer
