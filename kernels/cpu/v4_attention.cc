#include "kernels/cpu/v4_attention.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

namespace dsinfer::cpu {

void TrailingRope(const TrailingRopeParams& p) {
  const int64_t half = p.rope_dim / 2, off = p.head_dim - p.rope_dim;
  for (int64_t r = 0; r < p.rows; ++r) {
    const double pos = p.positions[r];
    for (int64_t i = 0; i < half; ++i) {
      // As torch: the angle in f32 (pos · inv_freq), then cos / sin.
      const float ang = static_cast<float>(pos) * p.inv_freq[i];
      const float c = std::cos(ang), s = p.inverse ? -std::sin(ang) : std::sin(ang);
      for (int64_t h = 0; h < p.heads; ++h) {
        float* x = p.x + r * p.row_stride + h * p.head_dim + off + 2 * i;
        const float a = x[0], b = x[1];
        x[0] = a * c - b * s;
        x[1] = b * c + a * s;
      }
    }
  }
}

void CompressWindow(const CompressWindowParams& p) {
  const int64_t m = p.rate, d = p.dim, width = p.overlap ? 2 * d : d;
  const int64_t cur = p.overlap ? d : 0;  // the current window's channels
  const bool prev = p.overlap && p.prev_kv != nullptr;
  for (int64_t c = 0; c < d; ++c) {
    float mx = -INFINITY;
    for (int64_t i = 0; i < m; ++i) {
      mx = std::fmax(mx, p.gate[i * width + cur + c] + p.position_bias[i * width + cur + c]);
      if (prev) mx = std::fmax(mx, p.prev_gate[i * width + c] + p.position_bias[i * width + c]);
    }
    float den = 0, num = 0;
    for (int64_t i = 0; i < m; ++i) {
      const float e = std::exp(p.gate[i * width + cur + c] + p.position_bias[i * width + cur + c] - mx);
      den += e;
      num += e * p.kv[i * width + cur + c];
      if (prev) {
        const float f = std::exp(p.prev_gate[i * width + c] + p.position_bias[i * width + c] - mx);
        den += f;
        num += f * p.prev_kv[i * width + c];
      }
    }
    p.out[c] = num / den;
  }
}

void SinkAttention(const SinkAttentionParams& p) {
  const int64_t D = p.head_dim;
  std::vector<float> s(p.n_keys);
  for (int64_t h = 0; h < p.heads; ++h) {
    const float* q = p.q + h * D;
    float mx = p.sinks[h];
    for (int64_t j = 0; j < p.n_keys; ++j) {
      const float* k = p.keys[j];
      float acc = 0;
      for (int64_t c = 0; c < D; ++c) acc += q[c] * k[c];
      s[j] = acc * p.scale;
      mx = std::fmax(mx, s[j]);
    }
    float den = std::exp(p.sinks[h] - mx);
    for (int64_t j = 0; j < p.n_keys; ++j) {
      s[j] = std::exp(s[j] - mx);
      den += s[j];
    }
    float* o = p.out + h * D;
    std::fill(o, o + D, 0.0f);
    for (int64_t j = 0; j < p.n_keys; ++j) {
      const float w = s[j] / den;
      const float* k = p.keys[j];
      for (int64_t c = 0; c < D; ++c) o[c] += w * k[c];
    }
  }
}

int64_t IndexerTopk(const IndexerTopkParams& p) {
  const int64_t D = p.head_dim;
  const float softmax_scale = 1.0f / std::sqrt(static_cast<float>(D));
  for (int64_t t = 0; t < p.n_valid; ++t) {
    const float* k = p.keys[t];
    float score = 0;
    for (int64_t h = 0; h < p.heads; ++h) {
      const float* q = p.q + h * D;
      float dot = 0;
      for (int64_t c = 0; c < D; ++c) dot += q[c] * k[c];
      score += std::fmax(dot, 0.0f) * softmax_scale * p.w[h];
    }
    p.scores[t] = score;
  }
  const int64_t k = std::min(p.topk, p.n_valid);
  std::vector<int32_t> idx(p.n_valid);
  std::iota(idx.begin(), idx.end(), 0);
  std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), [&](int32_t a, int32_t b) {
    return p.scores[a] > p.scores[b] || (p.scores[a] == p.scores[b] && a < b);
  });
  for (int64_t i = 0; i < k; ++i) p.chosen[i] = idx[i];
  return k;
}

}  // namespace dsinfer::cpu
