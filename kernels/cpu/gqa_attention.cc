#include "kernels/cpu/gqa_attention.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/cpu/attention_math.h"

namespace dsinfer::cpu {
using namespace attention_math;  // NOLINT: the shared inner loops

void GqaAttention(const GqaAttentionParams& p, const ParallelFor& pfor) {
  // Work item = (query token, kv head): the group's query heads share every K and V row read.
  const int64_t group = p.heads / p.kv_heads, hd = p.head_dim;
  const int64_t v_off = p.kv_heads * hd;
  pfor(p.n * p.kv_heads, [&](int64_t w0, int64_t w1) {
    std::vector<float> scores;
    for (int64_t w = w0; w < w1; ++w) {
      const int64_t i = w / p.kv_heads, g = w % p.kv_heads;
      const int64_t keys = static_cast<int64_t>(p.positions[i]) + 1;
      const float* q = p.q + i * p.ld_q + g * group * hd;
      scores.resize(group * keys);  // [group, keys]
      for (int64_t t = 0; t < keys; ++t) {
        const float* k = p.cache.Row(p.block_tables[i], t) + g * hd;
        for (int64_t h = 0; h < group; ++h)
          scores[h * keys + t] = Dot(q + h * hd, k, hd) * p.softmax_scale;
      }
      for (int64_t h = 0; h < group; ++h) Softmax(scores.data() + h * keys, keys);
      float* out = p.out + i * p.ld_out + g * group * hd;
      for (int64_t h = 0; h < group; ++h) std::fill(out + h * hd, out + (h + 1) * hd, 0.f);
      for (int64_t t = 0; t < keys; ++t) {
        const float* v = p.cache.Row(p.block_tables[i], t) + v_off + g * hd;
        for (int64_t h = 0; h < group; ++h) Axpy(scores[h * keys + t], v, out + h * hd, hd);
      }
    }
  });
}

}  // namespace dsinfer::cpu
