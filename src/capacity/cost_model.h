// Time of one engine step on a deployment, as a function of the step's shape. Either analytic
// (roofline from the model's parameter counts and the GPU specs) or measured (coefficients fitted
// on a real run). The formulas are in README.md next to this file and in
// docs/capacity_planning.md; the simulator calls StepSeconds once per scheduled step.
#pragma once

#include <cstdint>
#include <optional>

#include "absl/status/statusor.h"
#include "src/capacity/plan_input.h"
#include "src/config/model_config.h"
#include "src/scheduler/step_plan.h"

namespace dsinfer::capacity {

// What a step computes, summed over its items (the engine's split: an item of one token that
// samples at a position > 0 is a decode; everything else is prefill).
struct StepShape {
  int64_t prefill_tokens = 0;
  int64_t prefill_context = 0;  // (query, key) pairs attended by prefill tokens
  int64_t decode_sequences = 0;
  int64_t decode_context = 0;  // (query, key) pairs attended by decodes = their context lengths
  int64_t sequences = 0;       // items: one logits row each
  int64_t tokens() const { return prefill_tokens + decode_sequences; }
  int64_t context() const { return prefill_context + decode_context; }
};

StepShape ShapeOf(const StepPlan& plan);

// Parameter counts of a DeepSeek-style model (MLA + MoE), from its config.
struct ModelFootprint {
  double attention_params = 0;      // all layers: q (LoRA or plain), kv_a, kv_b, o, norms neglected
  double dense_mlp_params = 0;      // the first_k_dense_replace dense layers
  double shared_expert_params = 0;  // all MoE layers
  double router_params = 0;         // all MoE layers
  double expert_params = 0;         // one routed expert of one layer (gate, up, down)
  int64_t moe_layers = 0;
  int64_t experts = 0;            // routed experts per layer
  int64_t experts_per_token = 0;  // k
  double embedding_params = 0;
  double lm_head_params = 0;
  double kv_elements_per_token = 0;  // layers * (kv_lora_rank + qk_rope_head_dim)
  // The second cache component (KvCacheSpec::index_row_bytes): V3.2's FP8 index keys, all layers.
  double kv_index_bytes_per_token = 0;
  double KvBytesPerToken(double kv_element_bytes) const {
    return kv_elements_per_token * kv_element_bytes + kv_index_bytes_per_token;
  }
  // FLOPs per attended (query, key) pair, all layers: prefill (decompressed heads) and decode
  // (absorbed: scores over the latent and rope key, values from the latent).
  double prefill_pair_flops = 0;
  double decode_pair_flops = 0;

  double TotalParams() const;
  // Parameters used by one token (lm_head excluded: it runs once per item, not per token).
  double ActiveParamsPerToken() const;
};

ModelFootprint FootprintOf(const ModelConfig& c);

// Where the analytic step time goes (seconds); total = max(weights, compute) + kv + comm +
// overhead.
struct StepBreakdown {
  double weights = 0;  // weight bytes read per GPU / (bandwidth * efficiency)
  double compute = 0;  // FLOPs per GPU / (peak * mfu)
  double kv = 0;       // latent KV bytes read per GPU / (bandwidth * efficiency)
  double comm = 0;     // all-reduce and all-to-all bytes / link bandwidth, plus latencies
  double overhead = 0;
  double total = 0;
};

class CostModel {
 public:
  static absl::StatusOr<CostModel> Create(const ModelConfig& model, const Precision& precision,
                                          const Deployment& deployment);

  double StepSeconds(const StepShape& s) const { return Breakdown(s).total; }
  StepBreakdown Breakdown(const StepShape& s) const;

  bool measured() const { return measured_.has_value(); }
  const ModelFootprint& footprint() const { return fp_; }
  // Bytes of weights resident on one GPU (0 when measured without a GPU spec).
  double weight_bytes_per_gpu() const { return weight_bytes_per_gpu_; }
  double kv_bytes_per_token() const { return fp_.KvBytesPerToken(precision_.kv_bytes); }
  // KV pool of one replica in blocks of kKvBlockSize tokens: the scheduler override, else GPU
  // memory * kv_memory_fraction - weights, per GPU, times dp (attention groups hold disjoint
  // sequences; the tp GPUs of a group each hold the group's full latent cache, or with GQA
  // their KV heads' share).
  int32_t num_kv_blocks() const { return num_kv_blocks_; }
  // Expected distinct routed experts (of E per layer) that `tokens` tokens touch.
  double ExpectedExpertsTouched(int64_t tokens) const;

 private:
  CostModel() = default;

  ModelFootprint fp_;
  Precision precision_;
  Layout layout_;
  std::optional<GpuSpec> gpu_;
  std::optional<MeasuredCosts> measured_;
  double hidden_ = 0, num_layers_ = 0;
  double weight_bytes_per_gpu_ = 0;
  int32_t num_kv_blocks_ = 0;
};

}  // namespace dsinfer::capacity
