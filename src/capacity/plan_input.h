// Input of the capacity planner (`dsinfer plan`): a model, one or more deployments (GPU specs,
// parallel layout, optional measured step costs, scheduler limits), a traffic mix of county
// services, simulation settings and latency targets. Parsed from YAML and validated once here;
// every error names the field (`services[3].prompt_tokens.p90: ...`).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "src/config/model_config.h"
#include "src/config/priority.h"
#include "src/scheduler/policy.h"

namespace dsinfer::capacity {

// A distribution of token counts: fixed, uniform integers in [lo, hi], or lognormal (given by
// its mean or median and its p90), rounded and clamped to [min, max].
struct LengthDist {
  enum class Kind { kFixed, kUniform, kLognormal };
  Kind kind = Kind::kFixed;
  double fixed = 1;
  int64_t lo = 1, hi = 1;    // uniform
  double mu = 0, sigma = 0;  // lognormal: ln X ~ N(mu, sigma^2)
  int64_t min = 1, max = 1 << 20;

  int64_t Sample(std::mt19937_64& rng) const;
  double Mean() const;  // of the distribution before rounding and clamping
};

// One county service = one tenant of the scheduler. `count` in the input expands a service into
// `name-01`, `name-02`, ... with the same spec.
struct ServiceSpec {
  std::string name;
  double rate = 0;                                        // Poisson arrivals per second
  TenantPolicy policy;                                    // policy.id == name
  std::vector<std::pair<Priority, double>> priority_mix;  // class of each request, by weight
  LengthDist prompt_tokens, output_tokens;
  int64_t shared_prefix_tokens = 0;  // the same leading tokens on every request (system prompt)
  int32_t prefix_group = 0;  // services of one input entry (`count`) share that system prompt
};

// One accelerator and its links. Rates are per GPU.
struct GpuSpec {
  std::string name;
  double memory_bytes = 0;
  double memory_bandwidth = 0;   // bytes/s (HBM)
  double flops = 0;              // dense FLOP/s at the compute precision
  double link_bandwidth = 0;     // bytes/s per GPU inside a node (NVLink), one direction
  double network_bandwidth = 0;  // bytes/s per GPU between nodes (InfiniBand / RoCE)
  double collective_latency_seconds = 10e-6;  // fixed cost of one all-reduce / all-to-all
  double bandwidth_efficiency = 0.7;          // achieved share of memory_bandwidth
  double mfu = 0.4;                           // achieved share of flops
  double step_overhead_seconds = 0.002;       // scheduling, launches, sampling per step
};

// One replica: `tp`-way tensor parallel attention/dense layers in attention groups of tp GPUs
// (dp = gpus / tp groups split the batch), routed experts spread over `ep` GPUs.
struct Layout {
  int32_t tp = 1;
  int32_t ep = 1;
  int32_t gpus_per_node = 8;
  int32_t gpus() const { return tp > ep ? tp : ep; }
  int32_t dp() const { return gpus() / tp; }
};

// Fitted per-step costs of a measured system (replace the analytic model). With N items
// (sequences), T tokens and C attended (query, cached key) pairs:
//   step = base(N) + token_seconds * (T - N) + context_token_seconds * C
//   base(N) = step_seconds + (token_seconds + sequence_seconds) * N, i.e. the linear fit
//     step_seconds + token_seconds * T + sequence_seconds * N + context_token_seconds * C,
//   or, with batch_seconds, linear interpolation in measured (N, seconds) points: steps of N
//   one-token items, N a mean where it comes from serving metrics (extrapolated along the last
//   segment; the first value below it).
struct MeasuredCosts {
  double step_seconds = 0;
  double token_seconds = 0;
  double sequence_seconds = 0;
  double context_token_seconds = 0;
  std::vector<std::pair<double, double>> batch_seconds;  // N strictly increasing, > 0
  double Base(int64_t sequences) const;
};

// Bytes per element.
struct Precision {
  double weight_bytes = 2;      // 1 for FP8 checkpoints (block scales neglected)
  double kv_bytes = 2;          // latent cache element
  double activation_bytes = 2;  // what collectives move
};

struct Deployment {
  std::string name;
  std::optional<GpuSpec> gpu;  // required unless `measured` and num_kv_blocks are given
  Layout layout;
  std::optional<MeasuredCosts> measured;
  SchedulerLimits limits;  // num_kv_blocks 0: from GPU memory; max_model_len from the model
  double kv_memory_fraction = 0.9;  // of GPU memory, for weights + KV
};

struct ClassTarget {
  std::optional<double> ttft_p99_seconds;
  std::optional<double> tpot_p99_seconds;
};

struct Targets {
  std::array<ClassTarget, kNumPriorities> classes;  // by PriorityIndex
  double max_rejected_fraction = 0.001;             // rejected or unfinished / arrived
  bool any() const;
};

struct SimulationSpec {
  double duration_seconds = 600;  // arrivals in [0, duration)
  double warmup_seconds = 60;     // arrivals before this are not measured
  double drain_seconds = 600;     // after duration: time left to finish measured requests
  uint64_t seed = 1;
};

struct PlanInput {
  std::string model_source;  // path of config.json, or "inline"
  ModelConfig model;
  Precision precision;
  std::vector<Deployment> deployments;
  std::vector<ServiceSpec> services;
  SimulationSpec simulation;
  Targets targets;
};

// Parses YAML text; relative paths are resolved against `base_dir`. InvalidArgument lists every
// problem, one per line, each with its field path.
absl::StatusOr<PlanInput> ParsePlanInput(std::string_view yaml_text, const std::string& base_dir);

// Reads `path`; errors are prefixed with it.
absl::StatusOr<PlanInput> LoadPlanInput(const std::string& path);

}  // namespace dsinfer::capacity
