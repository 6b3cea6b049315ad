// Cost of the scheduler per step (Plan + Commit + OnTokens) at serving scale, to compare with
// the time of a model step: 256 running sequences, a waiting queue of 1000, requests finishing
// and replaced as they go (so each step has ~256 decodes and a prefill chunk or two).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <memory>
#include <random>
#include <vector>

#include "src/scheduler/scheduler.h"

namespace dsinfer {
namespace {

class SteadyState {
 public:
  SteadyState(int32_t running, int32_t waiting) : running_(running), waiting_(waiting) {
    SchedulerLimits l;
    l.max_running = running;
    l.max_batched_tokens = 2048;
    l.prefill_chunk = 512;
    l.max_waiting = running + waiting + 64;
    l.max_queue_seconds = 1e12;
    l.max_model_len = 8192;
    l.num_kv_blocks = running * 32 + 256;  // ~2000 tokens per running sequence
    std::vector<TenantPolicy> tenants;
    for (const char* id : {"a", "b", "c", "d"}) tenants.push_back({.id = id});
    sched_ = std::move(Scheduler::Create(l, tenants)).value();
    system_.resize(512);
    for (auto& t : system_) t = static_cast<int32_t>(rng_() % 30000);
    Refill();
    for (int i = 0; i < 400; ++i) Step();  // admissions fill the running set, then churn
  }

  // One step; returns the number of tokens scheduled.
  int64_t Step() {
    StepPlan plan = sched_->Plan(now_);
    sched_->Commit(plan);
    sampled_.clear();
    for (const StepItem& item : plan.items) {
      if (item.sample) sampled_.emplace_back(item.seq_id, static_cast<int32_t>(item.seq_id));
    }
    sched_->OnTokens(sampled_, {});
    now_ += 0.02;
    Refill();
    return plan.num_batched_tokens;
  }

  Scheduler& sched() { return *sched_; }

 private:
  // Keeps `waiting_` requests queued and the running set full (Add is timed with the step).
  void Refill() {
    while (sched_->num_waiting() < waiting_ ||
           sched_->num_waiting() + sched_->num_running() < running_ + waiting_) {
      AddOne();
    }
  }
  void AddOne() {
    NewRequest r;
    r.id = next_id_++;
    r.tenant = std::string(1, static_cast<char>('a' + r.id % 4));
    r.priority = Priority::kInteractive;
    r.prompt = system_;
    const int64_t user = 100 + rng_() % 500;
    for (int64_t i = 0; i < user; ++i) r.prompt.push_back(static_cast<int32_t>(rng_() % 30000));
    r.max_tokens = 64 + rng_() % 448;
    sched_->Add(std::move(r), now_);
  }

  std::unique_ptr<Scheduler> sched_;
  std::vector<int32_t> system_;
  std::vector<std::pair<uint64_t, int32_t>> sampled_;
  std::mt19937_64 rng_{42};
  uint64_t next_id_ = 1;
  int32_t running_;
  int32_t waiting_;
  double now_ = 0;
};

void BM_SchedulerStep(benchmark::State& state) {
  SteadyState s(static_cast<int32_t>(state.range(0)), static_cast<int32_t>(state.range(1)));
  int64_t tokens = 0;
  for (auto _ : state) tokens += s.Step();
  state.counters["tokens/step"] = static_cast<double>(tokens) / state.iterations();
  state.counters["running"] = s.sched().num_running();
  state.counters["waiting"] = s.sched().num_waiting();
  const SchedulerStats st = s.sched().Stats();
  state.counters["preempt"] = static_cast<double>(st.preemptions[1]);
}
BENCHMARK(BM_SchedulerStep)
    ->Args({256, 1000})
    ->Args({64, 1000})
    ->Args({256, 0})
    ->Unit(benchmark::kMicrosecond);

void BM_SchedulerPlanOnly(benchmark::State& state) {
  SteadyState s(static_cast<int32_t>(state.range(0)), static_cast<int32_t>(state.range(1)));
  for (auto _ : state) benchmark::DoNotOptimize(s.sched().Plan(1e6));
}
BENCHMARK(BM_SchedulerPlanOnly)->Args({256, 1000})->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace dsinfer

BENCHMARK_MAIN();
