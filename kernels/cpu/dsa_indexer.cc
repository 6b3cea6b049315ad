#include "kernels/cpu/dsa_indexer.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <vector>

#include "kernels/cpu/fp8.h"
#include "kernels/cpu/fp8_gemm.h"

namespace dsinfer::cpu {

void HadamardTransform(float* x, int64_t n, float scale) {
  for (int64_t h = 1; h < n; h *= 2) {
    for (int64_t i = 0; i < n; i += 2 * h) {
      for (int64_t j = i; j < i + h; ++j) {
        const float a = x[j], b = x[j + h];
        x[j] = a + b;
        x[j + h] = a - b;
      }
    }
  }
  for (int64_t i = 0; i < n; ++i) x[i] *= scale;
}

void LayerNormRow(float* x, const float* w, const float* b, int64_t n, float eps) {
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += x[i];
  const float mean = static_cast<float>(sum / n);
  double sq = 0;
  for (int64_t i = 0; i < n; ++i) sq += static_cast<double>(x[i] - mean) * (x[i] - mean);
  const float rstd = 1.0f / std::sqrt(static_cast<float>(sq / n) + eps);
  for (int64_t i = 0; i < n; ++i) x[i] = (x[i] - mean) * rstd * w[i] + b[i];
}

void RopeHalfRow(float* x, int32_t pos, const float* inv_freq, int64_t rope_dim,
                 float attn_factor) {
  const int64_t half = rope_dim / 2;
  for (int64_t i = 0; i < half; ++i) {
    const float angle = static_cast<float>(pos) * inv_freq[i];
    const float c = std::cos(angle) * attn_factor, s = std::sin(angle) * attn_factor;
    const float a = x[i], b = x[i + half];
    x[i] = a * c - b * s;
    x[i + half] = a * s + b * c;
  }
}

float QuantizeIndexBlock(const float* x, int64_t n, bool ue8m0, uint8_t* codes) {
  float amax = 0.0f;
  for (int64_t j = 0; j < n; ++j) amax = std::max(amax, std::fabs(x[j]));
  float s = std::max(amax, kFp8ActMinAmax) * (1.0f / kE4M3Max);
  if (ue8m0) {
    // 2^ceil(log2(s)) from the bits, as the reference's fast_round_scale.
    uint32_t bits;
    std::memcpy(&bits, &s, 4);
    const int32_t e = static_cast<int32_t>((bits >> 23) & 0xff) - 127 + ((bits & 0x7fffff) ? 1 : 0);
    s = std::ldexp(1.0f, e);
  }
  for (int64_t j = 0; j < n; ++j)
    codes[j] = F32ToE4M3(std::clamp(x[j] / s, -kE4M3Max, kE4M3Max));
  return s;
}

void IndexScores(const IndexScoreParams& p) {
  const int64_t D = p.keys.dim, H = p.heads;
  const auto& table = E4M3Table();
  std::vector<float> q(H * D), k(D);
  for (int64_t i = 0; i < H * D; ++i) q[i] = table[p.q_codes[i]];
  for (int64_t t = 0; t < p.n_keys; ++t) {
    const uint8_t* row = p.keys.Row(p.block_table, t);
    for (int64_t d = 0; d < D; ++d) k[d] = table[row[d]];
    float k_scale;
    std::memcpy(&k_scale, row + D, 4);
    float sum = 0.0f;
    for (int64_t h = 0; h < H; ++h) {
      const float* qh = q.data() + h * D;
      float dot = 0.0f;
      for (int64_t d = 0; d < D; ++d) dot += qh[d] * k[d];
      sum += std::max(dot, 0.0f) * p.head_weights[h];
    }
    p.scores[t] = sum * k_scale;
  }
}

int64_t TopKPositions(const float* scores, int64_t n, int64_t k, int32_t* out) {
  const int64_t m = std::min(n, k);
  std::vector<int32_t> idx(n);
  std::iota(idx.begin(), idx.end(), 0);
  if (m < n) {
    std::nth_element(idx.begin(), idx.begin() + m, idx.end(), [&](int32_t a, int32_t b) {
      return scores[a] > scores[b] || (scores[a] == scores[b] && a < b);
    });
  }
  std::sort(idx.begin(), idx.begin() + m);
  std::copy(idx.begin(), idx.begin() + m, out);
  return m;
}

}  // namespace dsinfer::cpu
