// DeepSeek-V4's MoE pieces: router scoring sqrt(softplus(x)) (or sigmoid / softmax), top-k by
// score + selection-only bias, or hash routing (the experts fixed per token id by tid2eid); the
// chosen experts' unbiased scores normalised to sum 1 and scaled by routed_scaling_factor.
// SwiGLU with V4's clipping: silu(min(gate, limit)) · clamp(up, -limit, limit). The grouped
// output projection: head groups projected independently (a block-diagonal linear).
#pragma once

#include <cstdint>

namespace dsinfer::cpu {

enum class V4RouterScoring : uint8_t { kSqrtSoftplus, kSigmoid, kSoftmax };

struct V4RouteParams {
  const float* logits;       // [rows, n_experts] gate logits (f32)
  const float* bias;         // [n_experts] selection-only bias, or nullptr
  const int32_t* hash_ids;   // [rows, top_k] tid2eid[token] (hash layers), or nullptr
  int32_t* ids;              // [rows, top_k] out (top-k: descending by biased score)
  float* weights;            // [rows, top_k] out
  int64_t rows, n_experts, top_k;
  V4RouterScoring scoring = V4RouterScoring::kSqrtSoftplus;
  float scale = 1.0f;
};
void V4Route(const V4RouteParams& p);

// out[r, i] = silu(min(g, limit)) · clamp(u, -limit, limit), g = gate_up[r, i],
// u = gate_up[r, inter + i]; limit <= 0: no clipping.
void ClippedSiluMul(const float* gate_up, float* out, int64_t rows, int64_t inter, float limit);

// y[r, g·out_per_group + o] = Σ_i x[r, g·in_per_group + i] · w[g·out_per_group + o, i]
// (w: [groups · out_per_group, in_per_group], HF layout).
struct GroupedLinearParams {
  const float* x;  // [rows, groups * in_per_group], row stride ldx
  const float* w;
  float* y;        // [rows, groups * out_per_group], row stride ldy
  int64_t rows, groups, in_per_group, out_per_group, ldx, ldy;
};
void GroupedLinear(const GroupedLinearParams& p);

}  // namespace dsinfer::cpu
