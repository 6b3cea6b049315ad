// DeepSeek-V3's FP8 GEMM, the CPU twin of kernels/cuda/fp8_gemm.h (DeepSeek-V3 technical report
// §3.3, fine-grained quantization; the reference's act_quant / fp8_gemm; DeepGEMM's promotion):
//  - activations are quantised per row in 1 x 128 blocks: s = max(amax, 1e-4) / 448,
//    code = e4m3(x / s) (nearest even, saturating at ±448);
//  - weights are E4M3 codes with 128 x 128 block scales (scale_inv), as stored in checkpoints;
//  - the product sums code products in f32 within each 128-wide k-block, then "promotes" the
//    block sum into the f32 result scaled by a_scale * w_scale_inv:
//      y[i][j] = sum_b fma(sum_{k in b} a[i][k] * w[j][k], a_scale[i][b] * w_scale_inv[j / bn][b])
//    (blocks in ascending order; the scale product is formed first, as DeepGEMM does).
#pragma once

#include <cstdint>

#include "kernels/cpu/parallel.h"

namespace dsinfer::cpu {

inline constexpr int64_t kFp8ActBlock = 128;
inline constexpr float kFp8ActMinAmax = 1e-4f;  // the reference's floor under a block's amax

struct ActQuantFp8Params {
  const float* x = nullptr;  // [m, k] row stride ldx (>= k)
  uint8_t* q = nullptr;      // [m, k] out: E4M3 codes, row stride ldq (>= k)
  float* scale = nullptr;    // [m, ceil(k / block)] out: per-row block scales, row stride ld_scale
  int64_t m = 0, k = 0;
  int64_t ldx = 0, ldq = 0;  // 0 means k
  int64_t ld_scale = 0;      // 0 means ceil(k / block)
  int64_t block = kFp8ActBlock;
};

// The last block of a row may be partial; its amax covers only its own columns.
void ActQuantFp8(const ActQuantFp8Params& p);

struct Fp8BlockGemmParams {
  const uint8_t* a = nullptr;          // [m, k] E4M3 codes, row stride lda (>= k)
  const float* a_scale = nullptr;      // [m, ceil(k / block_k)] row stride ld_a_scale
  const uint8_t* w = nullptr;          // [n, k] E4M3 codes, row stride ldw (>= k)
  const float* w_scale_inv = nullptr;  // [ceil(n / block_n), ceil(k / block_k)], row stride
                                       // ld_w_scale
  float* y = nullptr;                  // [m, n] row stride ldy (>= n)
  int64_t m = 0, n = 0, k = 0;
  int64_t lda = 0, ldw = 0;   // 0 means k
  int64_t ld_a_scale = 0;     // 0 means ceil(k / block_k)
  int64_t ld_w_scale = 0;     // 0 means ceil(k / block_k)
  int64_t ldy = 0;            // 0 means n
  int64_t block_n = 128, block_k = 128;  // block_k is also the activation block
  bool accumulate = false;    // y += instead of y =
};

// Straight loops (the reference the GPU kernels are held to); threads split the n columns.
void Fp8BlockGemmRef(const Fp8BlockGemmParams& p, const ParallelFor& pfor);

}  // namespace dsinfer::cpu
