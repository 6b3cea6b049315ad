// The planner's output: JSON (stdout of `dsinfer plan`) and a human-readable table (stderr).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"
#include "src/capacity/cost_model.h"
#include "src/capacity/plan_input.h"
#include "src/capacity/simulator.h"
#include "src/capacity/sizing.h"

namespace dsinfer::capacity {

// Everything computed for one deployment.
struct DeploymentReport {
  const Deployment* deployment = nullptr;
  const CostModel* cost = nullptr;  // null when the deployment cannot hold the model
  std::string error;                // why not (weights over GPU memory, ...)
  int32_t replicas = 1;             // the traffic is split evenly over this many
  SimResult result;                 // at `replicas`
  TargetCheck check;
  std::optional<SizingResult> sizing;      // --target
  std::optional<CapacityResult> capacity;  // --target
};

nlohmann::json ToJson(const Percentiles& p);
nlohmann::json ToJson(const SimResult& r);
nlohmann::json ToJson(const PlanInput& input, const DeploymentReport& d);
nlohmann::json ModelJson(const PlanInput& input);

// Fixed-width table: one block per deployment (replicas, GPUs, nodes, throughput, TTFT/TPOT
// p50/p90/p99 per class, rejections, KV headroom).
std::string FormatTable(const PlanInput& input, const std::vector<DeploymentReport>& reports);

}  // namespace dsinfer::capacity
