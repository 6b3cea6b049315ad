#include "kernels/cpu/v4_moe.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

namespace dsinfer::cpu {

namespace {
// torch's softplus (beta 1, threshold 20).
float Softplus(float x) { return x > 20.0f ? x : std::log1p(std::exp(x)); }
}  // namespace

void V4Route(const V4RouteParams& p) {
  const int64_t E = p.n_experts, K = p.top_k;
  std::vector<float> score(E), biased(E);
  std::vector<int32_t> order(E);
  for (int64_t r = 0; r < p.rows; ++r) {
    const float* l = p.logits + r * E;
    if (p.scoring == V4RouterScoring::kSoftmax) {
      float mx = -INFINITY, s = 0;
      for (int64_t e = 0; e < E; ++e) mx = std::fmax(mx, l[e]);
      for (int64_t e = 0; e < E; ++e) s += (score[e] = std::exp(l[e] - mx));
      for (int64_t e = 0; e < E; ++e) score[e] /= s;
    } else {
      for (int64_t e = 0; e < E; ++e)
        score[e] = p.scoring == V4RouterScoring::kSigmoid ? 1.0f / (1.0f + std::exp(-l[e]))
                                                          : std::sqrt(Softplus(l[e]));
    }
    int32_t* ids = p.ids + r * K;
    if (p.hash_ids != nullptr) {
      for (int64_t k = 0; k < K; ++k) ids[k] = p.hash_ids[r * K + k];
    } else {
      for (int64_t e = 0; e < E; ++e) biased[e] = score[e] + (p.bias ? p.bias[e] : 0.0f);
      std::iota(order.begin(), order.end(), 0);
      std::partial_sort(order.begin(), order.begin() + K, order.end(), [&](int32_t a, int32_t b) {
        return biased[a] > biased[b] || (biased[a] == biased[b] && a < b);
      });
      for (int64_t k = 0; k < K; ++k) ids[k] = order[k];
    }
    float sum = 0;
    for (int64_t k = 0; k < K; ++k) sum += score[ids[k]];
    for (int64_t k = 0; k < K; ++k)
      p.weights[r * K + k] = score[ids[k]] / (sum + 1e-20f) * p.scale;
  }
}

void ClippedSiluMul(const float* gate_up, float* out, int64_t rows, int64_t inter, float limit) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* g = gate_up + r * 2 * inter;
    const float* u = g + inter;
    float* o = out + r * inter;
    for (int64_t i = 0; i < inter; ++i) {
      float gv = g[i], uv = u[i];
      if (limit > 0) {
        gv = std::fmin(gv, limit);
        uv = std::fmin(std::fmax(uv, -limit), limit);
      }
      o[i] = gv / (1.0f + std::exp(-gv)) * uv;
    }
  }
}

void GroupedLinear(const GroupedLinearParams& p) {
  for (int64_t r = 0; r < p.rows; ++r) {
    for (int64_t g = 0; g < p.groups; ++g) {
      const float* x = p.x + r * p.ldx + g * p.in_per_group;
      for (int64_t o = 0; o < p.out_per_group; ++o) {
        const float* w = p.w + (g * p.out_per_group + o) * p.in_per_group;
        float acc = 0;
        for (int64_t i = 0; i < p.in_per_group; ++i) acc += x[i] * w[i];
        p.y[r * p.ldy + g * p.out_per_group + o] = acc;
      }
    }
  }
}

}  // namespace dsinfer::cpu
