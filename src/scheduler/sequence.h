// A request inside the scheduler: its tokens, how many of them have KV in the cache, its blocks.
#pragma once

#include <cstdint>
#include <vector>

#include "src/scheduler/request.h"

namespace dsinfer {

struct Sequence {
  uint64_t id = 0;
  int32_t tenant = 0;
  Priority priority = Priority::kInteractive;  // effective class (request's, capped by tenant)
  std::vector<int32_t> tokens;                 // prompt, then generated tokens
  int64_t prompt_len = 0;
  int64_t max_tokens = 0;
  double arrival = 0;   // when Add accepted it
  double deadline = 0;  // absolute; +inf when none

  // KV state. Tokens [0, num_computed) have KV in `blocks`; a preempted sequence has none.
  int64_t num_computed = 0;
  std::vector<int32_t> blocks;
  // Prefix-cache serial of the content of each leading full block (parent of the next one).
  std::vector<uint64_t> chain;

  bool running = false;
  uint64_t enqueue_order = 0;  // FCFS tie-break among tenants with equal counters
  uint64_t admit_order = 0;    // first admission (0: never admitted); victims: highest first
  int64_t prompt_charged = 0;  // prompt tokens charged to the tenant's virtual counter
  int32_t preemptions = 0;
  uint64_t last_step = 0;  // the step (SchedulerStats::steps) that last computed its tokens

  // Set by Commit, cleared by OnTokens: the step in flight.
  int64_t pending_tokens = 0;  // drafts included
  bool pending_sample = false;
  // MTP speculative decoding: drafts for the tokens after the last one (SetDrafts; empty:
  // none), and the drafts the step in flight verifies (their KV counts only once accepted).
  std::vector<int32_t> drafts;
  std::vector<int32_t> pending_drafts;
  int64_t pending_accepted = 0;    // of pending_drafts, accepted so far (OnTokens)
  int64_t pending_lookahead = 0;   // positions past the step's tokens its blocks cover

  int64_t num_tokens() const { return static_cast<int64_t>(tokens.size()); }
  int64_t generated() const { return num_tokens() - prompt_len; }
  bool admitted_before() const { return admit_order != 0; }
};

}  // namespace dsinfer
