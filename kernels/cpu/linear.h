// Dense linear layers in Hugging Face weight layout: y[m, n] = x[m, k] · w[n, k]^T.
// f32 weights go to OpenBLAS sgemm. bf16 weights: x is rounded to bf16 and products are
// accumulated in f32 (bf16 storage, f32 accumulation) by AMX-BF16 tiles where the CPU has them
// (linear_amx.h), else a register-tiled kernel (AVX512-BF16 dot products, or AVX2 FMA) that
// streams each weight row once per L2-sized chunk of activations (Debian's OpenBLAS has no bf16
// GEMM). isa.h says which runs and how each orders its sums.
#pragma once

#include <cstdint>

#include "kernels/cpu/parallel.h"

namespace dsinfer::cpu {

struct LinearParams {
  const float* x;   // [m, k] row-major, row stride ldx (>= k)
  const void* w;    // [n, k] row-major (f32 or bf16)
  float* y;         // [m, n] row-major, row stride ldy (>= n)
  int64_t m, n, k;
  int64_t ldx = 0;  // 0 means k
  int64_t ldy = 0;  // 0 means n
  bool w_bf16 = false;
  bool accumulate = false;  // y += x·w^T instead of y = x·w^T
};

void Linear(const LinearParams& p, const ParallelFor& pfor);

// Sets the thread count OpenBLAS uses for its own GEMMs.
void SetBlasThreads(int n);

}  // namespace dsinfer::cpu

namespace dsinfer::cpu {

// c[m, n] = a[m, k] · b[k, n] in f32 (b not transposed), with row strides lda, ldb, ldc.
void MatMulF32(const float* a, int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc,
               int64_t m, int64_t n, int64_t k);

}  // namespace dsinfer::cpu
