#include "kernels/cpu/fp8_gemm.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/cpu/fp8.h"

namespace dsinfer::cpu {

void ActQuantFp8(const ActQuantFp8Params& p) {
  const int64_t ldx = p.ldx ? p.ldx : p.k, ldq = p.ldq ? p.ldq : p.k;
  const int64_t blocks = (p.k + p.block - 1) / p.block;
  const int64_t ld_scale = p.ld_scale ? p.ld_scale : blocks;
  for (int64_t i = 0; i < p.m; ++i) {
    const float* x = p.x + i * ldx;
    uint8_t* q = p.q + i * ldq;
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t j0 = b * p.block, j1 = std::min(p.k, j0 + p.block);
      float amax = 0.0f;
      for (int64_t j = j0; j < j1; ++j) amax = std::max(amax, std::fabs(x[j]));
      const float s = std::max(amax, kFp8ActMinAmax) / kE4M3Max;
      p.scale[i * ld_scale + b] = s;
      for (int64_t j = j0; j < j1; ++j) q[j] = F32ToE4M3(x[j] / s);
    }
  }
}

void Fp8BlockGemmRef(const Fp8BlockGemmParams& p, const ParallelFor& pfor) {
  if (p.m <= 0 || p.n <= 0) return;
  const int64_t lda = p.lda ? p.lda : p.k, ldw = p.ldw ? p.ldw : p.k, ldy = p.ldy ? p.ldy : p.n;
  const int64_t blocks = (p.k + p.block_k - 1) / p.block_k;
  const int64_t ld_a_scale = p.ld_a_scale ? p.ld_a_scale : blocks;
  const int64_t ld_w_scale = p.ld_w_scale ? p.ld_w_scale : blocks;
  const auto& table = E4M3Table();
  std::vector<float> a(static_cast<size_t>(p.m * p.k));  // decoded activation codes
  for (int64_t i = 0; i < p.m; ++i)
    for (int64_t t = 0; t < p.k; ++t) a[i * p.k + t] = table[p.a[i * lda + t]];
  pfor(p.n, [&](int64_t n0, int64_t n1) {
    std::vector<float> wrow(static_cast<size_t>(p.k));
    for (int64_t j = n0; j < n1; ++j) {
      for (int64_t t = 0; t < p.k; ++t) wrow[t] = table[p.w[j * ldw + t]];
      const float* ws = p.w_scale_inv + (j / p.block_n) * ld_w_scale;
      for (int64_t i = 0; i < p.m; ++i) {
        const float* arow = a.data() + i * p.k;
        float acc = 0.0f;
        for (int64_t b = 0; b < blocks; ++b) {
          const int64_t t0 = b * p.block_k, t1 = std::min(p.k, t0 + p.block_k);
          float block_sum = 0.0f;  // products of E4M3 values are exact in f32
          for (int64_t t = t0; t < t1; ++t) block_sum += arow[t] * wrow[t];
          acc = std::fma(block_sum, p.a_scale[i * ld_a_scale + b] * ws[b], acc);
        }
        float* dst = p.y + i * ldy + j;
        *dst = p.accumulate ? *dst + acc : acc;
      }
    }
  });
}

}  // namespace dsinfer::cpu
