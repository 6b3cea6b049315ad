// Discrete-event simulation of one replica: Poisson arrivals of every service drive the real
// continuous-batching Scheduler (src/scheduler/) on a virtual clock whose steps last what the
// cost model says. Same protocol as the engine loop (src/engine/engine.cc): Add between steps,
// then Plan(now), Commit, run (here: advance the clock), OnTokens with one token per sampling
// item, finishing a request at its drawn output length.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "src/capacity/cost_model.h"
#include "src/capacity/plan_input.h"

namespace dsinfer::capacity {

// Order statistics of one latency (seconds); linear interpolation as dsinfer-loadgen reports.
struct Percentiles {
  int64_t n = 0;
  double mean = 0, p50 = 0, p90 = 0, p99 = 0, max = 0;
  static Percentiles Of(std::vector<double> v);
};

struct ClassResult {
  int64_t arrived = 0;                 // requests that arrived in the measurement window
  int64_t completed = 0;               // of those, finished
  int64_t rejected = 0;                // turned away (at Add or from the queue)
  int64_t unfinished = 0;              // still live when the simulation stopped (after drain)
  Percentiles ttft, tpot, e2e, queue;  // over the completed ones; tpot needs >= 2 tokens
};

struct SimResult {
  double rate_scale = 1;              // traffic share this replica got (1 / replicas)
  double offered_requests_per_s = 0;  // arrivals per second of the share
  double window_seconds = 0;          // [warmup, duration]
  // Throughput inside the window: tokens sampled and requests finished per second.
  double output_tokens_per_s = 0;
  double prompt_tokens_per_s = 0;  // computed prompt tokens (prefix hits excluded)
  double requests_per_s = 0;
  std::array<ClassResult, kNumPriorities> classes;  // by effective class
  ClassResult total;
  double rejected_fraction = 0;  // (rejected + unfinished) / arrived, window requests
  // KV: blocks held by running sequences (cached-but-evictable ones excluded) at the peak.
  int32_t kv_blocks_total = 0;
  int32_t kv_blocks_peak = 0;
  double kv_peak_fraction = 0;
  double kv_mean_fraction = 0;  // time-weighted over the window
  int64_t steps = 0;
  double mean_step_seconds = 0;     // window steps
  double mean_batch_sequences = 0;  // window steps
  double busy_fraction = 0;         // share of the window spent in steps
  int64_t preemptions = 0;
  int64_t prefix_hit_tokens = 0;
  double simulated_until = 0;  // virtual seconds when the run stopped
};

struct SimOptions {
  double rate_scale = 1.0;  // multiplies every service's rate (1/replicas splits traffic)
};

// Simulates `input`'s traffic on one replica of `deployment` with `cost`. Deterministic for a
// given seed. Fails only if the scheduler rejects the configuration.
absl::StatusOr<SimResult> Simulate(const PlanInput& input, const Deployment& deployment,
                                   const CostModel& cost, const SimOptions& options = {});

}  // namespace dsinfer::capacity
