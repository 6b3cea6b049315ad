// The replica simulation: arrivals -> Scheduler::Add; per step Plan/Commit, clock += cost model,
// OnTokens. Follows the engine's step protocol (src/engine/engine.cc), not its code.
#include "src/capacity/simulator.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <random>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "src/core/status_macros.h"
#include "src/scheduler/scheduler.h"

namespace dsinfer::capacity {
namespace {

constexpr double kIdleWaitSeconds = 0.005;  // the engine's wait when nothing can run

double Quantile(const std::vector<double>& v, double q) {
  if (v.empty()) return 0;
  const double pos = q * static_cast<double>(v.size() - 1);
  const auto i = static_cast<size_t>(pos);
  if (i + 1 >= v.size()) return v.back();
  return v[i] + (pos - static_cast<double>(i)) * (v[i + 1] - v[i]);
}

struct Arrival {
  double time = 0;
  int32_t service = 0;
  Priority priority = Priority::kInteractive;
  int64_t prompt_tokens = 0;
  int64_t output_tokens = 0;
};

// Per-service Poisson processes (one RNG stream each, so services do not perturb each other),
// merged in time order. Lengths and classes are drawn at arrival.
std::vector<Arrival> MakeArrivals(const PlanInput& in, double scale) {
  std::vector<Arrival> all;
  for (size_t s = 0; s < in.services.size(); ++s) {
    const ServiceSpec& svc = in.services[s];
    const double rate = svc.rate * scale;
    if (rate <= 0) continue;
    std::mt19937_64 rng(in.simulation.seed * 1000003ULL + s);
    std::exponential_distribution<double> gap(rate);
    std::vector<double> weights;
    for (const auto& [p, w] : svc.priority_mix) weights.push_back(w);
    std::discrete_distribution<size_t> mix(weights.begin(), weights.end());
    for (double t = gap(rng); t < in.simulation.duration_seconds; t += gap(rng)) {
      Arrival a;
      a.time = t;
      a.service = static_cast<int32_t>(s);
      a.priority = svc.priority_mix[mix(rng)].first;
      a.prompt_tokens = svc.prompt_tokens.Sample(rng);
      a.output_tokens = svc.output_tokens.Sample(rng);
      all.push_back(a);
    }
  }
  std::stable_sort(all.begin(), all.end(),
                   [](const Arrival& a, const Arrival& b) { return a.time < b.time; });
  return all;
}

// One live request, as the client would time it.
struct Live {
  double arrival = 0;
  int cls = 0;  // effective class index
  int64_t output_tokens = 0;
  int64_t generated = 0;
  double admitted = -1, first = -1, last = -1;
  bool measured = false;  // arrived inside the window
};

struct Samples {
  std::vector<double> ttft, tpot, e2e, queue;
};

}  // namespace

Percentiles Percentiles::Of(std::vector<double> v) {
  Percentiles p;
  if (v.empty()) return p;
  std::sort(v.begin(), v.end());
  double sum = 0;
  for (double x : v) sum += x;
  p.n = static_cast<int64_t>(v.size());
  p.mean = sum / static_cast<double>(v.size());
  p.p50 = Quantile(v, 0.50);
  p.p90 = Quantile(v, 0.90);
  p.p99 = Quantile(v, 0.99);
  p.max = v.back();
  return p;
}

absl::StatusOr<SimResult> Simulate(const PlanInput& in, const Deployment& deployment,
                                   const CostModel& cost, const SimOptions& options) {
  SchedulerLimits limits = deployment.limits;
  limits.num_kv_blocks = cost.num_kv_blocks();
  if (limits.max_model_len <= 0) limits.max_model_len = in.model.max_position_embeddings;
  std::vector<TenantPolicy> tenants;
  for (const ServiceSpec& s : in.services) tenants.push_back(s.policy);
  ASSIGN_OR_RETURN(std::unique_ptr<Scheduler> sched, Scheduler::Create(limits, tenants));

  const SimulationSpec& sim = in.simulation;
  const double w0 = sim.warmup_seconds, w1 = sim.duration_seconds;
  const double stop = w1 + sim.drain_seconds;
  const std::vector<Arrival> arrivals = MakeArrivals(in, options.rate_scale);

  SimResult r;
  r.rate_scale = options.rate_scale;
  r.window_seconds = w1 - w0;
  r.kv_blocks_total = limits.num_kv_blocks;
  std::array<Samples, kNumPriorities> samples;
  absl::flat_hash_map<uint64_t, Live> live;
  uint64_t next_id = 1;
  // Token ids: the shared prefix of input entry g (all its `count` services) is
  // [2 + g * 2^16, ...) (parsing bounds it to 2^16 tokens and 4096 entries); every other prompt
  // token is a fresh id from kUniqueBase on, so only shared prefixes hit the prefix cache (across
  // the services of an entry only with scheduler.share_prefix_across_tenants).
  constexpr int32_t kUniqueBase = 1 << 28;
  int32_t next_token = kUniqueBase;
  int64_t window_tokens = 0, window_prompt = 0, window_done = 0, window_steps = 0;
  double window_step_seconds = 0, window_seqs = 0, busy = 0, kv_area = 0;

  auto in_window = [&](double t) { return t >= w0 && t <= w1; };
  auto reject = [&](int cls, bool measured) {
    if (measured) ++r.classes[cls].rejected;
  };

  size_t next = 0;
  double now = 0;
  std::vector<std::pair<uint64_t, int32_t>> sampled;
  std::vector<uint64_t> finished;
  while (true) {
    // Requests that arrived during the last step are added before the next one (engine order).
    for (; next < arrivals.size() && arrivals[next].time <= now; ++next) {
      const Arrival& a = arrivals[next];
      const ServiceSpec& svc = in.services[a.service];
      const int cls = std::max(PriorityIndex(a.priority), PriorityIndex(svc.policy.max_priority));
      const bool measured = a.time >= w0 && a.time < w1;
      if (measured) ++r.classes[cls].arrived;
      NewRequest req;
      req.id = next_id++;
      req.tenant = svc.name;
      req.priority = a.priority;
      req.max_tokens = a.output_tokens;
      req.prompt.resize(a.prompt_tokens);
      const int64_t shared = std::min(svc.shared_prefix_tokens, a.prompt_tokens - 1);
      for (int64_t i = 0; i < a.prompt_tokens; ++i) {
        req.prompt[i] =
            i < shared ? static_cast<int32_t>(2 + svc.prefix_group * 65536 + i) : next_token++;
        if (next_token == std::numeric_limits<int32_t>::max()) next_token = kUniqueBase;
      }
      const AdmitResult admit = sched->Add(std::move(req), now);
      if (!admit.status.ok()) {
        reject(cls, measured);
        continue;
      }
      live.emplace(next_id - 1, Live{.arrival = a.time,
                                     .cls = cls,
                                     .output_tokens = a.output_tokens,
                                     .measured = measured});
    }
    if (sched->num_waiting() == 0 && sched->num_running() == 0) {
      if (next == arrivals.size()) break;
      now = arrivals[next].time;  // idle until the next arrival
      continue;
    }
    if (now > stop) break;

    StepPlan plan = sched->Plan(now);
    sched->Commit(plan);
    for (const Rejection& rej : plan.rejected) {
      auto it = live.find(rej.seq_id);
      if (it == live.end()) continue;
      reject(it->second.cls, it->second.measured);
      live.erase(it);
    }
    if (plan.items.empty()) {
      const double wake = next < arrivals.size() ? arrivals[next].time : now + kIdleWaitSeconds;
      now = std::min(std::max(wake, now), now + kIdleWaitSeconds);
      continue;
    }

    const StepShape shape = ShapeOf(plan);
    const double dt = std::max(cost.StepSeconds(shape), 1e-9);
    const double t0 = now;
    now += dt;
    ++r.steps;
    const double overlap = std::max(0.0, std::min(now, w1) - std::max(t0, w0));
    busy += overlap;
    if (t0 >= w0 && t0 < w1) {
      ++window_steps;
      window_step_seconds += dt;
      window_seqs += static_cast<double>(shape.sequences);
      window_prompt += shape.prefill_tokens;
    }
    if (t0 >= w0) {
      const SchedulerStats st = sched->Stats();
      const int32_t held = st.kv_blocks_used - st.kv_blocks_evictable;
      r.kv_blocks_peak = std::max(r.kv_blocks_peak, held);
      kv_area += overlap * held;
    }

    sampled.clear();
    finished.clear();
    for (const StepItem& item : plan.items) {
      auto it = live.find(item.seq_id);
      if (it == live.end()) continue;
      Live& l = it->second;
      if (item.admitted && l.admitted < 0) l.admitted = t0;
      if (!item.sample) continue;
      ++l.generated;
      if (in_window(now)) ++window_tokens;
      if (l.first < 0) l.first = now;
      l.last = now;
      sampled.push_back({item.seq_id, 1});
      if (l.generated >= l.output_tokens) finished.push_back(item.seq_id);
    }
    sched->OnTokens(sampled, finished);
    for (uint64_t id : finished) {
      auto it = live.find(id);
      const Live& l = it->second;
      if (in_window(now)) ++window_done;
      if (l.measured) {
        ClassResult& c = r.classes[l.cls];
        Samples& s = samples[l.cls];
        ++c.completed;
        s.ttft.push_back(l.first - l.arrival);
        s.e2e.push_back(l.last - l.arrival);
        s.queue.push_back(l.admitted - l.arrival);
        if (l.generated > 1) {
          s.tpot.push_back((l.last - l.first) / static_cast<double>(l.generated - 1));
        }
      }
      live.erase(it);
    }
  }
  for (const auto& [id, l] : live) {
    if (l.measured) ++r.classes[l.cls].unfinished;
  }

  const SchedulerStats st = sched->Stats();
  for (int64_t p : st.preemptions) r.preemptions += p;
  r.prefix_hit_tokens = st.prefix_cache_hits;
  r.simulated_until = now;
  const double window = r.window_seconds;
  r.offered_requests_per_s = 0;
  for (const Arrival& a : arrivals) r.offered_requests_per_s += (a.time >= w0 && a.time < w1);
  r.offered_requests_per_s /= window;
  r.output_tokens_per_s = static_cast<double>(window_tokens) / window;
  r.prompt_tokens_per_s = static_cast<double>(window_prompt) / window;
  r.requests_per_s = static_cast<double>(window_done) / window;
  r.busy_fraction = busy / window;
  r.kv_peak_fraction = static_cast<double>(r.kv_blocks_peak) / r.kv_blocks_total;
  r.kv_mean_fraction = kv_area / window / r.kv_blocks_total;
  if (window_steps > 0) {
    r.mean_step_seconds = window_step_seconds / static_cast<double>(window_steps);
    r.mean_batch_sequences = window_seqs / static_cast<double>(window_steps);
  }
  Samples all;
  for (int c = 0; c < kNumPriorities; ++c) {
    ClassResult& cr = r.classes[c];
    Samples& s = samples[c];
    cr.ttft = Percentiles::Of(s.ttft);
    cr.tpot = Percentiles::Of(s.tpot);
    cr.e2e = Percentiles::Of(s.e2e);
    cr.queue = Percentiles::Of(s.queue);
    r.total.arrived += cr.arrived;
    r.total.completed += cr.completed;
    r.total.rejected += cr.rejected;
    r.total.unfinished += cr.unfinished;
    all.ttft.insert(all.ttft.end(), s.ttft.begin(), s.ttft.end());
    all.tpot.insert(all.tpot.end(), s.tpot.begin(), s.tpot.end());
    all.e2e.insert(all.e2e.end(), s.e2e.begin(), s.e2e.end());
    all.queue.insert(all.queue.end(), s.queue.begin(), s.queue.end());
  }
  r.total.ttft = Percentiles::Of(std::move(all.ttft));
  r.total.tpot = Percentiles::Of(std::move(all.tpot));
  r.total.e2e = Percentiles::Of(std::move(all.e2e));
  r.total.queue = Percentiles::Of(std::move(all.queue));
  r.rejected_fraction =
      r.total.arrived > 0
          ? static_cast<double>(r.total.rejected + r.total.unfinished) / r.total.arrived
          : 0;
  return r;
}

}  // namespace dsinfer::capacity
