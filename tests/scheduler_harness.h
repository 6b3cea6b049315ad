// Test driver for the scheduler: a fake executor that keeps a fake KV cache (the token id
// written at each block slot) and samples each sequence's next token as a hash of the KV it
// reads through its block table, so wrong tables, shared-block writes or lost prefixes change
// the output. Every step checks the plan against the test's own record of each sequence.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "src/scheduler/scheduler.h"

namespace dsinfer::testing {

inline SchedulerLimits TestLimits() {
  SchedulerLimits l;
  l.max_batched_tokens = 256;
  l.max_running = 32;
  l.max_waiting = 1024;
  l.max_queue_seconds = 1e9;
  l.prefill_chunk = 64;
  l.num_kv_blocks = 1024;
  l.prefix_caching = true;
  l.max_model_len = 8192;
  return l;
}

inline TenantPolicy Tenant(std::string id, double weight = 1.0,
                           Priority max_priority = Priority::kEmergency) {
  TenantPolicy t;
  t.id = std::move(id);
  t.weight = weight;
  t.max_priority = max_priority;
  return t;
}

// Deterministic pseudo-random tokens.
inline std::vector<int32_t> Tokens(uint64_t seed, int64_t n) {
  std::vector<int32_t> out(n);
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (auto& t : out) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 29;
    t = static_cast<int32_t>(x % 30000) + 1;
  }
  return out;
}

class Harness {
 public:
  Harness(const SchedulerLimits& limits, std::vector<TenantPolicy> tenants) : limits_(limits) {
    auto s = Scheduler::Create(limits, std::move(tenants));
    EXPECT_TRUE(s.ok()) << s.status();
    sched_ = std::move(s).value();
    kv_.assign(static_cast<size_t>(limits.num_kv_blocks) * kKvBlockSize, -1);
  }

  Scheduler& sched() { return *sched_; }

  AdmitResult Add(uint64_t id, const std::string& tenant, Priority priority,
                  std::vector<int32_t> prompt, int64_t max_tokens,
                  double deadline = std::numeric_limits<double>::infinity()) {
    NewRequest r;
    r.id = id;
    r.tenant = tenant;
    r.priority = priority;
    r.prompt = prompt;
    r.max_tokens = max_tokens;
    r.deadline = deadline;
    AdmitResult res = sched_->Add(std::move(r), now);
    if (res.status.ok()) {
      expected_[id] = std::move(prompt);
      prompt_len_[id] = static_cast<int64_t>(expected_[id].size());
      tenant_of_[id] = tenant;
      computed_[id].assign(prompt_len_[id] + max_tokens, 0);
      outputs[id];
    }
    return res;
  }

  bool Cancel(uint64_t id) {
    expected_.erase(id);
    return sched_->Cancel(id);
  }

  bool done(uint64_t id) const { return !sched_->Contains(id); }
  int64_t prompt_len(uint64_t id) const { return prompt_len_.at(id); }
  bool idle() const { return sched_->num_waiting() == 0 && sched_->num_running() == 0; }

  // Plan, check, commit, execute, OnTokens. Returns the committed plan.
  StepPlan Step() {
    StepPlan plan = sched_->Plan(now);
    CheckPlan(plan);
    if (on_plan) on_plan(plan);
    sched_->Commit(plan);
    for (const Rejection& r : plan.rejected) {
      rejected[r.seq_id] = r.status;
      expected_.erase(r.seq_id);
    }
    EXPECT_LE(sched_->num_running(), limits_.max_running);
    std::vector<std::pair<uint64_t, int32_t>> sampled;
    std::vector<uint64_t> finished;
    for (const StepItem& item : plan.items) Execute(plan, item, &sampled, &finished);
    sched_->OnTokens(sampled, finished);
    for (const StepItem& item : plan.items) {
      if (!expected_.contains(item.seq_id) || !sched_->Contains(item.seq_id)) {
        expected_.erase(item.seq_id);
      }
    }
    if (validate_every_step) {
      absl::Status st = sched_->Validate();
      EXPECT_TRUE(st.ok()) << st << " at step " << steps;
    }
    ++steps;
    now += dt;
    return plan;
  }

  // Steps until nothing waits or runs (or max_steps); returns the steps taken.
  int64_t RunUntilIdle(int64_t max_steps = 100000) {
    int64_t n = 0;
    while (!idle() && n < max_steps && !::testing::Test::HasFailure()) {
      Step();
      ++n;
    }
    EXPECT_TRUE(idle()) << "not idle after " << n << " steps";
    return n;
  }

  std::map<uint64_t, std::vector<int32_t>> outputs;  // generated tokens, kept after the end
  std::map<uint64_t, absl::Status> rejected;
  std::map<std::string, double> service;               // input + 2 x output tokens, per tenant
  std::map<uint64_t, std::vector<int32_t>> computed_;  // times each position was computed
  std::function<void(const StepPlan&)> on_plan;
  int32_t eos_mod = 0;  // a sampled token t with t % eos_mod == 0 ends the sequence
  bool validate_every_step = true;
  double now = 0;
  double dt = 0.01;
  int64_t steps = 0;

 private:
  void CheckPlan(const StepPlan& plan) {
    EXPECT_LE(plan.num_batched_tokens, limits_.max_batched_tokens);
    int64_t sum = 0;
    absl::flat_hash_set<uint64_t> ids;
    for (const StepItem& item : plan.items) {
      sum += item.num_tokens;
      EXPECT_TRUE(ids.insert(item.seq_id).second) << "sequence twice in one step";
      EXPECT_GE(item.num_tokens, 1);
      EXPECT_LE(item.num_tokens, limits_.prefill_chunk);
      auto it = expected_.find(item.seq_id);
      if (it == expected_.end()) {
        ADD_FAILURE() << "plan schedules unknown sequence " << item.seq_id;
        continue;
      }
      const auto& want = it->second;
      EXPECT_EQ(item.sample, item.start_pos + item.num_tokens == static_cast<int64_t>(want.size()));
      auto got = plan.tokens(item);
      ASSERT_LE(item.start_pos + item.num_tokens, static_cast<int64_t>(want.size()));
      EXPECT_TRUE(std::equal(got.begin(), got.end(), want.begin() + item.start_pos))
          << "input tokens of " << item.seq_id;
    }
    EXPECT_EQ(sum, plan.num_batched_tokens);
  }

  void Execute(const StepPlan& plan, const StepItem& item,
               std::vector<std::pair<uint64_t, int32_t>>* sampled,
               std::vector<uint64_t>* finished) {
    const uint64_t id = item.seq_id;
    const std::vector<int32_t>& want = expected_[id];
    auto table = plan.block_table(item);
    const int64_t end = item.start_pos + item.num_tokens;
    ASSERT_EQ(static_cast<int64_t>(table.size()), BlocksForTokens(end));
    auto slot = [&](int64_t pos) -> int32_t& {
      return kv_[table[pos / kKvBlockSize] * kKvBlockSize + pos % kKvBlockSize];
    };
    for (int64_t p = 0; p < item.start_pos; ++p) {
      if (slot(p) != want[p]) {
        ADD_FAILURE() << "sequence " << id << " reads a wrong KV entry at position " << p;
        return;
      }
    }
    for (int64_t p = item.start_pos; p < end; ++p) {
      const int32_t block = table[p / kKvBlockSize];
      if (sched_->block_pool().ref_count(block) != 1) {
        ADD_FAILURE() << "sequence " << id << " writes shared block " << block;
        return;
      }
      slot(p) = want[p];
      if (p < static_cast<int64_t>(computed_[id].size())) ++computed_[id][p];
      if (p < prompt_len_[id]) service[tenant_of_[id]] += 1;
    }
    if (!item.sample) return;
    uint64_t h = 1469598103934665603ull;
    for (int64_t p = 0; p < end; ++p) h = (h ^ static_cast<uint32_t>(slot(p))) * 1099511628211ull;
    const int32_t token = static_cast<int32_t>(h % 30000) + 1;
    sampled->emplace_back(id, token);
    expected_[id].push_back(token);
    outputs[id].push_back(token);
    service[tenant_of_[id]] += 2;
    if (eos_mod > 0 && token % eos_mod == 0) finished->push_back(id);
  }

  SchedulerLimits limits_;
  std::unique_ptr<Scheduler> sched_;
  std::vector<int32_t> kv_;
  std::map<uint64_t, std::vector<int32_t>> expected_;  // prompt + generated of live sequences
  std::map<uint64_t, int64_t> prompt_len_;
  std::map<uint64_t, std::string> tenant_of_;
};

}  // namespace dsinfer::testing
