// Small row-wise kernels of the forward pass: token embedding gather and the SwiGLU activation
// (twin of kernels/cpu/activation.h).
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

namespace dsinfer::cuda {

struct EmbeddingParams {
  const int32_t* tokens = nullptr;       // [rows] token ids (validated by the caller)
  const __nv_bfloat16* table = nullptr;  // [vocab, dim]
  float* out = nullptr;                  // [rows, dim]
  int64_t rows = 0, dim = 0;
};

cudaError_t EmbeddingGather(const EmbeddingParams& p, cudaStream_t stream);

struct SiluMulParams {
  const float* gate_up = nullptr;  // [rows, 2 * inter]: gate in [:, :inter], up in [:, inter:]
  __nv_bfloat16* out = nullptr;    // [rows, inter]: silu(gate) * up, rounded to bf16
  int64_t rows = 0, inter = 0;
};

cudaError_t SiluMul(const SiluMulParams& p, cudaStream_t stream);

// out[i] = bf16(in[i]), i < n.
cudaError_t CastF32ToBf16(const float* in, __nv_bfloat16* out, int64_t n, cudaStream_t stream);

}  // namespace dsinfer::cuda
