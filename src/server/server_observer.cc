#include "src/server/server_observer.h"

#include <algorithm>

namespace dsinfer {

RequestOutcome OutcomeOf(const std::string& outcome, int64_t completion_tokens) {
  if (outcome == "ok") return RequestOutcome::kCompleted;
  if (outcome == "cancelled" || outcome == "CANCELLED") return RequestOutcome::kCancelled;
  if (outcome == "DEADLINE_EXCEEDED") return RequestOutcome::kDeadlineExceeded;
  // Turned away before producing anything (admission, queue limits, draining).
  if (completion_tokens == 0 && (outcome == "RESOURCE_EXHAUSTED" || outcome == "INVALID_ARGUMENT" ||
                                 outcome == "PERMISSION_DENIED" || outcome == "ALREADY_EXISTS" ||
                                 outcome == "UNAVAILABLE" || outcome == "UNAUTHENTICATED")) {
    return RequestOutcome::kRejected;
  }
  return RequestOutcome::kFailed;
}

void ServerObserver::OnAdmitted(Priority p) {
  metrics_->QueueLength(p).Add(1);
  metrics_->sequences_waiting->Add(1);
}

void ServerObserver::OnStats(const SchedulerStats& stats,
                             const std::array<int32_t, kNumPriorities>& admitted) {
  ServerMetrics& m = *metrics_;
  int32_t waiting = 0;
  for (int p = 0; p < kNumPriorities; ++p) {
    // Waiting = in the scheduler's queues, or admitted and not yet taken in (a long step runs).
    m.QueueLength(static_cast<Priority>(p)).Set(stats.waiting[p] + admitted[p]);
    waiting += stats.waiting[p] + admitted[p];
    const int64_t pre = stats.preemptions[p];
    m.Preemptions(static_cast<Priority>(p)).Inc(static_cast<double>(pre - preemptions_[p]));
    preemptions_[p] = pre;
  }
  m.sequences_running->Set(stats.running);
  m.sequences_waiting->Set(waiting);
  // Held by sequences / free / cached and evictable (prefix blocks no sequence holds).
  m.SetKvCacheBlocks(stats.kv_blocks_used - stats.kv_blocks_evictable, stats.kv_blocks_free,
                     stats.kv_blocks_evictable);
  m.prefix_cache_queried_tokens->Inc(
      static_cast<double>(stats.prefix_cache_queries - prefix_queries_));
  m.prefix_cache_hit_tokens->Inc(static_cast<double>(stats.prefix_cache_hits - prefix_hits_));
  prefix_queries_ = stats.prefix_cache_queries;
  prefix_hits_ = stats.prefix_cache_hits;
}

void ServerObserver::OnStep(const StepInfo& step, const SchedulerStats& stats,
                            const ExpertLoad& expert_load) {
  ServerMetrics& m = *metrics_;
  m.ObserveStep(step.tokens, step.sequences, step.seconds);
  if (step.draft_tokens > 0) {
    m.spec_decode_draft_tokens->Inc(static_cast<double>(step.draft_tokens));
    m.spec_decode_accepted_tokens->Inc(static_cast<double>(step.accepted_tokens));
    for (size_t j = 0; j < step.drafted_at.size() && step.drafted_at[j] > 0; ++j) {
      if (drafted_at_[j] == nullptr) {
        drafted_at_[j] = &m.SpecDecodeDraftsAt(static_cast<int>(j));
        accepted_at_[j] = &m.SpecDecodeAcceptedAt(static_cast<int>(j));
      }
      drafted_at_[j]->Inc(static_cast<double>(step.drafted_at[j]));
      accepted_at_[j]->Inc(static_cast<double>(step.accepted_at[j]));
    }
  }
  // Expert load is cumulative in the executor; the metric wants this step's tokens.
  expert_tokens_.resize(expert_load.tokens.size());
  for (size_t layer = 0; layer < expert_load.tokens.size(); ++layer) {
    const std::vector<int64_t>& now = expert_load.tokens[layer];
    if (now.empty()) continue;
    std::vector<int64_t>& before = expert_tokens_[layer];
    before.resize(now.size(), 0);
    delta_.resize(now.size());
    bool any = false;
    for (size_t e = 0; e < now.size(); ++e) {
      delta_[e] = now[e] - before[e];
      any |= delta_[e] != 0;
      before[e] = now[e];
    }
    if (any) m.RecordMoeLoad(static_cast<int>(layer), delta_);
  }
}

void ServerObserver::OnFirstToken(const std::string& tenant, Priority p, double ttft_seconds,
                                  double queue_seconds) {
  const TenantMetrics* t = metrics_->Tenant(tenant);
  if (t == nullptr) return;
  t->time_to_first_token[static_cast<int>(p)]->Observe(ttft_seconds);
  t->queue_time[static_cast<int>(p)]->Observe(queue_seconds);
}

void ServerObserver::OnRequestEnd(uint64_t id, const std::string& tenant, Priority p,
                                  const std::string& outcome, const Usage& usage,
                                  const std::string& client_request_id) {
  const RequestOutcome o = OutcomeOf(outcome, usage.completion_tokens);
  if (const TenantMetrics* t = metrics_->Tenant(tenant)) {
    const int pi = static_cast<int>(p);
    t->Requests(p, o).Inc();
    // Prompt tokens computed for this request (cache hits excluded).
    t->prompt_tokens->Inc(static_cast<double>(usage.prompt_tokens - usage.cached_tokens));
    t->generation_tokens->Inc(static_cast<double>(usage.completion_tokens));
    if (o != RequestOutcome::kRejected) t->e2e_latency[pi]->Observe(usage.total_seconds);
    if (usage.completion_tokens > 1) {
      t->time_per_output_token[pi]->Observe(
          (usage.total_seconds - usage.time_to_first_token_seconds) /
          static_cast<double>(usage.completion_tokens - 1));
    }
  }
  if (log_ == nullptr) return;
  const LogLevel level = o == RequestOutcome::kFailed ? LogLevel::kWarning : LogLevel::kInfo;
  if (!log_->Enabled(level)) return;
  log_->Write(level, "request_end",
              {{"request_id", id},
               {"client_request_id", client_request_id},
               {"tenant", tenant},
               {"priority", std::string(PriorityName(p))},
               {"outcome", outcome},
               {"prompt_tokens", usage.prompt_tokens},
               {"completion_tokens", usage.completion_tokens},
               {"cached_tokens", usage.cached_tokens},
               {"queue_seconds", usage.queue_seconds},
               {"time_to_first_token_seconds", usage.time_to_first_token_seconds},
               {"total_seconds", usage.total_seconds}});
}

RejectionReason RejectionLabel(RejectReason reason) {
  switch (reason) {
    case RejectReason::kQueueFull:
      return RejectionReason::kQueueFull;
    case RejectReason::kTenantQueued:
    case RejectReason::kTenantConcurrent:
      return RejectionReason::kTenantQueueFull;
    case RejectReason::kTenantRate:
      return RejectionReason::kRateLimited;
    case RejectReason::kQueueTimeout:
    case RejectReason::kDeadline:
      return RejectionReason::kQueueTimeout;
    case RejectReason::kUnknownTenant:
      return RejectionReason::kUnauthenticated;
    // The entry validated everything else: what admission still refuses can never fit the pool.
    case RejectReason::kInvalid:
      return RejectionReason::kTooLong;
    case RejectReason::kNone:
      break;
  }
  return RejectionReason::kInvalidRequest;
}

void ServerObserver::OnRejected(const std::string& tenant, Priority p, RejectReason reason) {
  if (reason == RejectReason::kNone) return;
  metrics_->Rejections(RejectionLabel(reason)).Inc();
}

}  // namespace dsinfer
