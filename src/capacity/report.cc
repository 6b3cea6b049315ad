// JSON and table output of the capacity planner.
#include "src/capacity/report.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "src/kv_cache/block_pool.h"

namespace dsinfer::capacity {

using nlohmann::json;

json ToJson(const Percentiles& p) {
  return {{"n", p.n},     {"mean", p.mean}, {"p50", p.p50},
          {"p90", p.p90}, {"p99", p.p99},   {"max", p.max}};
}

namespace {

json ClassJson(const ClassResult& c) {
  return {{"arrived", c.arrived},       {"completed", c.completed},  {"rejected", c.rejected},
          {"unfinished", c.unfinished}, {"ttft_s", ToJson(c.ttft)},  {"tpot_s", ToJson(c.tpot)},
          {"e2e_s", ToJson(c.e2e)},     {"queue_s", ToJson(c.queue)}};
}

json StepJson(const CostModel& cost, const StepShape& s) {
  const StepBreakdown b = cost.Breakdown(s);
  return {{"prefill_tokens", s.prefill_tokens},
          {"decode_sequences", s.decode_sequences},
          {"decode_context", s.decode_context},
          {"seconds", b.total},
          {"weights_s", b.weights},
          {"compute_s", b.compute},
          {"kv_s", b.kv},
          {"comm_s", b.comm},
          {"overhead_s", b.overhead}};
}

// A decode step of `n` sequences with `ctx` tokens of context each.
StepShape Decode(int64_t n, int64_t ctx) {
  return {.decode_sequences = n, .decode_context = n * ctx, .sequences = n};
}

std::string Ms(double s) { return absl::StrFormat("%.0f", s * 1e3); }

}  // namespace

json ToJson(const SimResult& r) {
  json classes = json::object();
  for (int c = 0; c < kNumPriorities; ++c) {
    if (r.classes[c].arrived == 0) continue;
    classes[std::string(PriorityName(static_cast<Priority>(c)))] = ClassJson(r.classes[c]);
  }
  return {{"traffic_share", r.rate_scale},
          {"offered_requests_per_s", r.offered_requests_per_s},
          {"window_s", r.window_seconds},
          {"output_tokens_per_s", r.output_tokens_per_s},
          {"prompt_tokens_per_s", r.prompt_tokens_per_s},
          {"requests_per_s", r.requests_per_s},
          {"rejected_fraction", r.rejected_fraction},
          {"classes", classes},
          {"total", ClassJson(r.total)},
          {"kv",
           {{"blocks", r.kv_blocks_total},
            {"peak_blocks", r.kv_blocks_peak},
            {"peak_fraction", r.kv_peak_fraction},
            {"mean_fraction", r.kv_mean_fraction},
            {"headroom_fraction", 1 - r.kv_peak_fraction}}},
          {"steps", r.steps},
          {"mean_step_s", r.mean_step_seconds},
          {"mean_batch_sequences", r.mean_batch_sequences},
          {"busy_fraction", r.busy_fraction},
          {"preemptions", r.preemptions},
          {"prefix_hit_tokens", r.prefix_hit_tokens},
          {"simulated_until_s", r.simulated_until}};
}

json ModelJson(const PlanInput& in) {
  const ModelFootprint f = FootprintOf(in.model);
  return {{"source", in.model_source},
          {"model_type", in.model.model_type},
          {"params_b", f.TotalParams() / 1e9},
          {"active_params_per_token_b", (f.ActiveParamsPerToken() + f.lm_head_params) / 1e9},
          {"kv_bytes_per_token", f.KvBytesPerToken(in.precision.kv_bytes)},
          {"weight_bytes_per_param", in.precision.weight_bytes}};
}

json ToJson(const PlanInput& in, const DeploymentReport& d) {
  const Deployment& dep = *d.deployment;
  const Layout& l = dep.layout;
  if (d.cost == nullptr) {
    json j = {{"name", dep.name},
              {"layout",
               {{"tp", l.tp},
                {"ep", l.ep},
                {"dp", l.dp()},
                {"gpus", l.gpus()},
                {"gpus_per_node", l.gpus_per_node}}},
              {"error", d.error}};
    if (dep.gpu) j["gpu"] = dep.gpu->name;
    return j;
  }
  const CostModel& cost = *d.cost;
  json j = {{"name", dep.name},
            {"cost_model", cost.measured() ? "measured" : "analytic"},
            {"layout",
             {{"tp", l.tp},
              {"ep", l.ep},
              {"dp", l.dp()},
              {"gpus", l.gpus()},
              {"gpus_per_node", l.gpus_per_node}}},
            {"weights_gb_per_gpu", cost.weight_bytes_per_gpu() / 1e9},
            {"kv_blocks", cost.num_kv_blocks()},
            {"kv_tokens", static_cast<int64_t>(cost.num_kv_blocks()) * kKvBlockSize},
            {"scheduler",
             {{"max_batched_tokens", dep.limits.max_batched_tokens},
              {"max_running", dep.limits.max_running},
              {"max_waiting", dep.limits.max_waiting},
              {"max_queue_seconds", dep.limits.max_queue_seconds},
              {"prefill_chunk", dep.limits.prefill_chunk},
              {"prefix_caching", dep.limits.prefix_caching},
              {"share_prefix_across_tenants", dep.limits.share_prefix_across_tenants}}},
            {"step_examples",
             {{"decode_1x1k", StepJson(cost, Decode(1, 1024))},
              {"decode_64x2k", StepJson(cost, Decode(64, 2048))},
              {"decode_256x2k", StepJson(cost, Decode(256, 2048))},
              {"prefill_2k", StepJson(cost, {.prefill_tokens = 2048,
                                             .prefill_context = 2048 * 2049 / 2,
                                             .sequences = 1})}}},
            {"replicas", d.replicas},
            {"gpus", d.replicas * l.gpus()},
            {"nodes", NodesFor(l, d.replicas)},
            {"per_replica", ToJson(d.result)},
            {"fleet",
             {{"output_tokens_per_s", d.result.output_tokens_per_s * d.replicas},
              {"requests_per_s", d.result.requests_per_s * d.replicas}}},
            {"targets_met", d.check.met},
            {"target_misses", d.check.misses}};
  if (dep.gpu) j["gpu"] = dep.gpu->name;
  if (d.sizing) {
    const SizingResult& s = *d.sizing;
    json tried = json::array();
    for (const auto& [r, c] : s.checks) {
      const SimResult& run = s.runs.at(r);
      tried.push_back({{"replicas", r},
                       {"met", c.met},
                       {"misses", c.misses},
                       {"rejected_fraction", run.rejected_fraction},
                       {"ttft_p99_s", run.total.ttft.p99},
                       {"tpot_p99_s", run.total.tpot.p99}});
    }
    j["sizing"] = {{"met", s.met},
                   {"replicas", s.replicas},
                   {"gpus", s.gpus},
                   {"nodes", s.nodes},
                   {"tried", tried}};
  }
  if (d.capacity) {
    const CapacityResult& c = *d.capacity;
    j["capacity_per_replica"] = {{"max_traffic_share", c.max_scale},
                                 {"requests_per_s", c.at.requests_per_s},
                                 {"output_tokens_per_s", c.at.output_tokens_per_s},
                                 {"kv_peak_fraction", c.at.kv_peak_fraction}};
  }
  return j;
}

std::string FormatTable(const PlanInput& in, const std::vector<DeploymentReport>& reports) {
  std::string out;
  const ModelFootprint f = FootprintOf(in.model);
  absl::StrAppendFormat(&out,
                        "model %s (%s): %.1fB params, %.1fB active per token, %.0f KB KV/token\n",
                        in.model.model_type, in.model_source, f.TotalParams() / 1e9,
                        (f.ActiveParamsPerToken() + f.lm_head_params) / 1e9,
                        f.KvBytesPerToken(in.precision.kv_bytes) / 1e3);
  double offered = 0;
  for (const ServiceSpec& s : in.services) offered += s.rate;
  absl::StrAppendFormat(&out, "traffic: %d services, %.2f req/s offered\n", in.services.size(),
                        offered);
  for (const DeploymentReport& d : reports) {
    const Deployment& dep = *d.deployment;
    const SimResult& r = d.result;
    if (d.cost == nullptr) {
      absl::StrAppendFormat(&out, "\n== %s (tp %d ep %d): %s\n", dep.name, dep.layout.tp,
                            dep.layout.ep, d.error);
      continue;
    }
    absl::StrAppendFormat(
        &out,
        "\n== %s (%s cost model; tp %d ep %d = %d GPUs/replica; %.1f GB weights/GPU; %d KV "
        "blocks)\n",
        dep.name, d.cost->measured() ? "measured" : "analytic", dep.layout.tp, dep.layout.ep,
        dep.layout.gpus(), d.cost->weight_bytes_per_gpu() / 1e9, d.cost->num_kv_blocks());
    absl::StrAppendFormat(&out,
                          "replicas %d = %d GPUs = %d nodes; per replica: %.2f req/s, %.0f output "
                          "tok/s, busy %.0f%%, mean step %.1f ms at %.1f seqs, KV peak %.0f%%\n",
                          d.replicas, d.replicas * dep.layout.gpus(),
                          NodesFor(dep.layout, d.replicas), r.requests_per_s, r.output_tokens_per_s,
                          100 * r.busy_fraction, 1e3 * r.mean_step_seconds, r.mean_batch_sequences,
                          100 * r.kv_peak_fraction);
    absl::StrAppendFormat(&out, "  %-12s %8s %8s %8s %20s %20s\n", "class", "arrived", "done",
                          "rejected", "TTFT p50/p90/p99 ms", "TPOT p50/p90/p99 ms");
    for (int c = 0; c < kNumPriorities; ++c) {
      const ClassResult& cr = r.classes[c];
      if (cr.arrived == 0) continue;
      absl::StrAppendFormat(
          &out, "  %-12s %8d %8d %8d %20s %20s\n", PriorityName(static_cast<Priority>(c)),
          cr.arrived, cr.completed, cr.rejected + cr.unfinished,
          absl::StrCat(Ms(cr.ttft.p50), "/", Ms(cr.ttft.p90), "/", Ms(cr.ttft.p99)),
          absl::StrCat(Ms(cr.tpot.p50), "/", Ms(cr.tpot.p90), "/", Ms(cr.tpot.p99)));
    }
    absl::StrAppendFormat(&out, "  targets %s", d.check.met ? "met" : "MISSED");
    for (const std::string& m : d.check.misses) absl::StrAppend(&out, "; ", m);
    absl::StrAppend(&out, "\n");
    if (d.sizing) {
      absl::StrAppendFormat(&out, "  sizing: %s %d replicas = %d GPUs = %d nodes (tried",
                            d.sizing->met ? "smallest meeting the targets:" : "NOT MET even at",
                            d.sizing->replicas, d.sizing->gpus, d.sizing->nodes);
      for (const auto& [n, c] : d.sizing->checks) {
        absl::StrAppendFormat(&out, " %d:%s", n, c.met ? "ok" : "miss");
      }
      absl::StrAppend(&out, ")\n");
    }
    if (d.capacity) {
      absl::StrAppendFormat(&out,
                            "  one replica sustains %.3gx the traffic: %.2f req/s, %.0f output "
                            "tok/s within the targets\n",
                            d.capacity->max_scale, d.capacity->at.requests_per_s,
                            d.capacity->at.output_tokens_per_s);
    }
  }
  return out;
}

}  // namespace dsinfer::capacity
