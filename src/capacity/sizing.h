// Sizing against latency targets: the smallest replica count whose share of the traffic (split
// evenly, 1/R of every service's rate) meets every class target, and the largest traffic share
// one replica sustains. Both rest on the assumption that latency grows with load; the search
// simulates the neighbours of its answer, so the report shows R meeting and R - 1 missing.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "src/capacity/cost_model.h"
#include "src/capacity/plan_input.h"
#include "src/capacity/simulator.h"

namespace dsinfer::capacity {

struct TargetCheck {
  bool met = true;
  std::vector<std::string> misses;  // "interactive ttft p99 2.41 s > 2 s", ...
};

// Class targets on the p99s of completed requests (a class with arrivals but no completion
// misses), and (rejected + unfinished) / arrived <= max_rejected_fraction.
TargetCheck CheckTargets(const Targets& targets, const SimResult& r);

// Nodes for `replicas` replicas: a replica of g GPUs on nodes of n GPUs takes ceil(g / n) whole
// nodes when g >= n; smaller replicas pack floor(n / g) to a node.
int32_t NodesFor(const Layout& layout, int32_t replicas);

struct SizingResult {
  bool met = false;      // some count <= max_replicas meets the targets
  int32_t replicas = 0;  // the smallest such count (max_replicas when not met)
  int32_t gpus = 0, nodes = 0;
  std::map<int32_t, SimResult> runs;  // every simulated count; runs[replicas] and, when
                                      // replicas > 1, runs[replicas - 1] are always present
  std::map<int32_t, TargetCheck> checks;
};

absl::StatusOr<SizingResult> SizeReplicas(const PlanInput& input, const Deployment& deployment,
                                          const CostModel& cost, int32_t max_replicas = 4096);

struct CapacityResult {
  double max_scale = 0;  // largest rate multiplier one replica sustains within the targets
  SimResult at;          // the simulation at max_scale
};

// Doubling or halving from 1, then bisection on the rate multiplier (relative precision ~2%).
// Doubling stops at 2 million arrivals per simulation; max_scale is then a lower bound.
absl::StatusOr<CapacityResult> MaxSustainableScale(const PlanInput& input,
                                                   const Deployment& deployment,
                                                   const CostModel& cost);

}  // namespace dsinfer::capacity
