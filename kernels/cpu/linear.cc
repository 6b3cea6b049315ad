#include "kernels/cpu/linear.h"

#include <cblas.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels/cpu/linear_tile.h"

namespace dsinfer::cpu {
namespace {

// bf16 weights x f32 activations (rounded to bf16), f32 accumulation. Weight rows are split
// across threads; activations are walked in chunks that stay in L2 while a thread's weight rows
// stream past, so weights are read from memory once per chunk (once in decode).
void GemmBf16(const LinearParams& p, const ParallelFor& pfor) {
  const int64_t ldx = p.ldx ? p.ldx : p.k, ldy = p.ldy ? p.ldy : p.n;
  std::vector<uint16_t> xb(static_cast<size_t>(p.m * p.k));
  for (int64_t i = 0; i < p.m; ++i)
    for (int64_t j = 0; j < p.k; ++j) xb[i * p.k + j] = tile::ToBf16(p.x[i * ldx + j]);
  const uint16_t* w = static_cast<const uint16_t*>(p.w);
  const int64_t chunk = std::max<int64_t>(4, (256 * 1024 / 2) / std::max<int64_t>(1, p.k) / 4 * 4);
  const int64_t pairs = (p.n + 1) / 2;
  pfor(pairs, [&](int64_t p0, int64_t p1) {
    const int64_t n0 = 2 * p0, n1 = std::min(p.n, 2 * p1);
    for (int64_t i0 = 0; i0 < p.m; i0 += chunk) {
      const int64_t i1 = std::min(p.m, i0 + chunk);
      tile::DotRows(w + n0 * p.k, p.k, n1 - n0, xb.data(), p.k, i0, i1, p.k, p.y + n0, ldy,
                    p.accumulate);
    }
  });
}

}  // namespace

void Linear(const LinearParams& p, const ParallelFor& pfor) {
  if (p.m <= 0 || p.n <= 0) return;
  if (p.k == 0) {
    if (!p.accumulate) {
      const int64_t ldy = p.ldy ? p.ldy : p.n;
      for (int64_t i = 0; i < p.m; ++i) std::fill(p.y + i * ldy, p.y + i * ldy + p.n, 0.f);
    }
    return;
  }
  if (p.w_bf16) {
    GemmBf16(p, pfor);
    return;
  }
  const int64_t ldx = p.ldx ? p.ldx : p.k, ldy = p.ldy ? p.ldy : p.n;
  if (p.m == 1) {  // OpenBLAS's GEMV path streams the weights far better than GEMM at m = 1
    cblas_sgemv(CblasRowMajor, CblasNoTrans, static_cast<blasint>(p.n), static_cast<blasint>(p.k),
                1.0f, static_cast<const float*>(p.w), static_cast<blasint>(p.k), p.x, 1,
                p.accumulate ? 1.0f : 0.0f, p.y, 1);
    return;
  }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<blasint>(p.m),
              static_cast<blasint>(p.n), static_cast<blasint>(p.k), 1.0f, p.x,
              static_cast<blasint>(ldx), static_cast<const float*>(p.w), static_cast<blasint>(p.k),
              p.accumulate ? 1.0f : 0.0f, p.y, static_cast<blasint>(ldy));
}

void SetBlasThreads(int n) { openblas_set_num_threads(n); }

}  // namespace dsinfer::cpu

namespace dsinfer::cpu {

void MatMulF32(const float* a, int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc,
               int64_t m, int64_t n, int64_t k) {
  if (m <= 0 || n <= 0) return;
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<blasint>(m),
              static_cast<blasint>(n), static_cast<blasint>(k), 1.0f, a, static_cast<blasint>(lda),
              b, static_cast<blasint>(ldb), 0.0f, c, static_cast<blasint>(ldc));
}

}  // namespace dsinfer::cpu
