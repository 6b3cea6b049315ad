// The scheduler's state, shared by Scheduler (which mutates it) and Planner (which only reads
// it). Not part of the public API.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "src/kv_cache/block_pool.h"
#include "src/scheduler/admission.h"
#include "src/scheduler/fair_share.h"
#include "src/scheduler/policy.h"
#include "src/scheduler/prefix_cache.h"
#include "src/scheduler/sequence.h"
#include "src/scheduler/stats.h"

namespace dsinfer {

struct TenantState {
  TenantPolicy policy;
  int32_t waiting = 0;
  int32_t running = 0;
  int64_t input_tokens = 0;
  int64_t output_tokens = 0;
  int64_t rejected = 0;
};

struct SchedulerState {
  SchedulerState(const SchedulerLimits& l, std::vector<TenantPolicy> policies);

  // Where the sequence's prefix chain starts: its tenant's root unless prefixes are shared.
  uint64_t PrefixRoot(const Sequence& s) const {
    return limits.share_prefix_across_tenants ? PrefixCache::kRootSerial
                                              : PrefixCache::TenantRoot(s.tenant);
  }

  SchedulerLimits limits;
  std::vector<TenantState> tenants;
  absl::flat_hash_map<std::string, int32_t> tenant_index;
  BlockPool pool;
  PrefixCache cache;
  VirtualTokenCounter vtc;
  AdmissionControl admission;

  absl::flat_hash_map<uint64_t, std::unique_ptr<Sequence>> seqs;
  // Waiting, per class and tenant: preempted sequences (front = next), then new requests FCFS.
  std::array<std::vector<std::deque<Sequence*>>, kNumPriorities> resume;  // [class][tenant]
  std::array<std::vector<std::deque<Sequence*>>, kNumPriorities> queued;  // [class][tenant]
  // Running: per class, ascending admit_order (the last one is the first preemption victim).
  std::array<std::vector<Sequence*>, kNumPriorities> running;
  int32_t num_waiting = 0;
  int64_t waiting_tokens = 0;
  int32_t num_running = 0;

  uint64_t version = 1;  // bumped by every mutation; a plan is only valid for its version
  std::vector<uint64_t> in_flight;  // sequences of the committed step awaiting OnTokens
  bool deferred_last_step = false;  // the last committed step deferred sequences for a newcomer
  // When each tenant last ran or waited in each class (a committed step's `now`; -inf: never).
  std::array<std::vector<double>, kNumPriorities> last_active;  // [class][tenant]
  uint64_t next_enqueue_order = 1;
  uint64_t next_admit_order = 1;

  SchedulerStats counters;  // monotonically increasing parts of the stats
};

}  // namespace dsinfer
