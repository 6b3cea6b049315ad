// The step share (src/scheduler/README.md, "Step share"): while another tenant of its class is
// active, a tenant runs at most its slot share of sequences per step, rotating among its
// running sequences; alone, it runs its whole batch. Driven by the fake executor of
// scheduler_harness.h.
#include <gtest/gtest.h>

#include <algorithm>
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

// Watches every plan of h (before Commit): the prompt tokens (first computation or recompute,
// everything but a decode's one token) of tenant a's items (ids < 100), and whether tenant b
// (ids >= 100) had work, running or waiting, when the step was planned.
struct StepTokens {
  int64_t a_prompt = 0;
  bool b_has_work = false;
};
void WatchPromptTokens(Harness& h, StepTokens* out) {
  h.on_plan = [&h, out](const StepPlan& plan) {
    const SchedulerStats st = h.sched().Stats();
    out->b_has_work = st.tenants[1].running + st.tenants[1].waiting > 0;
    out->a_prompt = 0;
    for (const StepItem& item : plan.items) {
      if (item.seq_id >= 100) continue;
      const int64_t len = static_cast<int64_t>(h.sched().tokens(item.seq_id).size());
      const bool decode = item.num_tokens - item.num_draft == 1 && item.start_pos + 1 == len &&
                          len > h.prompt_len(item.seq_id);
      out->a_prompt += decode ? 0 : item.num_tokens;
    }
  };
}

// a floods (long prompts, more requests than slots); b, within its share, sends a short request
// every third step. In every step planned while b has work, a computes at most its weight's
// share of one prefill chunk of prompt tokens (64 / 2), so b's steps stay short and b's first
// token comes in the step after its arrival; a keeps progressing (its prompts are bounded, not
// stopped) and its outputs equal those of an undisturbed run. Alone, a fills the token budget.
TEST(StepShare, AHeavierTenantsPromptTokensPerStepAreBoundedWhileALighterOneHasWork) {
  const SchedulerLimits limits = ShareLimits();
  std::vector<TenantPolicy> tenants = {Tenant("a"), Tenant("b")};
  Harness h(limits, tenants), ref(limits, tenants);
  for (Harness* x : {&h, &ref}) {
    for (int i = 0; i < 24; ++i) {
      ASSERT_TRUE(x->Add(i, "a", kI, Tokens(i, 200), 20).status.ok());
    }
  }
  ref.RunUntilIdle();
  StepTokens seen;
  WatchPromptTokens(h, &seen);
  const int64_t bound = limits.prefill_chunk / 2;
  int64_t alone_max = 0;
  for (int k = 0; k < 3; ++k) {
    h.Step();
    alone_max = std::max(alone_max, seen.a_prompt);
  }
  EXPECT_GT(alone_max, bound) << "a alone is not bounded in prompt tokens";

  std::map<uint64_t, int64_t> added_at;  // b's request -> the step it arrived before
  std::map<uint64_t, int64_t> first_at;  // b's request -> the step that sampled its first token
  int64_t a_prompt_with_b = 0, steps_with_b = 0;
  for (int k = 0; k < 90; ++k) {
    if (k % 3 == 0) {
      const uint64_t id = 100 + k / 3;
      ASSERT_TRUE(h.Add(id, "b", kI, Tokens(id, 20), 6).status.ok());
      added_at[id] = h.steps;
    }
    const int64_t step = h.steps;
    StepPlan plan = h.Step();
    for (const StepItem& item : plan.items) {
      if (item.seq_id >= 100 && item.sample && !first_at.contains(item.seq_id)) {
        first_at[item.seq_id] = step;
      }
    }
    if (!seen.b_has_work) continue;
    ++steps_with_b;
    a_prompt_with_b += seen.a_prompt;
    EXPECT_LE(seen.a_prompt, bound) << "step " << k << ": a's prompt tokens while b has work";
  }
  EXPECT_GT(steps_with_b, 60);
  EXPECT_GT(a_prompt_with_b, 0) << "a's prompts stopped instead of being bounded";
  for (const auto& [id, at] : added_at) {
    ASSERT_TRUE(first_at.contains(id)) << "b's request " << id << " never started";
    EXPECT_EQ(first_at[id], at) << "b's request " << id << ": first token not in its first step";
  }
  if (HasFailure()) return;  // RunUntilIdle stops at a failure: the outputs would differ too
  h.RunUntilIdle();
  for (int i = 0; i < 24; ++i) EXPECT_EQ(h.outputs[i], ref.outputs[i]) << "request " << i;
}

// The bound is never zero: with b weighing 100 times a, a's share of a chunk rounds down to 0
// and a still computes one prompt token per step (at most) while b keeps sending. All of a's
// requests finish while b is still busy: bounded, not starved.
TEST(StepShare, ThePromptTokenBoundIsNeverZero) {
  const SchedulerLimits limits = ShareLimits();
  Harness h(limits, {Tenant("a"), Tenant("b", 100)});
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(h.Add(i, "a", kI, Tokens(i, 40), 4).status.ok());
  StepTokens seen;
  WatchPromptTokens(h, &seen);
  int64_t a_prompt_with_b = 0;
  int k = 0;
  for (; k < 1000 && !HasFailure(); ++k) {
    if (k % 2 == 0) {
      const uint64_t id = 100 + k / 2;
      ASSERT_TRUE(h.Add(id, "b", kI, Tokens(id, 8), 3).status.ok());
    }
    h.Step();
    if (seen.b_has_work) {
      EXPECT_LE(seen.a_prompt, 1) << "step " << k;
      a_prompt_with_b += seen.a_prompt;
    }
    if (h.done(0) && h.done(1) && h.done(2)) break;
  }
  if (HasFailure()) return;  // the loop stops at a failure
  EXPECT_LT(k, 1000) << "a did not finish while b kept sending";
  EXPECT_GE(a_prompt_with_b, 3 * 40) << "a's prompts were computed while b had work";
  for (int i = 0; i < 3; ++i) EXPECT_EQ(h.outputs[i].size(), 4u) << "request " << i;
  h.RunUntilIdle();
}

// The lighter tenant itself is not bounded: b's long prompt runs in whole chunks while a floods
// (a's bounded prompt tokens leave the budget for them).
TEST(StepShare, TheLighterTenantsPromptsRunInWholeChunks) {
  const SchedulerLimits limits = ShareLimits();
  Harness h(limits, {Tenant("a"), Tenant("b")});
  for (int i = 0; i < 24; ++i) ASSERT_TRUE(h.Add(i, "a", kI, Tokens(i, 200), 20).status.ok());
  for (int k = 0; k < 5; ++k) h.Step();
  ASSERT_TRUE(h.Add(100, "b", kI, Tokens(100, 4 * limits.prefill_chunk), 4).status.ok());
  int chunks = 0;
  while (!h.done(100) && !HasFailure()) {
    StepPlan plan = h.Step();
    for (const StepItem& item : plan.items) {
      if (item.seq_id != 100 || item.start_pos >= 4 * limits.prefill_chunk) continue;
      EXPECT_EQ(item.num_tokens, limits.prefill_chunk) << "b's chunk at " << item.start_pos;
      ++chunks;
    }
  }
  EXPECT_EQ(chunks, 4);
  h.RunUntilIdle();
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
