// RMSNorm on the GPU, the twin of kernels/cpu/rmsnorm.h, with an optional fused residual add:
//   h = x (+ residual, written back to x);  y = h / sqrt(mean(h^2) + eps) * w  (f32 math).
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

namespace dsinfer::cuda {

struct RmsNormParams {
  float* x = nullptr;  // [rows, dim] row stride ldx; updated in place when residual is set
  const float* residual = nullptr;  // [rows, dim] row stride ld_res, added to x first; or nullptr
  const int32_t* row_index = nullptr;  // [rows] source row of output row r (a gather), or nullptr
  const float* w = nullptr;            // [dim]
  float* y_f32 = nullptr;              // [rows, dim] row stride ldy, or nullptr (may alias x)
  __nv_bfloat16* y_bf16 = nullptr;     // [rows, dim] row stride ldy_bf16, or nullptr
  int64_t rows = 0, dim = 0;
  int64_t ldx = 0, ld_res = 0, ldy = 0, ldy_bf16 = 0;  // 0 means dim
  float eps = 1e-6f;
};

cudaError_t RmsNorm(const RmsNormParams& p, cudaStream_t stream);

}  // namespace dsinfer::cuda
