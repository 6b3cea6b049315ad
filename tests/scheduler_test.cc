// Scheduler invariants (src/scheduler/README.md), driven by the fake executor of
// scheduler_harness.h.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "tests/scheduler_harness.h"

namespace dsinfer {
namespace {

using testing::Harness;
using testing::Tenant;
using testing::TestLimits;
using testing::Tokens;

// Outputs of each request run alone on a fresh scheduler.
std::map<uint64_t, std::vector<int32_t>> RunAlone(
    const SchedulerLimits& limits,
    const std::vector<std::pair<std::vector<int32_t>, int64_t>>& reqs) {
  std::map<uint64_t, std::vector<int32_t>> out;
  for (size_t i = 0; i < reqs.size(); ++i) {
    Harness h(limits, {Tenant("a")});
    EXPECT_TRUE(h.Add(i, "a", Priority::kInteractive, reqs[i].first, reqs[i].second).status.ok());
    h.RunUntilIdle();
    out[i] = h.outputs[i];
  }
  return out;
}

TEST(Scheduler, BudgetCapBatchInvarianceAndPromptCoveredOnce) {
  SchedulerLimits limits = TestLimits();
  limits.prefix_caching = false;     // every position is then computed exactly once
  limits.max_batched_tokens = 2048;  // 32 first chunks of 64 tokens: all 32 run together
  std::mt19937 rng(7);
  std::vector<std::pair<std::vector<int32_t>, int64_t>> reqs;
  for (int i = 0; i < 32; ++i) {
    reqs.emplace_back(Tokens(100 + i, 64 + rng() % 300), 5 + rng() % 40);
  }
  Harness h(limits, {Tenant("a")});
  int64_t max_batched = 0;
  int32_t max_running = 0;
  h.on_plan = [&](const StepPlan& plan) {
    max_batched = std::max(max_batched, plan.num_batched_tokens);
    EXPECT_TRUE(plan.preempted.empty());
  };
  for (size_t i = 0; i < reqs.size(); ++i) {
    ASSERT_TRUE(h.Add(i, "a", Priority::kInteractive, reqs[i].first, reqs[i].second).status.ok());
  }
  while (!h.idle() && !HasFailure()) {
    h.Step();
    max_running = std::max(max_running, h.sched().num_running());
  }
  EXPECT_EQ(max_batched, limits.max_batched_tokens);  // the budget is used, never exceeded
  EXPECT_LE(max_running, limits.max_running);
  EXPECT_EQ(max_running, 32);

  auto alone = RunAlone(limits, reqs);
  for (size_t i = 0; i < reqs.size(); ++i) {
    EXPECT_EQ(h.outputs[i].size(), static_cast<size_t>(reqs[i].second));
    EXPECT_EQ(h.outputs[i], alone[i]) << "request " << i;
    // Positions [0, prompt + generated - 1) each computed exactly once; the last token never.
    const auto& c = h.computed_[i];
    const size_t len = reqs[i].first.size() + reqs[i].second;
    for (size_t p = 0; p + 1 < len; ++p) ASSERT_EQ(c[p], 1) << "request " << i << " pos " << p;
    EXPECT_EQ(c[len - 1], 0);
  }
  EXPECT_EQ(h.sched().block_pool().num_free(), limits.num_kv_blocks);
}

TEST(Scheduler, RunningCapAndDecodesFirst) {
  SchedulerLimits limits = TestLimits();
  limits.max_running = 4;
  limits.max_batched_tokens = 100;
  limits.prefill_chunk = 90;
  Harness h(limits, {Tenant("a")});
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(h.Add(i, "a", Priority::kInteractive, Tokens(i, 200), 20).status.ok());
  }
  h.on_plan = [&](const StepPlan& plan) {
    bool prefill_seen = false;
    for (const StepItem& item : plan.items) {
      const bool decode =
          !item.admitted && item.num_tokens == 1 && item.start_pos >= 200;  // prompt computed
      if (!decode) prefill_seen = true;
      EXPECT_FALSE(decode && prefill_seen) << "a decode after a prefill chunk";
    }
  };
  while (!h.idle() && !HasFailure()) {
    h.Step();
    EXPECT_LE(h.sched().num_running(), 4);
  }
}

TEST(Scheduler, PlanIsPureAndStaleCommitIsRefused) {
  Harness h(TestLimits(), {Tenant("a")});
  ASSERT_TRUE(h.Add(1, "a", Priority::kInteractive, Tokens(1, 300), 4).status.ok());
  const Scheduler& s = h.sched();
  StepPlan a = s.Plan(0), b = s.Plan(0);
  ASSERT_EQ(a.items.size(), b.items.size());
  EXPECT_EQ(a.token_ids, b.token_ids);
  EXPECT_EQ(a.state_version, b.state_version);
  EXPECT_EQ(s.num_waiting(), 1);
  EXPECT_EQ(s.block_pool().num_free(), TestLimits().num_kv_blocks);
  ASSERT_TRUE(h.Add(2, "a", Priority::kInteractive, Tokens(2, 30), 4).status.ok());
  EXPECT_DEATH(h.sched().Commit(a), "");  // computed before the Add: refused
}

TEST(Scheduler, CancelFreesBlocksAtOnce) {
  SchedulerLimits limits = TestLimits();
  limits.prefix_caching = false;
  limits.max_running = 2;
  Harness h(limits, {Tenant("a")});
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(h.Add(i, "a", Priority::kInteractive, Tokens(i, 150), 50).status.ok());
  }
  for (int i = 0; i < 6; ++i) h.Step();
  ASSERT_EQ(h.sched().num_running(), 2);
  ASSERT_EQ(h.sched().num_waiting(), 1);
  const int32_t before = h.sched().block_pool().num_free();
  ASSERT_TRUE(h.Cancel(0));
  EXPECT_EQ(h.sched().block_pool().num_free(), before + 3);  // 150 + a few tokens: 3 blocks
  ASSERT_TRUE(h.Cancel(2));                                  // a waiting one
  EXPECT_EQ(h.sched().num_waiting(), 0);
  EXPECT_FALSE(h.Cancel(2));
  EXPECT_TRUE(h.sched().Validate().ok());
  h.RunUntilIdle();
  EXPECT_EQ(h.sched().block_pool().num_free(), limits.num_kv_blocks);

  // With prefix caching, cached blocks stay behind but are all evictable.
  Harness c(TestLimits(), {Tenant("a")});
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(c.Add(i, "a", Priority::kInteractive, Tokens(i, 300), 30).status.ok());
  }
  for (int i = 0; i < 5; ++i) c.Step();
  c.Cancel(1);
  c.Cancel(3);
  c.RunUntilIdle();
  SchedulerStats st = c.sched().Stats();
  EXPECT_GT(st.kv_blocks_cached, 0);
  EXPECT_EQ(st.kv_blocks_free + st.kv_blocks_evictable, st.kv_blocks_total);
}

// Runs `n` requests (prompt 100 + 150 generated = 4 blocks each) on a pool of `blocks`.
Harness* RunPressure(Harness* h, int n) {
  for (int i = 0; i < n; ++i) {
    EXPECT_TRUE(h->Add(i, "a", Priority::kInteractive, Tokens(50 + i, 100), 150).status.ok());
  }
  h->RunUntilIdle();
  return h;
}

class PreemptionTest : public ::testing::TestWithParam<bool> {};

TEST_P(PreemptionTest, RecomputeKeepsOutputsAndIsBounded) {
  SchedulerLimits big = TestLimits();
  big.prefix_caching = GetParam();
  SchedulerLimits small = big;
  small.num_kv_blocks = 20;  // 8 requests x 4 blocks do not fit
  Harness ref(big, {Tenant("a")}), tight(small, {Tenant("a")});
  RunPressure(&ref, 8);
  RunPressure(&tight, 8);
  const SchedulerStats st = tight.sched().Stats();
  const int64_t preemptions = st.preemptions[PriorityIndex(Priority::kInteractive)];
  EXPECT_GT(preemptions, 0);
  EXPECT_LE(preemptions, 16);  // bounded: victims are the newest admissions only
  for (int i = 0; i < 8; ++i) EXPECT_EQ(tight.outputs[i], ref.outputs[i]) << "request " << i;
  // Throughput recovers: the tight run takes at most a few times the steps of the roomy one.
  EXPECT_LE(tight.steps, 4 * ref.steps);
  std::printf("pool 20 blocks: %ld preemptions, %ld steps (roomy pool: %ld steps)\n",
              static_cast<long>(preemptions), static_cast<long>(tight.steps),
              static_cast<long>(ref.steps));
  EXPECT_EQ(st.kv_blocks_free + st.kv_blocks_evictable, st.kv_blocks_total);
}

INSTANTIATE_TEST_SUITE_P(PrefixCaching, PreemptionTest, ::testing::Bool());

TEST(Scheduler, EmergencyOvertakesAndPreemptsBatchWhenPoolIsFull) {
  SchedulerLimits limits = TestLimits();
  limits.num_kv_blocks = 16;
  limits.prefix_caching = false;
  std::vector<TenantPolicy> tenants = {Tenant("bulk", 1, Priority::kBatch),
                                       Tenant("ops", 1, Priority::kEmergency)};
  Harness h(limits, tenants), ref(limits, tenants);
  for (Harness* x : {&h, &ref}) {
    for (int i = 0; i < 4; ++i) {  // 200 + 56 = 4 blocks each: the whole pool
      ASSERT_TRUE(x->Add(i, "bulk", Priority::kBatch, Tokens(i, 200), 56).status.ok());
    }
    ASSERT_TRUE(x->Add(9, "bulk", Priority::kBatch, Tokens(9, 100), 10).status.ok());  // queued
  }
  ref.RunUntilIdle();
  while (h.sched().block_pool().num_free() > 0) h.Step();
  ASSERT_EQ(h.sched().num_running(), 4);
  ASSERT_TRUE(h.Add(100, "ops", Priority::kEmergency, Tokens(100, 100), 20).status.ok());
  StepPlan plan = h.Step();
  ASSERT_EQ(plan.preempted.size(), 1u);
  EXPECT_EQ(plan.preempted[0], 3u);  // lowest class, most recently admitted
  bool admitted = false;
  for (const StepItem& item : plan.items) admitted |= item.seq_id == 100 && item.admitted;
  EXPECT_TRUE(admitted);
  while (!h.done(100)) {
    h.Step();
    for (int i = 0; i < 4; ++i) EXPECT_FALSE(h.done(i)) << "batch finished before emergency";
  }
  h.RunUntilIdle();
  EXPECT_EQ(h.sched().Stats().preemptions[PriorityIndex(Priority::kBatch)], 1);
  for (int i : {0, 1, 2, 3, 9}) EXPECT_EQ(h.outputs[i], ref.outputs[i]) << "request " << i;
}

TEST(Scheduler, EmergencyPreemptsNothingWhenThatCannotMakeRoom) {
  SchedulerLimits limits = TestLimits();
  limits.num_kv_blocks = 16;
  limits.prefix_caching = false;
  limits.max_batched_tokens = 1024;
  limits.prefill_chunk = 512;
  std::vector<TenantPolicy> tenants = {Tenant("bulk", 1, Priority::kBatch),
                                       Tenant("ops", 1, Priority::kEmergency)};
  Harness h(limits, tenants), ref(limits, tenants);
  for (Harness* x : {&h, &ref}) {
    ASSERT_TRUE(x->Add(1, "ops", Priority::kEmergency, Tokens(1, 600), 100).status.ok());
    ASSERT_TRUE(x->Add(2, "bulk", Priority::kBatch, Tokens(2, 100), 28).status.ok());
  }
  ref.RunUntilIdle();
  for (int i = 0; i < 3; ++i) h.Step();  // 1 holds 10 blocks, 2 holds 2: 4 free
  ASSERT_EQ(h.sched().block_pool().num_free(), 4);
  // Its first chunk (400 tokens, 7 blocks) does not fit even without request 2 (4 + 2 blocks).
  ASSERT_TRUE(h.Add(3, "ops", Priority::kEmergency, Tokens(3, 400), 10).status.ok());
  StepPlan plan = h.Step();
  EXPECT_TRUE(plan.preempted.empty());
  for (const StepItem& item : plan.items) EXPECT_NE(item.seq_id, 3u);
  h.RunUntilIdle();
  EXPECT_EQ(h.sched().Stats().preemptions[PriorityIndex(Priority::kBatch)], 0);
  EXPECT_EQ(h.outputs[2], ref.outputs[2]);
  EXPECT_EQ(h.outputs[3].size(), 10u);
}

TEST(Scheduler, EmergencyTakesARunningSlotFromBatch) {
  SchedulerLimits limits = TestLimits();
  limits.max_running = 2;
  Harness h(limits, {Tenant("bulk", 1, Priority::kBatch), Tenant("ops", 1, Priority::kEmergency)});
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(h.Add(i, "bulk", Priority::kBatch, Tokens(i, 50), 100).status.ok());
  }
  ASSERT_TRUE(h.Add(7, "ops", Priority::kInteractive, Tokens(7, 50), 10).status.ok());
  h.Step();  // interactive overtakes the earlier batch requests
  StepPlan first = h.Step();
  EXPECT_EQ(h.sched().Stats().running, 2);
  ASSERT_TRUE(h.Add(8, "ops", Priority::kEmergency, Tokens(8, 50), 10).status.ok());
  StepPlan plan = h.Step();
  ASSERT_EQ(plan.preempted.size(), 1u);  // the batch request, not the interactive one
  EXPECT_EQ(plan.preempted[0], 0u);
  h.RunUntilIdle();
}

TEST(Scheduler, PriorityIsCappedByTenantCeiling) {
  Harness h(TestLimits(), {Tenant("t", 1, Priority::kBatch)});
  ASSERT_TRUE(h.Add(1, "t", Priority::kEmergency, Tokens(1, 10), 2).status.ok());
  EXPECT_EQ(h.sched().Stats().waiting[PriorityIndex(Priority::kBatch)], 1);
  EXPECT_EQ(h.sched().Stats().waiting[PriorityIndex(Priority::kEmergency)], 0);
}

// Service received by each tenant while both are backlogged.
std::pair<double, double> FairShareRun(double weight_a, double weight_b, int n_a, int n_b) {
  SchedulerLimits limits = TestLimits();
  limits.max_running = 8;
  limits.prefix_caching = false;
  Harness h(limits, {Tenant("a", weight_a), Tenant("b", weight_b)});
  uint64_t id = 0;
  // a's whole flood arrives first: FCFS would serve all of it before b.
  for (int i = 0; i < n_a; ++i, ++id) {
    EXPECT_TRUE(h.Add(id, "a", Priority::kInteractive, Tokens(id, 64), 32).status.ok());
  }
  for (int i = 0; i < n_b; ++i, ++id) {
    EXPECT_TRUE(h.Add(id, "b", Priority::kInteractive, Tokens(id, 64), 32).status.ok());
  }
  auto backlogged = [&] {
    SchedulerStats st = h.sched().Stats();
    return st.tenants[0].waiting > 0 && st.tenants[1].waiting > 0;
  };
  while (backlogged() && !::testing::Test::HasFailure()) h.Step();
  return {h.service["a"], h.service["b"]};
}

TEST(FairShare, FloodingTenantGetsNoMoreThanItsShare) {
  auto [a, b] = FairShareRun(1, 1, 600, 60);  // a sends 10x as many requests
  ASSERT_GT(b, 0);
  // VTC bound (Sheng et al., Thm 4.3): |W_a - W_b| <= 2 max(w_p L_input, w_q M), M the tokens
  // one tenant can hold in the batch: 8 running x (64 + 32).
  const double bound = 2 * std::max(64.0, 2.0 * 8 * 96);
  EXPECT_LE(std::abs(a - b), bound) << "a " << a << " b " << b;
  std::printf("equal weights, 10x flood: service a %.0f b %.0f (|a-b| %.0f, bound %.0f)\n", a, b,
              std::abs(a - b), bound);
  EXPECT_NEAR(a / b, 1.0, 0.1);
}

TEST(FairShare, WeightsTwoToOne) {
  auto [a, b] = FairShareRun(2, 1, 400, 400);
  EXPECT_NEAR(a / b, 2.0, 0.2) << "a " << a << " b " << b;
  std::printf("weights 2:1: service a %.0f b %.0f (ratio %.3f)\n", a, b, a / b);
}

TEST(FairShare, IdleTenantBanksNoCredit) {
  SchedulerLimits limits = TestLimits();
  limits.max_running = 4;
  Harness h(limits, {Tenant("a"), Tenant("b")});
  for (int i = 0; i < 200; ++i) {
    ASSERT_TRUE(h.Add(i, "a", Priority::kInteractive, Tokens(i, 64), 16).status.ok());
  }
  for (int i = 0; i < 300; ++i) h.Step();  // b idle: a is served alone
  const double a_counter = h.sched().Stats().tenants[0].virtual_counter;
  ASSERT_GT(a_counter, 1000);
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(h.Add(1000 + i, "b", Priority::kInteractive, Tokens(1000 + i, 64), 16).status.ok());
  }
  // b starts at a's counter, not at 0, so it does not monopolise the batch to catch up.
  EXPECT_GE(h.sched().Stats().tenants[1].virtual_counter, a_counter);
  h.service.clear();
  for (int i = 0; i < 200; ++i) h.Step();
  EXPECT_NEAR(h.service["a"] / h.service["b"], 1.0, 0.25);
}

// A newcomer's first step is short even when the tenant above its share has free slots to
// admit its own queue into: those admissions sit the step out too (they stay queued) and start
// at the next step. The deferral alone: with the step share on (the default), a, above its
// share while b is active, is not admitted at all and runs 4 of its 5 (scheduler_step_share_test).
TEST(FairShare, AnOverShareTenantsAdmissionsSitOutANewcomersStep) {
  SchedulerLimits limits = TestLimits();
  limits.max_running = 8;
  limits.step_share = false;
  std::vector<TenantPolicy> tenants = {Tenant("a"), Tenant("b")};
  Harness h(limits, tenants);
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(h.Add(i, "a", Priority::kInteractive, Tokens(i, 40), 300).status.ok());
  }
  for (int i = 0; i < 5; ++i) h.Step();
  ASSERT_EQ(h.sched().Stats().tenants[0].running, 5);
  ASSERT_TRUE(h.Add(100, "b", Priority::kInteractive, Tokens(100, 40), 300).status.ok());
  for (int i = 10; i < 12; ++i) {
    ASSERT_TRUE(h.Add(i, "a", Priority::kInteractive, Tokens(i, 40), 300).status.ok());
  }
  StepPlan first = h.Step();
  bool b_started = false;
  for (const StepItem& item : first.items) {
    b_started |= item.seq_id == 100u && item.admitted;
    EXPECT_EQ(item.seq_id, 100u) << "a ran or was admitted in b's first step";
  }
  EXPECT_TRUE(b_started);
  EXPECT_EQ(first.deferred.size(), 7u);  // a's 5 running and its 2 admissions
  EXPECT_EQ(h.sched().Stats().tenants[0].running, 5);
  StepPlan next = h.Step();  // never two short steps in a row: a runs and admits
  int a_admitted = 0, a_ran = 0;
  for (const StepItem& item : next.items) {
    if (item.seq_id >= 10 && item.seq_id < 12 && item.admitted) ++a_admitted;
    if (item.seq_id < 5) ++a_ran;
  }
  EXPECT_EQ(a_admitted, 2);
  EXPECT_EQ(a_ran, 5);
  EXPECT_TRUE(next.deferred.empty());
}

// Fairness reaches the running batch: a tenant that arrives while another holds every slot is
// admitted at the next step (the holder yields its latest sequence), up to equal slots per
// weight and no further; the yielded sequences resume with unchanged output.
TEST(FairShare, ATenantBelowItsShareGetsASlotAtTheNextStep) {
  SchedulerLimits limits = TestLimits();
  limits.max_running = 8;
  std::vector<TenantPolicy> tenants = {Tenant("a"), Tenant("b")};
  Harness h(limits, tenants), ref(limits, tenants);
  for (Harness* x : {&h, &ref}) {
    for (int i = 0; i < 12; ++i) {
      ASSERT_TRUE(x->Add(i, "a", Priority::kInteractive, Tokens(i, 40), 300).status.ok());
    }
  }
  ref.RunUntilIdle();
  for (int i = 0; i < 5; ++i) h.Step();
  ASSERT_EQ(h.sched().Stats().tenants[0].running, 8);
  std::map<uint64_t, int> preempted;
  h.on_plan = [&](const StepPlan& plan) {
    for (uint64_t id : plan.preempted) ++preempted[id];
  };
  // b sends one request at a time: each starts at the next step, until b holds half the slots.
  // A step that starts one is short: a, above its share, sits it out, but never two steps in a
  // row (so every second one of these steps also carries a's decodes).
  for (int k = 0; k < 4; ++k) {
    ASSERT_TRUE(h.Add(100 + k, "b", Priority::kInteractive, Tokens(100 + k, 40), 300).status.ok());
    StepPlan plan = h.Step();
    bool admitted = false, a_ran = false;
    for (const StepItem& item : plan.items) {
      admitted |= item.seq_id == 100u + k && item.admitted;
      a_ran |= item.seq_id < 12;
    }
    EXPECT_TRUE(admitted) << "b's request " << k << " waited";
    EXPECT_EQ(plan.preempted.size(), 1u);
    EXPECT_EQ(a_ran, k % 2 == 1) << "step " << k;
    EXPECT_EQ(plan.deferred.empty(), k % 2 == 1) << "step " << k;
  }
  EXPECT_GT(h.sched().Stats().deferred_sequences, 0);
  SchedulerStats st = h.sched().Stats();
  EXPECT_EQ(st.tenants[0].running, 4);
  EXPECT_EQ(st.tenants[1].running, 4);
  // Beyond its share b waits like everyone else: nothing more is preempted for it.
  ASSERT_TRUE(h.Add(104, "b", Priority::kInteractive, Tokens(104, 40), 300).status.ok());
  StepPlan plan = h.Step();
  EXPECT_TRUE(plan.preempted.empty());
  for (const StepItem& item : plan.items) EXPECT_NE(item.seq_id, 104u);
  h.RunUntilIdle();
  for (const auto& [id, n] : preempted) {
    EXPECT_LT(id, 12u) << "only the tenant above its share yields";
    EXPECT_LE(n, limits.max_preemptions_per_request);
  }
  for (int i = 0; i < 12; ++i) EXPECT_EQ(h.outputs[i], ref.outputs[i]) << "request " << i;
  for (int k = 0; k < 5; ++k) EXPECT_EQ(h.outputs[100 + k].size(), 300u);
}

// Interactive work overtakes batch work that holds every slot: a batch sequence yields (it is
// recomputed later, output unchanged), each at most max_preemptions_per_request times, and one
// that reached the cap keeps its slot.
TEST(Priority, InteractiveOvertakesBatchAndPreemptionIsBounded) {
  SchedulerLimits limits = TestLimits();
  limits.max_running = 4;
  limits.max_preemptions_per_request = 1;
  std::vector<TenantPolicy> tenants = {Tenant("bulk", 1, Priority::kBatch), Tenant("web")};
  Harness h(limits, tenants), ref(limits, tenants);
  for (Harness* x : {&h, &ref}) {
    for (int i = 0; i < 4; ++i) {
      ASSERT_TRUE(x->Add(i, "bulk", Priority::kBatch, Tokens(i, 50), 400).status.ok());
    }
  }
  ref.RunUntilIdle();
  for (int i = 0; i < 3; ++i) h.Step();
  std::map<uint64_t, int> preempted;
  h.on_plan = [&](const StepPlan& plan) {
    for (uint64_t id : plan.preempted) ++preempted[id];
  };
  // Interactive requests, one every 20 steps, each 10 tokens long: every one starts at once
  // while a batch sequence below the cap is running.
  int started_at_once = 0;
  for (int k = 0; k < 8; ++k) {
    ASSERT_TRUE(h.Add(100 + k, "web", Priority::kInteractive, Tokens(100 + k, 30), 10).status.ok());
    StepPlan plan = h.Step();
    for (const StepItem& item : plan.items) started_at_once += item.seq_id == 100u + k;
    for (int i = 0; i < 19; ++i) h.Step();
  }
  h.RunUntilIdle();
  // Four batch sequences, each preempted at most once: at least four interactive requests
  // started at once; once every running batch sequence is at the cap, they wait for a slot.
  EXPECT_GE(started_at_once, 4);
  int total = 0;
  for (const auto& [id, n] : preempted) {
    EXPECT_LT(id, 4u);
    EXPECT_LE(n, 1) << "sequence " << id;
    total += n;
  }
  EXPECT_EQ(total, 4);
  EXPECT_EQ(h.sched().Stats().preemptions[PriorityIndex(Priority::kBatch)], 4);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(h.outputs[i], ref.outputs[i]) << "request " << i;
  for (int k = 0; k < 8; ++k) EXPECT_EQ(h.outputs[100 + k].size(), 10u);

  // With the cap at 0 only emergency preempts for a slot (the class waits for a free one).
  limits.max_preemptions_per_request = 0;
  Harness off(limits, tenants);
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(off.Add(i, "bulk", Priority::kBatch, Tokens(i, 50), 400).status.ok());
  }
  for (int i = 0; i < 3; ++i) off.Step();
  ASSERT_TRUE(off.Add(100, "web", Priority::kInteractive, Tokens(100, 30), 10).status.ok());
  EXPECT_TRUE(off.Step().preempted.empty());
  ASSERT_TRUE(off.Add(101, "web", Priority::kEmergency, Tokens(101, 30), 10).status.ok());
  EXPECT_EQ(off.Step().preempted.size(), 1u);
}

TEST(Admission, ErrorsNameTheirLimit) {
  SchedulerLimits limits = TestLimits();
  limits.max_model_len = 4096;
  limits.num_kv_blocks = 32;  // 2048 tokens
  limits.max_waiting = 3;
  TenantPolicy q = Tenant("q");
  q.max_queued = 1;
  TenantPolicy c = Tenant("c");
  c.max_concurrent = 2;
  TenantPolicy r = Tenant("r");
  r.tokens_per_minute = 1000;
  Harness h(limits, {Tenant("a"), q, c, r});
  auto code = [](const AdmitResult& x) { return x.status.code(); };
  auto msg = [](const AdmitResult& x) { return std::string(x.status.message()); };

  AdmitResult x = h.Add(1, "a", Priority::kInteractive, Tokens(1, 4000), 200);
  EXPECT_EQ(code(x), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(msg(x).find("4200"), std::string::npos) << msg(x);
  EXPECT_NE(msg(x).find("4096"), std::string::npos) << msg(x);
  x = h.Add(1, "a", Priority::kInteractive, Tokens(1, 2000), 100);
  EXPECT_EQ(code(x), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(msg(x).find("33 KV blocks"), std::string::npos) << msg(x);
  EXPECT_NE(msg(x).find("32 blocks"), std::string::npos) << msg(x);
  EXPECT_EQ(code(h.Add(1, "a", Priority::kInteractive, {}, 10)),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(code(h.Add(1, "a", Priority::kInteractive, Tokens(1, 5), 0)),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(code(h.Add(1, "a", static_cast<Priority>(7), Tokens(1, 5), 1)),
            absl::StatusCode::kInvalidArgument);
  x = h.Add(1, "nobody", Priority::kInteractive, Tokens(1, 5), 1);
  EXPECT_EQ(code(x), absl::StatusCode::kPermissionDenied);
  EXPECT_NE(msg(x).find("nobody"), std::string::npos);

  // Tenant queue.
  ASSERT_TRUE(h.Add(10, "q", Priority::kInteractive, Tokens(10, 5), 1).status.ok());
  x = h.Add(11, "q", Priority::kInteractive, Tokens(11, 5), 1);
  EXPECT_EQ(code(x), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(msg(x).find("max_queued = 1"), std::string::npos) << msg(x);
  EXPECT_GT(x.retry_after_seconds, 0);
  EXPECT_EQ(code(h.Add(10, "a", Priority::kInteractive, Tokens(10, 5), 1)),
            absl::StatusCode::kAlreadyExists);
  // Tenant concurrency counts running requests too.
  ASSERT_TRUE(h.Add(20, "c", Priority::kInteractive, Tokens(20, 5), 50).status.ok());
  h.Step();  // 10 and 20 run
  ASSERT_TRUE(h.Add(21, "c", Priority::kInteractive, Tokens(21, 5), 50).status.ok());
  x = h.Add(22, "c", Priority::kInteractive, Tokens(22, 5), 50);
  EXPECT_EQ(code(x), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(msg(x).find("max_concurrent = 2"), std::string::npos) << msg(x);
  // Global queue: 21 waits; two more fill max_waiting = 3.
  ASSERT_TRUE(h.Add(30, "a", Priority::kInteractive, Tokens(30, 5), 1).status.ok());
  ASSERT_TRUE(h.Add(31, "a", Priority::kInteractive, Tokens(31, 5), 1).status.ok());
  x = h.Add(32, "a", Priority::kInteractive, Tokens(32, 5), 1);
  EXPECT_EQ(code(x), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(msg(x).find("max_waiting = 3"), std::string::npos) << msg(x);
  EXPECT_GT(x.retry_after_seconds, 0);
  h.RunUntilIdle();

  // Global queued tokens.
  SchedulerLimits tl = TestLimits();
  tl.max_waiting_tokens = 100;
  Harness w(tl, {Tenant("a")});
  ASSERT_TRUE(w.Add(1, "a", Priority::kInteractive, Tokens(1, 60), 1).status.ok());
  x = w.Add(2, "a", Priority::kInteractive, Tokens(2, 50), 1);
  EXPECT_EQ(code(x), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(msg(x).find("max_waiting_tokens = 100"), std::string::npos) << msg(x);
  EXPECT_TRUE(w.Add(3, "a", Priority::kInteractive, Tokens(3, 40), 1).status.ok());
  EXPECT_EQ(code(w.Add(4, "a", Priority::kInteractive, Tokens(4, 101), 1)),
            absl::StatusCode::kInvalidArgument);

  // Token rate: 600 at t=0, 300 at t=10; at t=20 a 200-token request waits for the first.
  h.now = 0;
  ASSERT_TRUE(h.Add(40, "r", Priority::kInteractive, Tokens(40, 500), 100).status.ok());
  h.now = 10;
  ASSERT_TRUE(h.Add(41, "r", Priority::kInteractive, Tokens(41, 200), 100).status.ok());
  h.now = 20;
  x = h.Add(42, "r", Priority::kInteractive, Tokens(42, 100), 100);
  EXPECT_EQ(code(x), absl::StatusCode::kResourceExhausted);
  EXPECT_NEAR(x.retry_after_seconds, 40.0, 1e-9);
  EXPECT_NE(msg(x).find("tokens_per_minute = 1000"), std::string::npos) << msg(x);
  h.now = 60;
  EXPECT_TRUE(h.Add(42, "r", Priority::kInteractive, Tokens(42, 100), 100).status.ok());
  x = h.Add(43, "r", Priority::kInteractive, Tokens(43, 1000), 1);
  EXPECT_EQ(code(x), absl::StatusCode::kInvalidArgument);  // can never fit the budget

  const SchedulerStats st = h.sched().Stats();
  auto rej = [&](RejectReason r) { return st.rejections[static_cast<int>(r)]; };
  EXPECT_EQ(rej(RejectReason::kInvalid), 7);
  EXPECT_EQ(rej(RejectReason::kUnknownTenant), 1);
  EXPECT_EQ(rej(RejectReason::kTenantQueued), 1);
  EXPECT_EQ(rej(RejectReason::kTenantConcurrent), 1);
  EXPECT_EQ(rej(RejectReason::kQueueFull), 1);
  EXPECT_EQ(rej(RejectReason::kTenantRate), 1);
}

TEST(Admission, BadConfigurationIsRefused) {
  SchedulerLimits limits = TestLimits();
  EXPECT_FALSE(Scheduler::Create(limits, {Tenant("a"), Tenant("a")}).ok());
  EXPECT_FALSE(Scheduler::Create(limits, {Tenant("a", 0)}).ok());
  limits.num_kv_blocks = 0;
  EXPECT_FALSE(Scheduler::Create(limits, {Tenant("a")}).ok());
}

TEST(Scheduler, QueueTimeAndDeadlineRejection) {
  SchedulerLimits limits = TestLimits();
  limits.max_running = 1;
  limits.max_queue_seconds = 5;
  Harness h(limits, {Tenant("a")});
  h.dt = 0.5;
  ASSERT_TRUE(h.Add(1, "a", Priority::kInteractive, Tokens(1, 10), 1000).status.ok());
  ASSERT_TRUE(h.Add(2, "a", Priority::kInteractive, Tokens(2, 10), 10).status.ok());
  ASSERT_TRUE(
      h.Add(3, "a", Priority::kInteractive, Tokens(3, 10), 10, /*deadline=*/2.0).status.ok());
  while (!h.rejected.contains(2) && h.now < 10) h.Step();
  ASSERT_TRUE(h.rejected.contains(3));
  EXPECT_EQ(h.rejected[3].code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_NE(h.rejected[3].message().find("2.000 s in the waiting queue"), std::string::npos)
      << h.rejected[3];
  EXPECT_EQ(h.rejected[2].code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(h.rejected[2].message().find("waited 5.500 s"), std::string::npos) << h.rejected[2];
  EXPECT_NE(h.rejected[2].message().find("max_queue_seconds = 5"), std::string::npos);
  EXPECT_TRUE(h.sched().Contains(1));  // running: never times out in the queue

  // A running request past its deadline is rejected and its blocks freed.
  Harness d(TestLimits(), {Tenant("a")});
  ASSERT_TRUE(d.Add(1, "a", Priority::kInteractive, Tokens(1, 100), 1000, 1.0).status.ok());
  while (!d.rejected.contains(1)) d.Step();
  EXPECT_EQ(d.rejected[1].code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(d.sched().Stats().kv_blocks_free + d.sched().Stats().kv_blocks_evictable,
            TestLimits().num_kv_blocks);
  const SchedulerStats st = h.sched().Stats();
  EXPECT_EQ(st.rejections[static_cast<int>(RejectReason::kDeadline)], 1);
  EXPECT_EQ(st.rejections[static_cast<int>(RejectReason::kQueueTimeout)], 1);
}

TEST(PrefixCache, SharedSystemPromptHitsWithIdenticalOutputs) {
  const std::vector<int32_t> system = Tokens(999, 200);
  auto prompt = [&](int i) {
    std::vector<int32_t> p = system;
    auto user = Tokens(i, 30);
    p.insert(p.end(), user.begin(), user.end());
    return p;
  };
  SchedulerLimits off = TestLimits();
  off.prefix_caching = false;
  Harness h(TestLimits(), {Tenant("a")}), ref(off, {Tenant("a")});
  for (Harness* x : {&h, &ref}) {
    ASSERT_TRUE(x->Add(0, "a", Priority::kInteractive, prompt(0), 8).status.ok());
    x->RunUntilIdle();
  }
  std::vector<int64_t> cached;
  h.on_plan = [&](const StepPlan& plan) {
    for (const StepItem& item : plan.items) {
      if (item.admitted) cached.push_back(item.cached_tokens);
    }
  };
  for (Harness* x : {&h, &ref}) {
    for (int i = 1; i <= 8; ++i) {
      ASSERT_TRUE(x->Add(i, "a", Priority::kInteractive, prompt(i), 8).status.ok());
    }
    x->RunUntilIdle();
  }
  ASSERT_EQ(cached.size(), 8u);
  for (int64_t c : cached) EXPECT_EQ(c, 192);  // 3 full blocks of the 200-token system prompt
  for (int i = 0; i <= 8; ++i) EXPECT_EQ(h.outputs[i], ref.outputs[i]) << "request " << i;
  const SchedulerStats st = h.sched().Stats();
  EXPECT_EQ(st.prefix_cache_hits, 8 * 192);
  EXPECT_EQ(st.prefix_cache_queries, 9 * 230);

  // An identical prompt reuses every full block but still computes its last token.
  cached.clear();
  ASSERT_TRUE(h.Add(50, "a", Priority::kInteractive, system.size() > 0 ? prompt(3) : prompt(3), 8)
                  .status.ok());
  h.RunUntilIdle();
  ASSERT_EQ(cached.size(), 1u);
  EXPECT_EQ(cached[0], 192);
  std::vector<int32_t> aligned(system.begin(), system.begin() + 128);
  ASSERT_TRUE(h.Add(51, "a", Priority::kInteractive, aligned, 4).status.ok());
  h.RunUntilIdle();
  EXPECT_EQ(cached[1], 64);  // block-aligned prompt: the last block is recomputed
}

// Cached prefixes are private to a tenant unless sharing is configured: another county's
// identical prompt gets no hit (no timing signal), the same tenant's does.
TEST(PrefixCache, PrefixesArePerTenantUnlessShared) {
  const std::vector<int32_t> prompt = Tokens(4242, 200);
  for (bool shared : {false, true}) {
    SchedulerLimits limits = TestLimits();
    limits.share_prefix_across_tenants = shared;
    Harness h(limits, {Tenant("a"), Tenant("b")});
    std::vector<int64_t> cached;
    h.on_plan = [&](const StepPlan& plan) {
      for (const StepItem& item : plan.items)
        if (item.admitted) cached.push_back(item.cached_tokens);
    };
    ASSERT_TRUE(h.Add(1, "a", Priority::kInteractive, prompt, 4).status.ok());
    h.RunUntilIdle();
    ASSERT_TRUE(h.Add(2, "b", Priority::kInteractive, prompt, 4).status.ok());
    h.RunUntilIdle();
    ASSERT_TRUE(h.Add(3, "a", Priority::kInteractive, prompt, 4).status.ok());
    h.RunUntilIdle();
    ASSERT_EQ(cached.size(), 3u);
    EXPECT_EQ(cached[0], 0);
    EXPECT_EQ(cached[1], shared ? 192 : 0) << "shared=" << shared;
    EXPECT_EQ(cached[2], 192);
    EXPECT_EQ(h.outputs[1], h.outputs[2]);
    EXPECT_TRUE(h.sched().Validate().ok());
  }
}

TEST(PrefixCache, LruEvictionUnderPressure) {
  SchedulerLimits limits = TestLimits();
  limits.num_kv_blocks = 16;
  Harness h(limits, {Tenant("a")});
  std::vector<int64_t> cached;
  h.on_plan = [&](const StepPlan& plan) {
    for (const StepItem& item : plan.items) {
      if (item.admitted) cached.push_back(item.cached_tokens);
    }
  };
  const auto p1 = Tokens(1, 129), p2 = Tokens(2, 129);
  auto run = [&](uint64_t id, const std::vector<int32_t>& p, int64_t max_tokens) {
    EXPECT_TRUE(h.Add(id, "a", Priority::kInteractive, p, max_tokens).status.ok());
    h.RunUntilIdle();
  };
  run(1, p1, 4);
  run(2, p2, 4);
  run(3, p1, 4);  // hit; p1's blocks become the most recently used
  EXPECT_EQ(cached.back(), 128);
  EXPECT_EQ(h.sched().Stats().kv_blocks_cached, 4);
  run(4, Tokens(3, 850), 10);  // 14 blocks: evicts p2's two blocks, keeps p1's
  EXPECT_EQ(h.sched().Stats().kv_blocks_evictable + h.sched().Stats().kv_blocks_free, 16);
  run(5, p1, 4);
  EXPECT_EQ(cached.back(), 128);
  run(6, p2, 4);
  EXPECT_EQ(cached.back(), 0);
}

// Thousands of random adds, cancels and steps on a small pool, with full accounting every step.
TEST(Soak, RandomOperationsKeepPoolAccounting) {
  SchedulerLimits limits = TestLimits();
  limits.num_kv_blocks = 48;
  limits.max_running = 12;
  limits.max_batched_tokens = 192;
  limits.prefill_chunk = 80;
  limits.max_model_len = 1024;
  limits.max_waiting = 64;
  limits.max_queue_seconds = 20;
  TenantPolicy ops = Tenant("ops", 1, Priority::kEmergency);
  TenantPolicy bulk = Tenant("bulk", 0.5, Priority::kBatch);
  bulk.max_concurrent = 30;
  TenantPolicy web = Tenant("web", 2, Priority::kInteractive);
  web.tokens_per_minute = 200000;
  Harness h(limits, {ops, bulk, web});
  h.eos_mod = 61;
  std::mt19937_64 rng(12345);
  const std::vector<std::vector<int32_t>> prefixes = {Tokens(7, 150), Tokens(8, 64),
                                                      Tokens(9, 300)};
  const char* names[] = {"ops", "bulk", "web"};
  uint64_t next_id = 1;
  std::vector<uint64_t> live;
  int accepted = 0, cancels = 0;
  for (int iter = 0; iter < 20000 && !HasFailure(); ++iter) {
    const int op = rng() % 10;
    if (op < 4) {
      std::vector<int32_t> prompt;
      if (rng() % 2) prompt = prefixes[rng() % prefixes.size()];
      auto tail = Tokens(rng(), 1 + rng() % 200);
      prompt.insert(prompt.end(), tail.begin(), tail.end());
      const int t = rng() % 3;
      const double deadline = rng() % 8 == 0 ? h.now + 0.5 + (rng() % 100) * 0.05
                                             : std::numeric_limits<double>::infinity();
      if (h.Add(next_id, names[t], static_cast<Priority>(rng() % 3), prompt, 1 + rng() % 120,
                deadline)
              .status.ok()) {
        live.push_back(next_id);
        ++accepted;
      }
      ++next_id;
    } else if (op == 4 && !live.empty()) {
      const size_t i = rng() % live.size();
      cancels += h.Cancel(live[i]);
      live.erase(live.begin() + i);
    } else {
      h.Step();
    }
    if (iter % 97 == 0) {
      StepPlan a = h.sched().Plan(h.now), b = h.sched().Plan(h.now);
      EXPECT_EQ(a.token_ids, b.token_ids);
      EXPECT_EQ(a.preempted, b.preempted);
    }
  }
  for (uint64_t id : live) h.Cancel(id);
  ASSERT_TRUE(h.sched().Validate().ok()) << h.sched().Validate();
  ASSERT_TRUE(h.idle());
  const SchedulerStats st = h.sched().Stats();
  EXPECT_EQ(st.kv_blocks_free + st.kv_blocks_evictable, limits.num_kv_blocks);
  int64_t preemptions = 0;
  for (auto p : st.preemptions) preemptions += p;
  EXPECT_GT(accepted, 500);
  EXPECT_GT(cancels, 50);
  EXPECT_GT(preemptions, 0);
  EXPECT_GT(st.prefix_cache_hits, 0);
  EXPECT_GT(st.rejections[static_cast<int>(RejectReason::kDeadline)], 0);
  std::printf("soak: %d accepted, %d cancelled, %ld preemptions, %ld steps, %ld hit tokens\n",
              accepted, cancels, static_cast<long>(preemptions), static_cast<long>(h.steps),
              static_cast<long>(st.prefix_cache_hits));
}

// Two tenants of one class, one flooding, with prefix hits, queue timeouts, deadlines and
// cancellations in the same steps as admissions and share preemptions: the plan never holds a
// sequence twice and the accounting holds (Validate every step).
TEST(Soak, FloodWithTimeoutsDeadlinesAndSharePreemption) {
  int64_t preemptions = 0, timeouts = 0;
  for (uint64_t seed = 1; seed <= 40 && !HasFailure(); ++seed) {
    SchedulerLimits limits = TestLimits();
    limits.max_running = 8;
    limits.num_kv_blocks = 64;
    limits.prefill_chunk = 64;
    limits.max_queue_seconds = 0.3;
    Harness h(limits, {Tenant("a"), Tenant("b", 2)});
    h.eos_mod = 23;
    std::mt19937_64 rng(seed);
    uint64_t id = 1;
    for (int it = 0; it < 2000 && !HasFailure(); ++it) {
      const int op = rng() % 10;
      if (op < 4) {
        std::vector<int32_t> p = Tokens(rng() % 3, 64 * static_cast<int64_t>(rng() % 3));
        const auto tail = Tokens(rng(), 1 + rng() % 100);
        p.insert(p.end(), tail.begin(), tail.end());
        const double deadline = rng() % 5 == 0 ? h.now + 0.05 * static_cast<double>(rng() % 20)
                                               : std::numeric_limits<double>::infinity();
        h.Add(id++, rng() % 10 ? "a" : "b", Priority::kInteractive, p, 1 + rng() % 60, deadline);
      } else if (op == 4) {
        h.Cancel(1 + rng() % id);
      } else {
        h.Step();
      }
    }
    const SchedulerStats st = h.sched().Stats();
    preemptions += st.preemptions[PriorityIndex(Priority::kInteractive)];
    timeouts += st.rejections[static_cast<int>(RejectReason::kQueueTimeout)];
  }
  EXPECT_GT(preemptions, 0);
  EXPECT_GT(timeouts, 0);
}

}  // namespace
}  // namespace dsinfer
