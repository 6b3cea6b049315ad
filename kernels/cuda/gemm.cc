#include "kernels/cuda/gemm.h"

namespace dsinfer::cuda {
namespace {

cudaDataType_t DataType(GemmType t) { return t == GemmType::kF32 ? CUDA_R_32F : CUDA_R_16BF; }

}  // namespace

// Row-major y = x · w^T is column-major y^T = w^T(col-major [k, n] read transposed) · x^T.
cublasStatus_t Gemm(cublasHandle_t handle, const GemmParams& p) {
  if (p.m <= 0 || p.n <= 0) return CUBLAS_STATUS_SUCCESS;
  const int64_t ldx = p.ldx ? p.ldx : p.k, ldw = p.ldw ? p.ldw : p.k, ldy = p.ldy ? p.ldy : p.n;
  const float alpha = 1.0f, beta = p.accumulate ? 1.0f : 0.0f;
  return cublasGemmEx(handle, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(p.n),
                      static_cast<int>(p.m), static_cast<int>(p.k), &alpha, p.w, DataType(p.w_type),
                      static_cast<int>(ldw), p.x, DataType(p.x_type), static_cast<int>(ldx), &beta,
                      p.y, DataType(p.y_type), static_cast<int>(ldy), CUBLAS_COMPUTE_32F,
                      CUBLAS_GEMM_DEFAULT);
}

cublasStatus_t BatchedGemm(cublasHandle_t handle, const BatchedGemmParams& p) {
  if (p.m <= 0 || p.n <= 0 || p.batch <= 0) return CUBLAS_STATUS_SUCCESS;
  const float alpha = 1.0f, beta = 0.0f;
  return cublasGemmStridedBatchedEx(
      handle, p.w_transposed ? CUBLAS_OP_T : CUBLAS_OP_N, CUBLAS_OP_N, static_cast<int>(p.n),
      static_cast<int>(p.m), static_cast<int>(p.k), &alpha, p.w, DataType(p.xw_type),
      static_cast<int>(p.ldw), p.stride_w, p.x, DataType(p.xw_type), static_cast<int>(p.ldx),
      p.stride_x, &beta, p.y, p.xw_type == GemmType::kF32 ? CUDA_R_32F : DataType(p.y_type), static_cast<int>(p.ldy), p.stride_y,
      static_cast<int>(p.batch), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
}

}  // namespace dsinfer::cuda
