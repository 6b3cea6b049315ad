// Linear layers on block-scaled FP8 E4M3 weights (DeepSeek-V3 checkpoints), without
// dequantising the whole tensor: y[m, n] (+)= x[m, k] · W^T with
//   W[i][j] = e4m3(w[i][j]) * scale_inv[i / block_n][j / block_k]
// (edge blocks partial). Each thread dequantises a tile of its weight rows into scratch and runs
// cpu::Linear's register-tiled kernel on it (kernels/cpu/linear_tile.h), so:
//   round_bf16 = false: weights dequantised exactly in f32, x in f32, f32 accumulation — equal
//     to cpu::Linear (f32) on the dequantised matrix up to summation order;
//   round_bf16 = true: each dequantised weight and x rounded to bf16 (nearest even), f32
//     accumulation — bit-identical to cpu::Linear(w_bf16) on the bf16-rounded dequantised matrix
//     (DeepSeek's reference with gemm_impl = "bf16": weight_dequant, then a bf16 GEMM).
// Threads split the weight rows (n). Any m, n, k, block sizes >= 1.
#pragma once

#include <cstdint>

#include "kernels/cpu/parallel.h"

namespace dsinfer::cpu {

struct Fp8LinearParams {
  const float* x = nullptr;          // [m, k] row stride ldx (>= k)
  const uint8_t* w = nullptr;        // [n, k] E4M3 codes, row stride ldw (>= k)
  const float* scale_inv = nullptr;  // [ceil(n / block_n), ceil(k / block_k)] row stride ld_scale
  float* y = nullptr;                // [m, n] row stride ldy (>= n)
  int64_t m = 0, n = 0, k = 0;
  int64_t ldx = 0;       // 0 means k
  int64_t ldw = 0;       // 0 means k (a column slice of a wider matrix: its first column must
                         // start a block, and scale_inv / ld_scale must be sliced to match)
  int64_t ld_scale = 0;  // 0 means ceil(k / block_k)
  int64_t ldy = 0;       // 0 means n
  int64_t block_n = 128, block_k = 128;
  bool round_bf16 = false;
  bool accumulate = false;  // y += x·W^T instead of y = x·W^T
};

void LinearFp8(const Fp8LinearParams& p, const ParallelFor& pfor);

}  // namespace dsinfer::cpu
