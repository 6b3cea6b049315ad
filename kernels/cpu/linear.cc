#include "kernels/cpu/linear.h"

#include <cblas.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels/cpu/blas_core.h"
#include "kernels/cpu/gemm_isa.h"
#include "kernels/cpu/isa.h"

namespace dsinfer::cpu {

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
#if defined(DSINFER_HAVE_AVX512_KERNELS)
    const CpuIsa isa = ActiveCpuIsa();
#if defined(DSINFER_HAVE_AMX_KERNELS)
    if (isa == CpuIsa::kAmxBf16) {
      avx512::GemmBf16Amx(p, pfor);
      return;
    }
#endif
    if (isa == CpuIsa::kAvx512Bf16) {
      avx512::GemmBf16(p, pfor);
      return;
    }
#endif
    avx2::GemmBf16(p, pfor);
    return;
  }
  EnsureBlasCore();
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
  EnsureBlasCore();
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<blasint>(m),
              static_cast<blasint>(n), static_cast<blasint>(k), 1.0f, a, static_cast<blasint>(lda),
              b, static_cast<blasint>(ldb), 0.0f, c, static_cast<blasint>(ldc));
}

}  // namespace dsinfer::cpu
