// Plan(): the scheduling decision of one step. It runs on the const scheduler state plus a small
// simulation (free-block count, reference deltas, evictions, queue cursors), so the plan states
// exactly which sequences are preempted and which cached blocks are evicted, and Commit cannot
// run out of blocks. Not part of the public API.
#pragma once

#include <array>
#include <cstdint>
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
    std::array<size_t, kNumPriorities> resume_pos{};
    std::array<std::vector<size_t>, kNumPriorities> queue_pos;  // [class][tenant]
    int32_t tail = -1;                                          // victim search position in order_
  };

  void RejectExpired();
  int32_t Ref(int32_t block) const;
  int32_t Avail() const { return sim_.free + sim_.evictable; }
  void ReleaseBlocks(const Sequence& s);
  void Pin(int32_t block);
  void EvictOne();
  void Allocate(int32_t n);
  int32_t Victim();  // index in order_ of the worst live running sequence, or -1
  void Preempt(int32_t index);
  void AddItem(const Sequence* s, int64_t start, int64_t n, int32_t new_blocks, bool admitted);
  void ScheduleRunning(int32_t index, int64_t n, bool may_shrink);
  const Sequence* NextWaiting(int p);
  void Consume(const Sequence* s);
  // Returns false when the class's head cannot be admitted (admission stops for lower classes).
  bool AdmitClass(int p);

  const SchedulerState& st_;
  const double now_;
  std::vector<const Sequence*> order_;  // running sequences, best first: class, then admit order
  std::array<int32_t, kNumPriorities + 1> class_begin_{};  // order_ range of each class
  absl::flat_hash_set<uint64_t> rejected_;
  std::vector<Rejection> rejections_;
  Sim sim_;
};

}  // namespace dsinfer
