// MoE routing (the CPU twin of the fused GPU router), following DeepSeek's reference Gate:
// scores = softmax or sigmoid of the gate logits (f32); a correction bias, when given, is added
// for expert *selection* only; with groups, each group is scored (max, or sum of its top-2 biased
// scores for noaux_tc), the best topk_group groups are kept and the others masked to -inf
// (dropped entirely, never merely zeroed); the top_k experts are chosen; their weights are the
// unbiased scores, optionally normalised to sum 1, and scaled by routed_scaling_factor.
#pragma once

#include <cstdint>

namespace dsinfer::cpu {

enum class RouterScoring : uint8_t { kSoftmax, kSigmoid };
enum class RouterGroupScore : uint8_t { kMax, kTop2Sum };

struct MoeRouterParams {
  const float* logits;      // [tokens, n_experts] gate logits
  const float* bias;        // [n_experts] selection-only correction bias, or nullptr
  int32_t* topk_ids;        // [tokens, top_k] out
  float* topk_weights;      // [tokens, top_k] out
  int64_t tokens, n_experts, top_k;
  int64_t n_group = 1, topk_group = 1;
  RouterScoring scoring = RouterScoring::kSoftmax;
  RouterGroupScore group_score = RouterGroupScore::kMax;
  bool normalize = false;          // weights /= sum(weights) (when top_k > 1)
  float scale = 1.0f;              // routed_scaling_factor
  bool scale_when_normalized = true;  // DeepSeek-V2 scales only when not normalising
};

void MoeRoute(const MoeRouterParams& p);

}  // namespace dsinfer::cpu
