// The step share (src/scheduler/README.md, "Step share"): while another tenant of its class is
// active, a tenant runs at most its slot share of sequences per step, rotating among its
// running sequences; alone, it runs its whole batch. Driven by the fake executor of
// scheduler_harness.h.
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "tests/scheduler_harness.h"

namespace dsinfer {
namespace {

using testing::Harness;
using testing::Tenant;
using testing::TestLimits;
using testing::Tokens;

constexpr Priority kI = Priority::kInteractive;

SchedulerLimits ShareLimits() {
  SchedulerLimits limits = TestLimits();
  limits.max_running = 8;
  limits.share_window_seconds = 0.05;  // 5 harness steps (dt 0.01 s)
  return limits;
}

// Items of tenant a (ids < 100) in a plan.
std::set<uint64_t> RowsOfA(const StepPlan& plan) {
  std::set<uint64_t> out;
  for (const StepItem& item : plan.items) {
    if (item.seq_id < 100) out.insert(item.seq_id);
  }
  return out;
}

// a (ids 0-3) and b (ids 100-103) each running four long requests: both at their share.
void RunFourEach(Harness& h) {
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(h.Add(i, "a", kI, Tokens(i, 40), 300).status.ok());
    ASSERT_TRUE(h.Add(100 + i, "b", kI, Tokens(100 + i, 40), 300).status.ok());
  }
  for (int i = 0; i < 6; ++i) h.Step();
}

// a holds every slot; b sends one long request. From then on a runs at most its share (4 of 8)
// of sequences per step, each of its running sequences at least every ceil(7 / 4) = 2 steps
// (plus at most one step deferred for a newcomer), and its queue waits while it holds its share;
// b decodes every step. Outputs equal those of an undisturbed run.
TEST(StepShare, AnOverShareTenantRunsItsShareOfRowsInRotation) {
  const SchedulerLimits limits = ShareLimits();
  std::vector<TenantPolicy> tenants = {Tenant("a"), Tenant("b")};
  Harness h(limits, tenants), ref(limits, tenants);
  for (Harness* x : {&h, &ref}) {
    for (int i = 0; i < 10; ++i) {
      ASSERT_TRUE(x->Add(i, "a", kI, Tokens(i, 40), 200).status.ok());
    }
  }
  ref.RunUntilIdle();
  for (int i = 0; i < 5; ++i) {
    StepPlan plan = h.Step();
    EXPECT_TRUE(plan.held.empty()) << "a alone is never held";
  }
  ASSERT_EQ(h.sched().Stats().tenants[0].running, 8);
  ASSERT_TRUE(h.Add(100, "b", kI, Tokens(100, 40), 200).status.ok());
  StepPlan first = h.Step();  // b's newcomer step: a yields a slot and sits the step out
  ASSERT_EQ(first.preempted.size(), 1u);
  EXPECT_TRUE(RowsOfA(first).empty());
  const int32_t a_running = h.sched().Stats().tenants[0].running;
  ASSERT_EQ(a_running, 7);

  std::map<uint64_t, int> last_ran;  // a's running sequences -> last step they computed
  for (int k = 0; k < 30; ++k) {
    const size_t running = static_cast<size_t>(h.sched().Stats().tenants[0].running);
    StepPlan plan = h.Step();
    const std::set<uint64_t> rows = RowsOfA(plan);
    // Exactly its share while it has more: the bound does not idle a's share.
    EXPECT_EQ(rows.size(), std::min<size_t>(running, 4)) << "step " << k;
    EXPECT_EQ(plan.held.size(), running - rows.size()) << "step " << k;
    bool b_ran = false;
    for (const StepItem& item : plan.items) {
      b_ran |= item.seq_id == 100;
      EXPECT_FALSE(item.admitted && item.seq_id < 100) << "a admitted beyond its share";
    }
    EXPECT_TRUE(b_ran) << "step " << k;
    // Rotation: with 7 running and 4 rows, a sequence held now ran in the step before.
    for (uint64_t id : plan.held) {
      if (k > 0) EXPECT_EQ(last_ran[id], k - 1) << "sequence " << id << " held twice in a row";
    }
    for (uint64_t id : rows) last_ran[id] = k;
  }
  EXPECT_EQ(last_ran.size(), 7u) << "every running sequence of a ran";
  EXPECT_GT(h.sched().Stats().held_sequences, 0);
  h.RunUntilIdle();
  for (int i = 0; i < 10; ++i) EXPECT_EQ(h.outputs[i], ref.outputs[i]) << "request " << i;
  EXPECT_EQ(h.outputs[100].size(), 200u);
}

// The bound lasts while b is active and `share_window_seconds` after it leaves, then a runs its
// whole batch again and fills the free slots: a tenant alone keeps the throughput of
// unbounded steps.
TEST(StepShare, TheBoundLastsTheWindowThenTheWholeStepReturns) {
  const SchedulerLimits limits = ShareLimits();
  Harness h(limits, {Tenant("a"), Tenant("b")});
  for (int i = 0; i < 16; ++i) {
    ASSERT_TRUE(h.Add(i, "a", kI, Tokens(i, 40), 300).status.ok());
  }
  for (int i = 0; i < 5; ++i) h.Step();
  ASSERT_TRUE(h.Add(100, "b", kI, Tokens(100, 40), 3).status.ok());
  while (!h.done(100) && !HasFailure()) h.Step();
  const double b_seen = h.now - h.dt;  // b last ran in the step before
  int bounded = 0, free = 0;
  while (h.now < b_seen + 0.2 && !HasFailure()) {
    // Steps at the window's edge (float rounding) are not judged.
    const double since = h.now - b_seen;
    StepPlan plan = h.Step();
    if (since < limits.share_window_seconds - h.dt / 2) {
      EXPECT_EQ(RowsOfA(plan).size(), 4u) << "b left " << since << " s ago, inside the window";
      EXPECT_FALSE(plan.held.empty());
      ++bounded;
    } else if (since > limits.share_window_seconds + h.dt / 2) {
      EXPECT_TRUE(plan.held.empty()) << "b left " << since << " s ago, outside the window";
      ++free;
    }
  }
  EXPECT_GE(bounded, 4);
  EXPECT_GE(free, 10);
  // After the window: all 8 slots are a's again and all of them run every step.
  EXPECT_EQ(h.sched().Stats().tenants[0].running, 8);
  StepPlan plan = h.Step();
  EXPECT_EQ(RowsOfA(plan).size(), 8u);
}

// A newcomer's step is short also when the other tenant holds exactly its share (where the step
// share keeps a flooding tenant) and more slots than the newcomer's tenant: it sits the step out;
// the newcomer's own tenant does not, and the next step runs everyone.
TEST(StepShare, ANewcomersStepDefersATenantAtItsShare) {
  SchedulerLimits limits = ShareLimits();
  Harness h(limits, {Tenant("a"), Tenant("b")});
  ASSERT_NO_FATAL_FAILURE(RunFourEach(h));
  ASSERT_EQ(h.sched().Stats().tenants[0].running, 4);
  ASSERT_EQ(h.sched().Stats().tenants[1].running, 4);
  h.Cancel(102);  // b below its share (2 of 4): its next request is a newcomer
  h.Cancel(103);
  StepPlan before = h.Step();
  ASSERT_TRUE(before.deferred.empty());
  ASSERT_TRUE(h.Add(104, "b", kI, Tokens(104, 40), 300).status.ok());
  StepPlan plan = h.Step();
  bool started = false;
  int b_rows = 0;
  for (const StepItem& item : plan.items) {
    started |= item.seq_id == 104 && item.admitted;
    b_rows += item.seq_id >= 100;
    EXPECT_GE(item.seq_id, 100u) << "a, at its share, ran in b's newcomer step";
  }
  EXPECT_TRUE(started);
  EXPECT_EQ(b_rows, 3);  // b's own two running sequences decode in its newcomer's step
  EXPECT_EQ(plan.deferred.size(), 4u);
  StepPlan next = h.Step();
  EXPECT_EQ(RowsOfA(next).size(), 4u);
  EXPECT_TRUE(next.deferred.empty());
}

// A flooder just below its share (where the step share keeps it) whose own next request counts
// as a newcomer, in the same step as a victim's newcomer: the flooder holds more slots per weight
// than the victim, so it sits the step out, its admission included (it does not escape the
// deferral through its own newcomer flag); the victim's newcomer starts; the next step runs the
// flooder again and admits its request.
TEST(StepShare, AFloodersOwnNewcomerDoesNotEscapeAVictimsNewcomerStep) {
  SchedulerLimits limits = ShareLimits();
  Harness h(limits, {Tenant("a"), Tenant("b")});
  ASSERT_NO_FATAL_FAILURE(RunFourEach(h));
  ASSERT_EQ(h.sched().Stats().tenants[0].running, 4);
  ASSERT_EQ(h.sched().Stats().tenants[1].running, 4);
  h.Cancel(3);  // a just below its share (3 of 4)
  h.Cancel(102);  // b well below it (2 of 4)
  h.Cancel(103);
  StepPlan before = h.Step();
  ASSERT_TRUE(before.deferred.empty());
  ASSERT_TRUE(h.Add(10, "a", kI, Tokens(10, 40), 300).status.ok());
  ASSERT_TRUE(h.Add(104, "b", kI, Tokens(104, 40), 300).status.ok());
  StepPlan plan = h.Step();
  bool b_started = false;
  for (const StepItem& item : plan.items) {
    b_started |= item.seq_id == 104 && item.admitted;
    EXPECT_GE(item.seq_id, 100u) << "a ran or was admitted in b's newcomer step";
  }
  EXPECT_TRUE(b_started);
  // a's three running sequences (their KV stays) and its planned admission (it stays queued)
  EXPECT_EQ(plan.deferred.size(), 4u);
  StepPlan next = h.Step();
  bool a_started = false;
  for (const StepItem& item : next.items) a_started |= item.seq_id == 10 && item.admitted;
  EXPECT_TRUE(a_started) << "a's request waited more than the one short step";
  EXPECT_EQ(RowsOfA(next).size(), 4u);
  EXPECT_TRUE(next.deferred.empty());
}

// The same flooder's newcomer alone (no victim newcomer) defers nobody: the victim holds fewer
// slots per weight, so a's own admission cannot make b sit out.
TEST(StepShare, AFloodersOwnNewcomerDefersNoTenantBelowIt) {
  SchedulerLimits limits = ShareLimits();
  Harness h(limits, {Tenant("a"), Tenant("b")});
  ASSERT_NO_FATAL_FAILURE(RunFourEach(h));
  h.Cancel(3);  // a: 3 of 4
  h.Cancel(103);  // b: 3 of 4 as well
  h.Step();
  ASSERT_TRUE(h.Add(10, "a", kI, Tokens(10, 40), 300).status.ok());
  StepPlan plan = h.Step();
  int b_rows = 0;
  bool a_started = false;
  for (const StepItem& item : plan.items) {
    b_rows += item.seq_id >= 100;
    a_started |= item.seq_id == 10 && item.admitted;
  }
  EXPECT_TRUE(a_started);
  EXPECT_EQ(b_rows, 3);
  EXPECT_TRUE(plan.deferred.empty());
}

TEST(StepShare, OffMeansUnboundedStepsAndTheWindowIsChecked) {
  SchedulerLimits limits = ShareLimits();
  limits.step_share = false;
  Harness h(limits, {Tenant("a"), Tenant("b")});
  for (int i = 0; i < 8; ++i) ASSERT_TRUE(h.Add(i, "a", kI, Tokens(i, 40), 300).status.ok());
  for (int i = 0; i < 5; ++i) h.Step();
  ASSERT_TRUE(h.Add(100, "b", kI, Tokens(100, 40), 300).status.ok());
  for (int k = 0; k < 6; ++k) {
    StepPlan plan = h.Step();
    EXPECT_TRUE(plan.held.empty());
    // b's newcomer step defers a (k = 0); after it a runs all of its 7 every step.
    EXPECT_EQ(RowsOfA(plan).size(), k == 0 ? 0u : 7u) << "step " << k;
  }
  limits.share_window_seconds = -1;
  EXPECT_FALSE(Scheduler::Create(limits, {Tenant("a")}).ok());
}

}  // namespace
}  // namespace dsinfer
