#include "src/weights/fp8_block.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/cpu/fp8.h"

namespace dsinfer {

Fp8BlockQuantized QuantizeFp8Blockwise(const float* w, int64_t rows, int64_t cols, int64_t block_n,
                                       int64_t block_k) {
  Fp8BlockQuantized q;
  q.scale_rows = CeilDiv(rows, block_n);
  q.scale_cols = CeilDiv(cols, block_k);
  q.codes.resize(static_cast<size_t>(rows * cols));
  q.scale_inv.resize(static_cast<size_t>(q.scale_rows * q.scale_cols));
  for (int64_t br = 0; br < q.scale_rows; ++br) {
    int64_t r0 = br * block_n, r1 = std::min(rows, r0 + block_n);
    for (int64_t bc = 0; bc < q.scale_cols; ++bc) {
      int64_t c0 = bc * block_k, c1 = std::min(cols, c0 + block_k);
      float amax = 0.0f;
      for (int64_t i = r0; i < r1; ++i) {
        for (int64_t j = c0; j < c1; ++j) amax = std::max(amax, std::fabs(w[i * cols + j]));
      }
      float scale = amax > 0.0f ? amax / 448.0f : 1.0f;
      q.scale_inv[br * q.scale_cols + bc] = scale;
      for (int64_t i = r0; i < r1; ++i) {
        for (int64_t j = c0; j < c1; ++j)
          q.codes[i * cols + j] = cpu::F32ToE4M3(w[i * cols + j] / scale);
      }
    }
  }
  return q;
}

void DequantizeFp8BlockRows(const uint8_t* codes, const uint8_t* scale_inv, int64_t cols,
                            int64_t block_n, int64_t block_k, int64_t row_begin, int64_t row_end,
                            float* out) {
  const int64_t scale_cols = CeilDiv(cols, block_k);
  for (int64_t i = row_begin; i < row_end; ++i) {
    const uint8_t* scale_row = scale_inv + (i / block_n) * scale_cols * sizeof(float);
    const uint8_t* src = codes + i * cols;
    float* dst = out + (i - row_begin) * cols;
    for (int64_t bc = 0; bc < scale_cols; ++bc) {
      float s;
      std::memcpy(&s, scale_row + bc * sizeof(float), sizeof(float));
      int64_t j1 = std::min(cols, (bc + 1) * block_k);
      for (int64_t j = bc * block_k; j < j1; ++j) dst[j] = cpu::E4M3ToF32(src[j]) * s;
    }
  }
}

}  // namespace dsinfer
