// Block-scaled FP8 E4M3 weights, DeepSeek-V3 style: a [rows, cols] matrix of E4M3 codes plus an
// F32 `weight_scale_inv` of shape [ceil(rows / block_n), ceil(cols / block_k)], with
//   w[i][j] = e4m3(q[i][j]) * scale_inv[i / block_n][j / block_k]
// (edge blocks are partial when a dimension is not a multiple of the block size). E4M3 codes are
// encoded and decoded by kernels/cpu/fp8.h (header-only), the same code the FP8 kernels use.
#pragma once

#include <cstdint>
#include <vector>

namespace dsinfer {

struct Fp8BlockQuantized {
  std::vector<uint8_t> codes;    // [rows, cols]
  std::vector<float> scale_inv;  // [scale_rows, scale_cols]
  int64_t scale_rows = 0, scale_cols = 0;
};

inline int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Quantises w ([rows, cols], row-major) with one scale per block: scale_inv = amax / 448, so
// each block's largest magnitude maps to E4M3's largest finite value. All-zero blocks get 1.
Fp8BlockQuantized QuantizeFp8Blockwise(const float* w, int64_t rows, int64_t cols,
                                       int64_t block_n = 128, int64_t block_k = 128);

// Dequantises rows [row_begin, row_end) of a block-scaled matrix; out receives those rows
// contiguously. `codes` and `scale_inv` (F32) point at the whole tensors and may be unaligned.
void DequantizeFp8BlockRows(const uint8_t* codes, const uint8_t* scale_inv, int64_t cols,
                            int64_t block_n, int64_t block_k, int64_t row_begin, int64_t row_end,
                            float* out);

}  // namespace dsinfer
