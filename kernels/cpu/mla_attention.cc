#include "kernels/cpu/mla_attention.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/cpu/attention_math.h"

namespace dsinfer::cpu {
using namespace attention_math;  // NOLINT: the shared inner loops

void MlaDecode(const MlaDecodeParams& p, const ParallelFor& pfor) {
  // Work item = (sequence, group of heads). All heads of a group share each latent row, so a
  // row is read once per group; heads are split only as far as needed to feed the threads.
  const int64_t groups = p.batch >= 4 ? 1 : std::min<int64_t>(p.heads, 8 / p.batch);
  const int64_t per = (p.heads + groups - 1) / groups;
  pfor(p.batch * groups, [&](int64_t w0, int64_t w1) {
    std::vector<float> scores;
    for (int64_t w = w0; w < w1; ++w) {
      const int64_t b = w / groups, h0 = (w % groups) * per, h1 = std::min(p.heads, h0 + per);
      const int64_t nh = h1 - h0, n = p.seq_lens[b];
      if (nh <= 0) continue;
      const int32_t* table = p.block_tables + b * p.max_blocks;
      const float* ql = p.q_latent + (b * p.heads + h0) * p.kv_lora;
      const float* qp = p.q_pe + (b * p.heads + h0) * p.rope;
      scores.resize(nh * n);  // [nh, n]
      for (int64_t t = 0; t < n; ++t) {
        const float* row = p.cache.Row(table, t);
        for (int64_t h = 0; h < nh; ++h) {
          scores[h * n + t] = (Dot(ql + h * p.kv_lora, row, p.kv_lora) +
                               Dot(qp + h * p.rope, row + p.kv_lora, p.rope)) *
                              p.softmax_scale;
        }
      }
      for (int64_t h = 0; h < nh; ++h) Softmax(scores.data() + h * n, n);
      float* out = p.out_latent + (b * p.heads + h0) * p.kv_lora;
      std::fill(out, out + nh * p.kv_lora, 0.f);
      for (int64_t t = 0; t < n; ++t) {
        const float* row = p.cache.Row(table, t);
        for (int64_t h = 0; h < nh; ++h) Axpy(scores[h * n + t], row, out + h * p.kv_lora, p.kv_lora);
      }
    }
  });
}

void GatherPagedRows(const PagedLatentView& cache, const int32_t* block_table, int64_t n,
                     float* dst) {
  for (int64_t t = 0; t < n; t += cache.block_size) {
    const int64_t len = std::min(cache.block_size, n - t);
    std::memcpy(dst + t * cache.width, cache.Row(block_table, t),
                static_cast<size_t>(len * cache.width) * sizeof(float));
  }
}

}  // namespace dsinfer::cpu
