// The continuous-batching scheduler as pure logic: no threads, no model, no clock (time is
// passed in). Iteration-level scheduling as in Orca (Yu et al., OSDI 2022) and vLLM: every step
// each decoding sequence gets one token, then prefill chunks fill the token budget. Classes are
// strict priorities; within a class tenants share by the Virtual Token Counter (fair_share.h);
// KV is paged (block_pool.h) with automatic prefix caching (prefix_cache.h) and preemption by
// recompute. Invariants: README.md next to this file.
//
// One engine thread owns it and calls, per step:
//   plan = Plan(now); Commit(plan); <run plan.items>; OnTokens(sampled, finished);
// with Add/Cancel between steps (never between Plan and Commit: Commit checks the state version).
#pragma once

#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "src/kv_cache/block_pool.h"
#include "src/scheduler/policy.h"
#include "src/scheduler/request.h"
#include "src/scheduler/scheduler_state.h"
#include "src/scheduler/stats.h"
#include "src/scheduler/step_plan.h"

namespace dsinfer {

class Scheduler {
 public:
  // Validates the limits (positive; max_batched_tokens >= max_running, so every running
  // sequence can decode each step) and tenant policies (unique ids, weights > 0, limits >= 0).
  static absl::StatusOr<std::unique_ptr<Scheduler>> Create(const SchedulerLimits& limits,
                                                           std::vector<TenantPolicy> tenants);
  // The checks of Create, alone.
  static absl::Status ValidateConfig(const SchedulerLimits& limits,
                                     const std::vector<TenantPolicy>& tenants);

  // Admission control, at once: OK (the request waits), or INVALID_ARGUMENT / ALREADY_EXISTS
  // (never servable as sent), PERMISSION_DENIED (unknown tenant), RESOURCE_EXHAUSTED with
  // retry_after_seconds (queue, concurrency or token-rate limit).
  AdmitResult Add(NewRequest request, double now);

  // Removes a waiting or running request and frees its KV blocks now (cached full blocks stay in
  // the prefix cache, evictable). Returns false for an unknown id.
  bool Cancel(uint64_t id);

  // The next step, computed from the state without changing it.
  StepPlan Plan(double now) const;

  // Applies `plan` (rejections, preemptions, evictions, admissions, block allocation) and fills
  // plan.block_ids. Cannot fail: Plan counted every block. The plan must come from Plan() on the
  // current state, and the previous step must have been closed by OnTokens.
  void Commit(StepPlan& plan);

  // The executor ran the committed step: advances computed tokens, registers newly full blocks
  // in the prefix cache, appends `sampled` tokens (one for each item with sample = true) and
  // releases `finished` sequences. A sequence that reaches max_tokens finishes here by itself.
  // Ids no longer known (cancelled meanwhile) are ignored.
  // A drafted item (num_draft m) gets 1 .. m + 1 tokens: each token after the first says the
  // one before it was the next draft, accepted. Rejected drafts' slots and the lookahead are
  // rolled back (blocks past the computed tokens go back to the pool).
  void OnTokens(absl::Span<const std::pair<uint64_t, int32_t>> sampled,
                absl::Span<const uint64_t> finished);

  // MTP: the drafts for the tokens after a running sequence's last one (between steps). Plan
  // adds as many as the token budget, free blocks and max_tokens allow to the sequence's next
  // decode (a draft never preempts); they are dropped once the sequence runs a step.
  void SetDrafts(uint64_t id, absl::Span<const int32_t> tokens);

  SchedulerStats Stats() const;

  // Full accounting check (every block's references, free list, evictable list, queues);
  // for tests and debug builds. O(blocks + sequences).
  absl::Status Validate() const;

  bool Contains(uint64_t id) const { return state_.seqs.contains(id); }
  // Prompt then generated tokens of a live request; valid until the next mutation.
  absl::Span<const int32_t> tokens(uint64_t id) const;
  int32_t num_waiting() const { return state_.num_waiting; }
  int32_t num_running() const { return state_.num_running; }
  const BlockPool& block_pool() const { return state_.pool; }
  const SchedulerLimits& limits() const { return state_.limits; }

 private:
  Scheduler(const SchedulerLimits& limits, std::vector<TenantPolicy> tenants)
      : state_(limits, std::move(tenants)) {}

  Sequence* Find(uint64_t id) const;
  void Enqueue(Sequence* s, bool front);     // into the waiting queue of its class
  void Dequeue(Sequence* s, bool admitted);  // out of the waiting queue
  void InsertRunning(Sequence* s);
  void EraseRunning(Sequence* s);
  void ReleaseBlocks(Sequence* s);  // last block first, so tails are evicted before heads
  void Remove(Sequence* s);         // finished, cancelled or rejected
  void Preempt(Sequence* s);
  void Admit(Sequence* s, int64_t cached_tokens);
  void RegisterFullBlocks(Sequence* s);

  SchedulerState state_;
};

}  // namespace dsinfer
