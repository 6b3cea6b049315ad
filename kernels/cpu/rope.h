// Rotary position embedding in DeepSeek's interleaved layout: pairs (x[2i], x[2i+1]) rotate by
// angle pos * inv_freq[i] (or HF's rotate_half layout: pairs (x[i], x[i + half]), Qwen2 / Llama). YaRN (Peng et al., 2023) as DeepSeek-V2/V3 use it: frequencies
// between the beta_fast/beta_slow correction dims are blended between interpolated
// (divided by factor) and original, and cos/sin are scaled by attn_factor.
#pragma once

#include <cstdint>
#include <vector>

namespace dsinfer::cpu {

struct YarnParams {
  int64_t rope_dim;          // qk_rope_head_dim (even)
  double theta;              // rope_theta
  bool yarn = false;
  double factor = 1.0;
  int64_t original_max_position = 0;
  double beta_fast = 32.0, beta_slow = 1.0;
};

// inv_freq[i], i < rope_dim / 2.
std::vector<float> RopeInvFreq(const YarnParams& p);

// Llama-3.1's rope scaling (HF transformers' _compute_llama3_parameters, in float32):
// wavelengths longer than original_max_position / low_freq_factor are divided by factor, shorter
// than original_max_position / high_freq_factor kept, and those between blended smoothly.
struct Llama3RopeParams {
  int64_t rope_dim;  // head_dim (even)
  double theta;
  double factor, low_freq_factor, high_freq_factor;
  int64_t original_max_position;
};
std::vector<float> Llama3InvFreq(const Llama3RopeParams& p);

// YaRN's magnitude correction: 0.1 * mscale * ln(factor) + 1 (1 when factor <= 1).
double YarnMscale(double factor, double mscale);

struct RopeParams {
  float* x;                  // [rows, heads, stride] — rotates x[r, h, 0:rope_dim]
  const int32_t* positions;  // [rows]
  const float* inv_freq;     // [rope_dim / 2]
  int64_t rows, heads, rope_dim;
  int64_t head_stride;       // elements between heads
  int64_t row_stride;        // elements between rows
  float attn_factor = 1.0f;  // scales cos and sin
  // false: DeepSeek's interleaved pairs (x[2i], x[2i+1]); true: HF's rotate_half layout, pairs
  // (x[i], x[i + rope_dim / 2]) (Qwen2, Llama).
  bool half_split = false;
};

void ApplyRope(const RopeParams& p);

}  // namespace dsinfer::cpu
