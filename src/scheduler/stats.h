// Counters and gauges of the scheduler for metrics (dsinfer_* names, `tenant`/`priority` labels).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "src/scheduler/request.h"

namespace dsinfer {

struct TenantStats {
  std::string id;
  double virtual_counter = 0;  // VTC counter (weighted service received, with lifts)
  int32_t waiting = 0;
  int32_t running = 0;
  int64_t input_tokens = 0;   // prompt tokens computed (not cache hits, not recompute)
  int64_t output_tokens = 0;  // tokens generated
  int64_t rejected = 0;
};

struct SchedulerStats {
  std::array<int32_t, kNumPriorities> waiting{};  // gauges per class (preempted included)
  int32_t running = 0;
  int32_t kv_blocks_total = 0;
  int32_t kv_blocks_free = 0;                         // on the free list
  int32_t kv_blocks_used = 0;                         // total - free (sequences' and cached blocks)
  int32_t kv_blocks_cached = 0;                       // registered in the prefix cache
  int32_t kv_blocks_evictable = 0;                    // cached and held by no sequence
  int64_t prefix_cache_queries = 0;                   // tokens looked up at admission
  int64_t prefix_cache_hits = 0;                      // of those, tokens reused
  std::array<int64_t, kNumPriorities> preemptions{};  // counters per class of the victim
  std::array<int64_t, kNumRejectReasons> rejections{};  // counters per RejectReason
  int64_t steps = 0;
  int64_t deferred_sequences = 0;  // sequence-steps deferred so a newcomer's first step is short
  int64_t held_sequences = 0;      // sequence-steps held back by the step share (rotation)
  std::vector<TenantStats> tenants;
};

}  // namespace dsinfer
