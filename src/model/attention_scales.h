// How a config's rope_scaling turns into MLA's rotary frequencies and scales, shared by every
// backend (the CPU model and the CUDA executor must agree exactly).
#pragma once

#include <vector>

#include "src/config/model_config.h"

namespace dsinfer {

struct AttentionScales {
  std::vector<float> inv_freq;  // [qk_rope_head_dim / 2], YaRN-corrected when yarn
  float rope_attn_factor = 1.0f;  // multiplies cos and sin
  float softmax_scale = 1.0f;     // qk_head_dim^-0.5, times mscale(factor, mscale_all_dim)^2
};

AttentionScales MlaAttentionScales(const ModelConfig& config);

}  // namespace dsinfer
