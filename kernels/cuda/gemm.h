// Dense GEMMs through cuBLAS in the row-major, HF-weight-layout convention of the CPU twin
// (kernels/cpu/linear.h): y[m, n] (+)= x[m, k] · w[n, k]^T, f32 accumulation. bf16 inputs use the
// tensor cores; f32 inputs (the MoE router) run in full f32 (no TF32).
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <cstdint>

namespace dsinfer::cuda {

enum class GemmType : int32_t { kF32, kBF16 };

struct GemmParams {
  const void* x = nullptr;  // [m, k] row stride ldx
  const void* w = nullptr;  // [n, k] row stride ldw
  void* y = nullptr;        // [m, n] row stride ldy
  int64_t m = 0, n = 0, k = 0;
  int64_t ldx = 0, ldw = 0, ldy = 0;  // 0: k, k, n
  GemmType x_type = GemmType::kBF16, w_type = GemmType::kBF16, y_type = GemmType::kF32;
  bool accumulate = false;  // y += x·w^T
};

cublasStatus_t Gemm(cublasHandle_t handle, const GemmParams& p);

// batch independent GEMMs, operands strided by stride_x / stride_w / stride_y elements:
// y_b[m, n] = x_b[m, k] · op(w_b), where op(w) = w^T for w [n, k] (w_transposed = true, as Gemm)
// or w for w [k, n] (w_transposed = false). bf16 in (y bf16 or f32) or all f32; f32 accumulation.
struct BatchedGemmParams {
  const void* x = nullptr;
  const void* w = nullptr;
  void* y = nullptr;
  int64_t m = 0, n = 0, k = 0, batch = 0;
  int64_t ldx = 0, ldw = 0, ldy = 0;
  int64_t stride_x = 0, stride_w = 0, stride_y = 0;
  bool w_transposed = true;
  GemmType xw_type = GemmType::kBF16;  // kF32: x, w and y all f32
  GemmType y_type = GemmType::kBF16;
};

cublasStatus_t BatchedGemm(cublasHandle_t handle, const BatchedGemmParams& p);

}  // namespace dsinfer::cuda
