// What the scheduler decided for one step: the sequences and token ranges the executor runs,
// and which requests are preempted or rejected. Plan() fills it; Commit() adds block tables.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "src/scheduler/request.h"

namespace dsinfer {

struct StepItem {
  uint64_t seq_id = 0;
  int64_t start_pos = 0;      // tokens of the sequence whose KV is already cached
  int64_t num_tokens = 0;     // tokens computed this step: [start_pos, start_pos + num_tokens)
  bool sample = false;        // the step produces a token (last prompt chunk, or a decode)
  bool admitted = false;      // first step after admission from the waiting queue
  bool resumed = false;       // the admission resumes a preempted sequence (recompute)
  int64_t cached_tokens = 0;  // on admission: tokens reused from the prefix cache (= start_pos)
  int64_t token_offset = 0;   // into StepPlan::token_ids
  int64_t block_offset = 0;   // into StepPlan::block_ids
  int32_t num_blocks = 0;     // blocks covering [0, start_pos + num_tokens + lookahead)
  // A decode carrying the sequence's MTP drafts as its last num_draft tokens (num_tokens
  // 1 + num_draft); a draft's KV counts only if the step accepts it (OnTokens rolls the rest
  // back).
  int32_t num_draft = 0;
  // Positions past the step's tokens its block table covers, for the MTP layer's chained
  // drafts (SchedulerLimits::mtp_lookahead, where free blocks allowed); OnTokens releases them.
  int32_t lookahead = 0;
};

struct Rejection {
  uint64_t seq_id = 0;
  absl::Status status;  // RESOURCE_EXHAUSTED (queue time) or DEADLINE_EXCEEDED
  RejectReason reason = RejectReason::kNone;
};

struct StepPlan {
  double now = 0;
  std::vector<StepItem> items;          // decodes first, then prefill chunks
  std::vector<int32_t> token_ids;       // input tokens of every item, concatenated
  std::vector<int32_t> block_ids;       // block table of every item; valid after Commit
  std::vector<uint64_t> preempted;      // running sequences sent back to the waiting queue
  std::vector<Rejection> rejected;      // requests removed with an error status
  std::vector<int32_t> evicted_blocks;  // prefix-cache blocks Commit evicts (LRU first)
  // Sequences that sit this step out so a newcomer's first step is short: running ones keep
  // their KV, waiting ones planned for admission stay queued; all run again at the next step,
  // which never defers.
  std::vector<uint64_t> deferred;
  // Running sequences held back by the step share (their tenant is above its share of the rows
  // while another tenant of the class is active): they keep their KV; the least recently run
  // go first, so each runs again within ceil(tenant's running / its row bound) steps.
  std::vector<uint64_t> held;
  int64_t num_batched_tokens = 0;
  uint64_t state_version = 0;  // Commit refuses a plan computed from an older state
  bool committed = false;

  bool empty() const { return items.empty() && preempted.empty() && rejected.empty(); }
  absl::Span<const int32_t> tokens(const StepItem& item) const {
    return absl::MakeConstSpan(token_ids).subspan(item.token_offset, item.num_tokens);
  }
  // The blocks the step reads and writes for `item`; only after Commit.
  absl::Span<const int32_t> block_table(const StepItem& item) const {
    return absl::MakeConstSpan(block_ids).subspan(item.block_offset, item.num_blocks);
  }
};

}  // namespace dsinfer
