// Plan(): the scheduling decision of one step. It runs on the const scheduler state plus a small
// simulation (free-block count, reference deltas, evictions, queue cursors), so the plan states
// exactly which sequences are preempted and which cached blocks are evicted, and Commit cannot
// run out of blocks. Not part of the public API.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <limits>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "src/scheduler/scheduler_state.h"
#include "src/scheduler/step_plan.h"

namespace dsinfer {

class Planner {
 public:
  Planner(const SchedulerState& state, double now);
  StepPlan Run();

 private:
  struct Item {
    const Sequence* seq;
    int64_t start;
    int64_t n;
    int32_t new_blocks;
    bool sample;
    bool admitted;
    bool dropped;
    bool newcomer = false;  // a first admission of a tenant below its slot share
    int32_t draft = 0;      // the last `draft` tokens are the sequence's MTP drafts
    int32_t lookahead = 0;  // positions past the tokens the blocks cover (chained drafts)
  };
  // Everything the plan changes, kept apart from the state (copyable, to try a preemption).
  struct Sim {
    int64_t budget = 0;
    int32_t running = 0;
    int32_t free = 0;       // blocks on the free list
    int32_t evictable = 0;  // cached blocks with no holder, not evicted
    absl::flat_hash_map<int32_t, int32_t> ref_delta;
    absl::flat_hash_set<int32_t> evicted;
    std::vector<int32_t> evicted_order;
    int32_t lru_cursor = -1;    // next candidate in the cache's LRU list
    std::vector<int32_t> late;  // blocks that become evictable in this plan, in order
    size_t late_cursor = 0;
    std::vector<Item> items;
    absl::flat_hash_map<uint64_t, int32_t> item_of;  // running sequence -> its item
    absl::flat_hash_set<uint64_t> dead;              // preempted in this plan
    std::vector<uint64_t> preempted;
    std::vector<double> vtc;  // virtual counters, charged as we admit
    std::array<std::vector<size_t>, kNumPriorities> resume_pos;   // [class][tenant]
    std::array<std::vector<size_t>, kNumPriorities> queue_pos;    // [class][tenant]
    std::array<std::vector<int32_t>, kNumPriorities> running_by;  // [class][tenant] sequences
    std::array<std::vector<int64_t>, kNumPriorities> prefill_by;  // [class][tenant] prompt tokens
    int32_t tail = -1;  // victim search position in order_ (KV pressure)
  };

  void RejectExpired();
  int32_t Ref(int32_t block) const;
  int32_t Avail() const { return sim_.free + sim_.evictable; }
  void ReleaseBlocks(const Sequence& s);
  void Pin(int32_t block);
  void EvictOne();
  void Allocate(int32_t n);
  int32_t Victim();  // index in order_ of the worst live running sequence, or -1
  // Policy victims (index in order_, or -1), worst first, skipping sequences at the preemption
  // cap unless `capped` is false: a sequence of a class below p; a running sequence of the
  // taker's class whose tenant may yield a slot to the taker (SlotShareAllowsPreemption).
  int32_t LowerClassVictim(int p, bool capped) const;
  int32_t ShareVictim(const Sequence* taker) const;
  // Tenant t's share of max_running among the tenants running or waiting in class p (by weight).
  double SlotShare(int p, int32_t t) const;
  bool BelowShare(int p, int32_t t) const;
  bool HasWaiting(int p, size_t t) const { return Head(p, t) != nullptr; }
  bool Preemptable(const Sequence* s) const;
  void Preempt(int32_t index);
  void AddItem(const Sequence* s, int64_t start, int64_t n, int32_t new_blocks, bool admitted,
               int32_t draft = 0);
  void ScheduleRunning(int32_t index, int64_t n, bool may_shrink, int32_t draft = 0);
  // MTP: each decode takes as many of its sequence's drafts as budget, free blocks and
  // max_tokens allow (a draft never preempts); then sampling items get lookahead blocks.
  void AddDrafts();
  void AddLookahead();
  size_t SkipRejected(const std::deque<Sequence*>& q, size_t pos) const;
  // Tenant t's next waiting sequence of class p: its preempted ones first, then FCFS.
  const Sequence* Head(int p, size_t t) const;
  // The next tenant's head: tenants below their slot share first, then the smallest counter.
  const Sequence* NextWaiting(int p);
  void Consume(const Sequence* s);
  // Admits s, making room if needed: lower classes yield (priority), then over-share tenants of
  // its class (fair share). Returns false, with nothing changed, when that cannot make room.
  bool TryAdmit(const Sequence* s);
  // The class's fair-share head cannot run: a tenant below its share of the running batch may
  // still take a slot from one above it. Returns true when one was admitted.
  bool AdmitBelowShare(int p, int32_t head_tenant);
  // Returns false when the class's head cannot be admitted (admission stops for lower classes).
  bool AdmitClass(int p);
  // A newcomer starts: lower classes and tenants at or above their share in its class (running
  // or being admitted) sit the step out, so its first step is short. Not after a step that did so.
  void DeferForNewcomers();
  // Step share: in a class where another tenant is active (running, waiting, or within the
  // window), each active tenant may run at most row_bound_ = ceil(its slot share among the
  // active tenants) sequences this step; those beyond it, the most recently run, are held.
  // A tenant holding more slots per weight than an active tenant within its share computes at
  // most token_bound_ = its weight's share of prefill_chunk prompt tokens this step.
  void BoundStepsByShare();
  // Tenant t may not be admitted in class p: it holds its row bound of slots already, or its
  // prompt tokens of this step are spent.
  bool AtRowBound(int p, size_t t) const {
    return (row_bound_[p][t] > 0 && sim_.running_by[p][t] >= row_bound_[p][t]) ||
           PrefillLeft(p, t) <= 0;
  }
  // Prompt tokens (prefill chunks and admissions) tenant t may still compute in class p.
  int64_t PrefillLeft(int p, size_t t) const {
    return token_bound_[p][t] > 0 ? token_bound_[p][t] - sim_.prefill_by[p][t]
                                  : std::numeric_limits<int64_t>::max();
  }

  const SchedulerState& st_;
  const double now_;
  std::vector<const Sequence*> order_;  // running sequences, best first: class, then admit order
  std::array<int32_t, kNumPriorities + 1> class_begin_{};  // order_ range of each class
  absl::flat_hash_set<uint64_t> rejected_;
  std::vector<Rejection> rejections_;
  std::vector<uint64_t> deferred_;
  std::array<std::vector<int32_t>, kNumPriorities> row_bound_;  // [class][tenant]; 0: unbounded
  std::array<std::vector<int64_t>, kNumPriorities> token_bound_;  // [class][tenant]; 0: unbounded
  std::vector<char> held_;  // by order_ index: held back by the step share
  Sim sim_;
};

}  // namespace dsinfer
