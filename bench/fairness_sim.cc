// Issue 13's fairness case (bench/serving_bench.sh part (b), flooder uncapped) replayed on the
// scheduler alone with a simulated clock: the step takes a modelled time (fixed cost + cost per
// sampled row + cost per prompt token), so victim TTFT and throughput depend only on the
// scheduling policy, not on what else the machine runs. Compares the step share on and off.
// Usage: fairness_sim [--seconds S] [--fixed_ms F] [--row_ms R] [--token_ms T] [--seed N]
//                     [--flood_prompt L]
// The defaults model the bundled tiny model on the 2-core CPU (a 1-row step ~16 ms, a 64-row
// step ~75 ms, ~0.3 ms per prompt token). --flood_prompt L: the flooder's prompts are L/2 to L
// tokens (default 64, as the victim's: 32-64). Prints a markdown table.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "src/scheduler/scheduler.h"

namespace dsinfer {
namespace {

struct Model {
  double fixed_ms = 15, row_ms = 0.9, token_ms = 0.3;
};

struct Result {
  std::vector<double> victim_ttft;
  double victim_tps = 0, flooder_tps = 0;
  int64_t flooder_refused = 0;
};

double Pct(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(q * (v.size() - 1) + 0.5))];
}

// victim at `rate` req/s, flooder at flood x rate (0: none); prompts 32-64 (the flooder's
// flood_prompt / 2 to flood_prompt), outputs 32-64.
Result Run(bool step_share, double rate, double flood, double seconds, const Model& m,
           uint64_t seed, int flood_prompt) {
  SchedulerLimits l;  // the serving bench's server 1 (write_config ... 64 256 30)
  l.max_batched_tokens = 1024;
  l.prefill_chunk = 256;
  l.max_running = 64;
  l.max_waiting = 256;
  l.max_queue_seconds = 30;
  l.num_kv_blocks = 1024;
  l.max_model_len = 4096;
  l.step_share = step_share;
  std::vector<TenantPolicy> tenants(2);
  tenants[0].id = "victim";
  tenants[1].id = "flooder";
  for (auto& t : tenants) t.max_queued = 48;
  auto sched = std::move(Scheduler::Create(l, tenants)).value();

  std::mt19937_64 rng(seed);
  struct Arrival {
    double t;
    int tenant;
  };
  std::vector<Arrival> arrivals;
  for (int tenant = 0; tenant < 2; ++tenant) {
    const double r = tenant == 0 ? rate : rate * flood;
    if (r <= 0) continue;
    std::exponential_distribution<double> gap(r);
    for (double t = gap(rng); t < seconds; t += gap(rng)) arrivals.push_back({t, tenant});
  }
  std::sort(arrivals.begin(), arrivals.end(), [](auto& a, auto& b) { return a.t < b.t; });

  std::uniform_int_distribution<int> len(32, 64);
  std::uniform_int_distribution<int> flood_len(flood_prompt / 2, flood_prompt);
  std::map<uint64_t, std::pair<double, int>> live;  // id -> (arrival, tenant)
  Result res;
  int64_t tokens[2] = {0, 0};
  double now = 0;
  size_t next = 0;
  uint64_t id = 1;
  int64_t rows = 0;
  while (next < arrivals.size() || sched->num_running() + sched->num_waiting() > 0) {
    for (; next < arrivals.size() && arrivals[next].t <= now; ++next) {
      NewRequest r;
      r.id = id++;
      r.tenant = tenants[arrivals[next].tenant].id;
      const int prompt = arrivals[next].tenant == 1 ? flood_len(rng) : len(rng);
      r.prompt.assign(prompt, static_cast<int32_t>(r.id % 30000) + 1);
      r.max_tokens = len(rng);
      if (sched->Add(std::move(r), arrivals[next].t).status.ok()) {
        live[id - 1] = {arrivals[next].t, arrivals[next].tenant};
      } else if (arrivals[next].tenant == 1) {
        ++res.flooder_refused;
      }
    }
    StepPlan plan = sched->Plan(now);
    sched->Commit(plan);
    if (plan.items.empty()) {
      if (next >= arrivals.size()) break;
      now = std::max(now, arrivals[next].t);
      continue;
    }
    double ms = m.fixed_ms;
    rows += static_cast<int64_t>(plan.items.size());
    for (const StepItem& item : plan.items) {
      ms += item.sample ? m.row_ms : 0;
      if (!(item.num_tokens == 1 && item.sample)) ms += m.token_ms * item.num_tokens;
    }
    now += ms / 1e3;
    std::vector<std::pair<uint64_t, int32_t>> sampled;
    for (const StepItem& item : plan.items) {
      if (!item.sample) continue;
      sampled.emplace_back(item.seq_id, 7);
      auto it = live.find(item.seq_id);
      if (it == live.end()) continue;
      const int tenant = it->second.second;
      if (now <= seconds) ++tokens[tenant];
      if (tenant == 0 && it->second.first >= 0) {  // the victim's first token: TTFT
        res.victim_ttft.push_back(now - it->second.first);
        it->second.first = -1;
      }
    }
    sched->OnTokens(sampled, {});
  }
  const SchedulerStats st = sched->Stats();
  if (std::getenv("FAIRNESS_SIM_DEBUG")) {
    std::fprintf(stderr, "share %d flood %.0f: steps %lld deferred %lld held %lld rows %lld\n",
                 step_share, flood, (long long)st.steps, (long long)st.deferred_sequences,
                 (long long)st.held_sequences, (long long)rows);
  }
  res.victim_tps = tokens[0] / seconds;
  res.flooder_tps = tokens[1] / seconds;
  return res;
}

}  // namespace
}  // namespace dsinfer

int main(int argc, char** argv) {
  using namespace dsinfer;
  Model m;
  double seconds = 600;
  uint64_t seed = 7;
  int flood_prompt = 64;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string f = argv[i];
    const double v = std::atof(argv[i + 1]);
    if (f == "--seconds") seconds = v;
    else if (f == "--fixed_ms") m.fixed_ms = v;
    else if (f == "--row_ms") m.row_ms = v;
    else if (f == "--token_ms") m.token_ms = v;
    else if (f == "--seed") seed = static_cast<uint64_t>(v);
    else if (f == "--flood_prompt")
      flood_prompt = std::max(2, static_cast<int>(v));
    else {
      std::fprintf(stderr, "unknown flag %s\n", f.c_str());
      return 2;
    }
  }
  const double rate = 2.125;  // the serving bench's victim rate (15% of 680 tok/s / 48)
  std::printf(
      "model: step = %.1f ms + %.2f ms per sampled row + %.2f ms per prompt token; "
      "%.0f s simulated, seed %llu, flooder prompts %d-%d tokens\n\n",
      m.fixed_ms, m.row_ms, m.token_ms, seconds, static_cast<unsigned long long>(seed),
      flood_prompt / 2, flood_prompt);
  std::printf("| step share | victim TTFT p50 / p99 alone (ms) | 10x flooder uncapped | ratio p99 "
              "| flooder / total tok/s |\n|---|---|---|---|---|\n");
  for (bool on : {false, true}) {
    const Result alone = Run(on, rate, 0, seconds, m, seed, flood_prompt);
    const Result flood = Run(on, rate, 10, seconds, m, seed, flood_prompt);
    const double a99 = Pct(alone.victim_ttft, 0.99), f99 = Pct(flood.victim_ttft, 0.99);
    std::printf("| %s | %.0f / %.0f | %.0f / %.0f (n=%zu) | %.2fx | %.0f / %.0f |\n",
                on ? "on" : "off", 1e3 * Pct(alone.victim_ttft, 0.5), 1e3 * a99,
                1e3 * Pct(flood.victim_ttft, 0.5), 1e3 * f99, flood.victim_ttft.size(), f99 / a99,
                flood.flooder_tps, flood.flooder_tps + flood.victim_tps);
  }
  return 0;
}
