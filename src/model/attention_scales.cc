#include "src/model/attention_scales.h"

#include <cmath>

#include "kernels/cpu/rope.h"

namespace dsinfer {

AttentionScales MlaAttentionScales(const ModelConfig& c) {
  const RopeScaling& rs = c.rope_scaling;
  AttentionScales s;
  s.inv_freq = cpu::RopeInvFreq({.rope_dim = c.qk_rope_head_dim,
                                 .theta = c.rope_theta,
                                 .yarn = rs.yarn,
                                 .factor = rs.factor,
                                 .original_max_position = rs.original_max_position_embeddings,
                                 .beta_fast = rs.beta_fast,
                                 .beta_slow = rs.beta_slow});
  s.softmax_scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(c.qk_head_dim())));
  if (rs.yarn) {
    // As DeepSeek does: cos/sin carry mscale/mscale_all_dim (1 when they are equal) and the
    // softmax scale carries mscale_all_dim squared.
    if (rs.mscale != 0 && rs.mscale_all_dim != 0) {
      s.rope_attn_factor = static_cast<float>(cpu::YarnMscale(rs.factor, rs.mscale) /
                                              cpu::YarnMscale(rs.factor, rs.mscale_all_dim));
    } else {
      s.rope_attn_factor = static_cast<float>(cpu::YarnMscale(rs.factor, 1.0));
    }
    if (rs.mscale_all_dim != 0) {
      const double m = cpu::YarnMscale(rs.factor, rs.mscale_all_dim);
      s.softmax_scale = static_cast<float>(s.softmax_scale * m * m);
    }
  }
  return s;
}

}  // namespace dsinfer
