#include "kernels/cpu/rope.h"

#include <algorithm>
#include <cmath>

namespace dsinfer::cpu {
namespace {
constexpr double kPi = 3.14159265358979323846;

double CorrectionDim(double rotations, int64_t dim, double base, int64_t max_pos) {
  return dim * std::log(max_pos / (rotations * 2 * kPi)) / (2 * std::log(base));
}
}  // namespace

double YarnMscale(double factor, double mscale) {
  if (factor <= 1.0) return 1.0;
  return 0.1 * mscale * std::log(factor) + 1.0;
}

std::vector<float> RopeInvFreq(const YarnParams& p) {
  const int64_t half = p.rope_dim / 2;
  std::vector<float> inv(half);
  // Same float32 arithmetic as the reference: base ** (arange(0, dim, 2) / dim).
  for (int64_t i = 0; i < half; ++i) {
    float expo = static_cast<float>(2 * i) / static_cast<float>(p.rope_dim);
    inv[i] = 1.0f / std::pow(static_cast<float>(p.theta), expo);
  }
  if (!p.yarn) return inv;
  double low = std::floor(CorrectionDim(p.beta_fast, p.rope_dim, p.theta, p.original_max_position));
  double high = std::ceil(CorrectionDim(p.beta_slow, p.rope_dim, p.theta, p.original_max_position));
  low = std::max(low, 0.0);
  high = std::min(high, static_cast<double>(p.rope_dim - 1));
  if (low == high) high += 0.001;
  for (int64_t i = 0; i < half; ++i) {
    float ramp = static_cast<float>((static_cast<double>(i) - low) / (high - low));
    ramp = std::clamp(ramp, 0.0f, 1.0f);
    float smooth = 1.0f - ramp;  // 1: keep original frequency, 0: interpolate
    float interp = inv[i] / static_cast<float>(p.factor);
    inv[i] = interp * (1.0f - smooth) + inv[i] * smooth;
  }
  return inv;
}

std::vector<float> Llama3InvFreq(const Llama3RopeParams& p) {
  std::vector<float> inv = RopeInvFreq({.rope_dim = p.rope_dim, .theta = p.theta});
  const float factor = static_cast<float>(p.factor);
  const float lo = static_cast<float>(p.low_freq_factor), hi = static_cast<float>(p.high_freq_factor);
  const float old_len = static_cast<float>(p.original_max_position);
  const float low_freq_wavelen = old_len / lo, high_freq_wavelen = old_len / hi;
  for (float& f : inv) {
    const float wavelen = 2.0f * static_cast<float>(kPi) / f;
    const float scaled = wavelen > low_freq_wavelen ? f / factor : f;
    if (wavelen < high_freq_wavelen || wavelen > low_freq_wavelen) {
      f = scaled;
      continue;
    }
    const float smooth = (old_len / wavelen - lo) / (hi - lo);
    f = (1.0f - smooth) * scaled / factor + smooth * scaled;
  }
  return inv;
}

void ApplyRope(const RopeParams& p) {
  const int64_t half = p.rope_dim / 2;
  // Element distance within a rotated pair, and between consecutive pairs.
  const int64_t pair = p.half_split ? half : 1, step = p.half_split ? 1 : 2;
  for (int64_t r = 0; r < p.rows; ++r) {
    const float pos = static_cast<float>(p.positions[r]);
    for (int64_t i = 0; i < half; ++i) {
      // Angle in float32 like the reference's torch.outer(t, freqs).
      const float angle = pos * p.inv_freq[i];
      const float c = std::cos(angle) * p.attn_factor, s = std::sin(angle) * p.attn_factor;
      for (int64_t h = 0; h < p.heads; ++h) {
        float* x = p.x + r * p.row_stride + h * p.head_stride + step * i;
        const float a = x[0], b = x[pair];
        x[0] = a * c - b * s;
        x[pair] = a * s + b * c;
      }
    }
  }
}

}  // namespace dsinfer::cpu
