// Replica and capacity searches over simulations (sizing.h).
#include "src/capacity/sizing.h"

#include <cmath>

#include "absl/strings/str_format.h"
#include "src/core/status_macros.h"

namespace dsinfer::capacity {

TargetCheck CheckTargets(const Targets& targets, const SimResult& r) {
  TargetCheck check;
  auto miss = [&](std::string s) {
    check.met = false;
    check.misses.push_back(std::move(s));
  };
  for (int c = 0; c < kNumPriorities; ++c) {
    const ClassTarget& t = targets.classes[c];
    const ClassResult& cr = r.classes[c];
    const std::string name(PriorityName(static_cast<Priority>(c)));
    if (!t.ttft_p99_seconds && !t.tpot_p99_seconds) continue;
    if (cr.arrived > 0 && cr.completed == 0) {
      miss(absl::StrFormat("%s: none of %d requests completed", name, cr.arrived));
      continue;
    }
    if (t.ttft_p99_seconds && cr.ttft.n > 0 && cr.ttft.p99 > *t.ttft_p99_seconds) {
      miss(absl::StrFormat("%s ttft p99 %.3g s > %.3g s", name, cr.ttft.p99, *t.ttft_p99_seconds));
    }
    if (t.tpot_p99_seconds && cr.tpot.n > 0 && cr.tpot.p99 > *t.tpot_p99_seconds) {
      miss(absl::StrFormat("%s tpot p99 %.3g s > %.3g s", name, cr.tpot.p99, *t.tpot_p99_seconds));
    }
  }
  if (r.rejected_fraction > targets.max_rejected_fraction) {
    miss(absl::StrFormat("rejected or unfinished %.4f > %.4f", r.rejected_fraction,
                         targets.max_rejected_fraction));
  }
  return check;
}

int32_t NodesFor(const Layout& layout, int32_t replicas) {
  const int32_t g = layout.gpus(), n = layout.gpus_per_node;
  if (g >= n) return replicas * ((g + n - 1) / n);
  const int32_t per_node = n / g;
  return (replicas + per_node - 1) / per_node;
}

absl::StatusOr<SizingResult> SizeReplicas(const PlanInput& input, const Deployment& deployment,
                                          const CostModel& cost, int32_t max_replicas) {
  SizingResult out;
  auto run = [&](int32_t replicas) -> absl::StatusOr<bool> {
    if (auto it = out.checks.find(replicas); it != out.checks.end()) return it->second.met;
    ASSIGN_OR_RETURN(SimResult r,
                     Simulate(input, deployment, cost, {.rate_scale = 1.0 / replicas}));
    const TargetCheck check = CheckTargets(input.targets, r);
    out.runs.emplace(replicas, std::move(r));
    out.checks.emplace(replicas, check);
    return check.met;
  };
  // Doubling until met, then bisection between the last miss and the first hit.
  int32_t lo = 0, hi = 1;  // lo: largest count known to miss (0: none)
  while (true) {
    ASSIGN_OR_RETURN(bool met, run(hi));
    if (met) break;
    lo = hi;
    if (hi >= max_replicas) {
      out.replicas = max_replicas;
      out.gpus = max_replicas * deployment.layout.gpus();
      out.nodes = NodesFor(deployment.layout, max_replicas);
      return out;
    }
    hi = std::min(max_replicas, hi * 2);
  }
  while (hi - lo > 1) {
    const int32_t mid = lo + (hi - lo) / 2;
    ASSIGN_OR_RETURN(bool met, run(mid));
    (met ? hi : lo) = mid;
  }
  if (hi > 1) RETURN_IF_ERROR(run(hi - 1).status());  // present already; kept for clarity
  out.met = true;
  out.replicas = hi;
  out.gpus = hi * deployment.layout.gpus();
  out.nodes = NodesFor(deployment.layout, hi);
  return out;
}

absl::StatusOr<CapacityResult> MaxSustainableScale(const PlanInput& input,
                                                   const Deployment& deployment,
                                                   const CostModel& cost) {
  std::map<double, SimResult> runs;
  auto met = [&](double scale) -> absl::StatusOr<bool> {
    ASSIGN_OR_RETURN(SimResult r, Simulate(input, deployment, cost, {.rate_scale = scale}));
    const bool ok = CheckTargets(input.targets, r).met;
    runs.emplace(scale, std::move(r));
    return ok;
  };
  double offered = 0;  // arrivals per second at scale 1
  for (const ServiceSpec& svc : input.services) offered += svc.rate;
  const double max_arrivals = 2e6;  // bounds the memory and time of one simulation
  double lo = 0, hi = 0;            // lo meets (0: trivially), hi misses
  double s = 1;
  ASSIGN_OR_RETURN(bool ok, met(s));
  if (ok) {
    lo = s;
    while (2 * s * offered * input.simulation.duration_seconds <= max_arrivals) {
      s *= 2;
      ASSIGN_OR_RETURN(bool m, met(s));
      if (!m) {
        hi = s;
        break;
      }
      lo = s;
    }
    if (hi == 0) return CapacityResult{lo, runs.at(lo)};  // met up to the arrival bound
  } else {
    hi = s;
    for (int i = 0; i < 30 && lo == 0; ++i) {
      s /= 2;
      ASSIGN_OR_RETURN(bool m, met(s));
      (m ? lo : hi) = s;
    }
    if (lo == 0) return CapacityResult{0, runs.at(hi)};
  }
  while (hi / lo > 1.02) {
    const double mid = std::sqrt(lo * hi);
    ASSIGN_OR_RETURN(bool m, met(mid));
    (m ? lo : hi) = mid;
  }
  return CapacityResult{lo, runs.at(lo)};
}

}  // namespace dsinfer::capacity
