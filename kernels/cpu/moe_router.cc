#include "kernels/cpu/moe_router.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

namespace dsinfer::cpu {

void MoeRoute(const MoeRouterParams& p) {
  const int64_t E = p.n_experts, per_group = E / p.n_group;
  const float kNegInf = -std::numeric_limits<float>::infinity();
  std::vector<float> scores(E), choice(E), group_scores(p.n_group);
  std::vector<int32_t> order(std::max(E, p.n_group));
  for (int64_t t = 0; t < p.tokens; ++t) {
    const float* lg = p.logits + t * E;
    if (p.scoring == RouterScoring::kSoftmax) {
      float mx = *std::max_element(lg, lg + E);
      double sum = 0.0;
      for (int64_t e = 0; e < E; ++e) sum += (scores[e] = std::exp(lg[e] - mx));
      for (int64_t e = 0; e < E; ++e) scores[e] = static_cast<float>(scores[e] / sum);
    } else {
      for (int64_t e = 0; e < E; ++e) scores[e] = 1.0f / (1.0f + std::exp(-lg[e]));
    }
    for (int64_t e = 0; e < E; ++e) choice[e] = scores[e] + (p.bias ? p.bias[e] : 0.0f);

    if (p.n_group > 1) {
      for (int64_t g = 0; g < p.n_group; ++g) {
        const float* s = choice.data() + g * per_group;
        if (p.group_score == RouterGroupScore::kMax) {
          group_scores[g] = *std::max_element(s, s + per_group);
        } else {
          float a = kNegInf, b = kNegInf;  // two largest
          for (int64_t i = 0; i < per_group; ++i) {
            if (s[i] > a) { b = a; a = s[i]; } else if (s[i] > b) { b = s[i]; }
          }
          group_scores[g] = per_group > 1 ? a + b : a;
        }
      }
      std::iota(order.begin(), order.begin() + p.n_group, 0);
      std::stable_sort(order.begin(), order.begin() + p.n_group,
                       [&](int32_t a, int32_t b) { return group_scores[a] > group_scores[b]; });
      std::vector<bool> keep(p.n_group, false);
      for (int64_t i = 0; i < p.topk_group; ++i) keep[order[i]] = true;
      for (int64_t g = 0; g < p.n_group; ++g)
        if (!keep[g])
          std::fill(choice.begin() + g * per_group, choice.begin() + (g + 1) * per_group, kNegInf);
    }

    std::iota(order.begin(), order.begin() + E, 0);
    std::partial_sort(order.begin(), order.begin() + p.top_k, order.begin() + E,
                      [&](int32_t a, int32_t b) {
                        return choice[a] > choice[b] || (choice[a] == choice[b] && a < b);
                      });
    int32_t* ids = p.topk_ids + t * p.top_k;
    float* w = p.topk_weights + t * p.top_k;
    float sum = 0.0f;
    for (int64_t i = 0; i < p.top_k; ++i) {
      ids[i] = order[i];
      w[i] = scores[order[i]];
      sum += w[i];
    }
    const bool norm = p.normalize && p.top_k > 1;
    if (norm) {
      for (int64_t i = 0; i < p.top_k; ++i) w[i] /= (sum + 1e-20f);
    }
    if (!norm || p.scale_when_normalized) {
      for (int64_t i = 0; i < p.top_k; ++i) w[i] *= p.scale;
    }
  }
}

}  // namespace dsinfer::cpu
