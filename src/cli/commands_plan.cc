// plan subcommand: the capacity planner (src/capacity/). Simulates the traffic mix of the input
// on each deployment and prints the report as JSON; --target also searches the replica count.
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "src/capacity/cost_model.h"
#include "src/capacity/plan_input.h"
#include "src/capacity/report.h"
#include "src/capacity/simulator.h"
#include "src/capacity/sizing.h"
#include "src/cli/args.h"
#include "src/cli/commands.h"
#include "src/core/status_macros.h"

namespace dsinfer::cli {

absl::Status RunPlan(int argc, char** argv) {
  using namespace dsinfer::capacity;
  ASSIGN_OR_RETURN(Args args,
                   Args::Parse(argc, argv, 2, {"input", "deployment", "replicas", "scale"},
                               {"target", "table"}));
  ASSIGN_OR_RETURN(std::string path, args.Required("input"));
  ASSIGN_OR_RETURN(int64_t replicas, args.Int("replicas", 1));
  ASSIGN_OR_RETURN(double scale, args.Float("scale", 1.0));
  const bool target = args.Has("target");
  if (!(scale > 0) || scale > 1e6) return absl::InvalidArgumentError("--scale must be > 0");
  if (replicas < 1 || replicas > 100000) {
    return absl::InvalidArgumentError("--replicas must be in [1, 100000]");
  }
  if (target && args.Has("replicas")) {
    return absl::InvalidArgumentError("give --replicas N or --target, not both");
  }
  ASSIGN_OR_RETURN(PlanInput input, LoadPlanInput(path));
  for (ServiceSpec& s : input.services) s.rate *= scale;  // --scale: traffic growth
  if (target && !input.targets.any()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path,
                     ": --target needs targets.<class>.ttft_p99_seconds or "
                     "tpot_p99_seconds"));
  }
  const std::optional<std::string> only = args.Get("deployment");

  std::vector<const Deployment*> chosen;
  for (const Deployment& d : input.deployments) {
    if (!only || d.name == *only) chosen.push_back(&d);
  }
  if (chosen.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--deployment ", *only, ": no such deployment in ", path));
  }
  // CostModel objects must outlive the reports that point at them.
  std::vector<CostModel> costs;
  costs.reserve(chosen.size());
  std::vector<DeploymentReport> reports;
  for (const Deployment* d : chosen) {
    absl::StatusOr<CostModel> cost = CostModel::Create(input.model, input.precision, *d);
    if (!cost.ok()) {
      // A layout that cannot hold the model is a result, not an input error.
      if (cost.status().code() != absl::StatusCode::kResourceExhausted) return cost.status();
      DeploymentReport failed;
      failed.deployment = d;
      failed.error = std::string(cost.status().message());
      reports.push_back(std::move(failed));
      continue;
    }
    costs.push_back(*std::move(cost));
    DeploymentReport rep;
    rep.deployment = d;
    rep.cost = &costs.back();
    if (target) {
      ASSIGN_OR_RETURN(SizingResult sizing, SizeReplicas(input, *d, costs.back()));
      ASSIGN_OR_RETURN(CapacityResult capacity, MaxSustainableScale(input, *d, costs.back()));
      rep.replicas = sizing.replicas;
      rep.result = sizing.runs.at(sizing.replicas);
      rep.sizing = std::move(sizing);
      rep.capacity = std::move(capacity);
    } else {
      rep.replicas = static_cast<int32_t>(replicas);
      ASSIGN_OR_RETURN(rep.result, Simulate(input, *d, costs.back(),
                                            {.rate_scale = 1.0 / static_cast<double>(replicas)}));
    }
    rep.check = CheckTargets(input.targets, rep.result);
    reports.push_back(std::move(rep));
  }

  double offered = 0;
  for (const ServiceSpec& s : input.services) offered += s.rate;
  nlohmann::json out = {{"input", path},
                        {"model", ModelJson(input)},
                        {"services", input.services.size()},
                        {"offered_requests_per_s", offered},
                        {"simulation",
                         {{"duration_s", input.simulation.duration_seconds},
                          {"warmup_s", input.simulation.warmup_seconds},
                          {"seed", input.simulation.seed}}},
                        {"deployments", nlohmann::json::array()}};
  for (const DeploymentReport& r : reports) out["deployments"].push_back(ToJson(input, r));
  std::cout << out.dump(2) << "\n";
  if (args.Has("table")) std::cerr << FormatTable(input, reports);
  return absl::OkStatus();
}

}  // namespace dsinfer::cli
