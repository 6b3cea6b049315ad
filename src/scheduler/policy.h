// Configuration of the scheduler: global limits and per-tenant policies (0 means unlimited).
#pragma once

#include <cstdint>
#include <string>

#include "src/scheduler/request.h"

namespace dsinfer {

struct TenantPolicy {
  std::string id;
  double weight = 1.0;                             // fair-share weight (> 0)
  Priority max_priority = Priority::kInteractive;  // highest class the tenant may use
  int32_t max_concurrent = 0;                      // queued + running requests
  int32_t max_queued = 0;                          // waiting requests
  int64_t tokens_per_minute = 0;                   // prompt + max_tokens accepted per sliding 60 s
};

struct SchedulerLimits {
  int64_t max_batched_tokens = 2048;  // tokens computed per step (decodes + prefill chunks)
  int32_t max_running = 64;           // sequences holding KV blocks
  int32_t max_waiting = 1024;         // requests in the waiting queue (all classes)
  int64_t max_waiting_tokens = 0;     // tokens of the requests in the waiting queue (0: no limit)
  double max_queue_seconds = 30;      // a request not admitted by then is rejected
  int64_t prefill_chunk = 512;        // prompt tokens of one sequence per step
  int32_t num_kv_blocks = 0;          // KV pool size in blocks of kKvBlockSize tokens
  bool prefix_caching = true;
  // Cached prefixes are matched within a tenant only, unless shared across tenants (a common
  // system prompt then hits for everyone, at the price of a timing side channel between them).
  bool share_prefix_across_tenants = false;
  int64_t max_model_len = 0;            // prompt + max_tokens
  double queue_full_retry_seconds = 1;  // retry hint when a queue or concurrency limit is hit
  // Times a sequence may lose its slot so that a higher class or a tenant below its share of the
  // running batch can run (recompute later). A sequence preempted this often (for any reason)
  // keeps its slot. 0: only emergency preempts for a slot (KV pressure still preempts).
  int32_t max_preemptions_per_request = 2;
  // Step share: while another tenant of its class is active (running, waiting, or either within
  // the last `share_window_seconds`), a tenant computes at most its slot share of the step's
  // rows (sequences), rotating among its running sequences, and is not admitted beyond it; while
  // an active tenant is within its share, a tenant with more demand (running + waiting per
  // weight) also computes at most its weight's share of prefill_chunk prompt tokens per step.
  // The step in flight when a tenant's request arrives is then short. false: steps are unbounded.
  bool step_share = true;
  double share_window_seconds = 5;
  // MTP with k > 1 drafts (k - 1): a sampling step's chained drafts write the MTP layer's cache
  // rows this many positions past its tokens; the plan lends those blocks where they are free
  // (never preempting) and OnTokens takes them back. 0: none.
  int32_t mtp_lookahead = 0;
};

}  // namespace dsinfer
