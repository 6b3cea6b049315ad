#include "kernels/cuda/common.cuh"
#include "kernels/cuda/elementwise.h"

namespace dsinfer::cuda {
namespace {

constexpr int kThreads = 256;

__global__ void __launch_bounds__(kThreads) EmbeddingKernel(EmbeddingParams p) {
  const int64_t r = blockIdx.x;
  const __nv_bfloat16* src = p.table + static_cast<int64_t>(p.tokens[r]) * p.dim;
  float* dst = p.out + r * p.dim;
  for (int64_t i = threadIdx.x; i < p.dim; i += kThreads) dst[i] = Bf16ToF32(src[i]);
}

__global__ void __launch_bounds__(kThreads) SiluMulKernel(SiluMulParams p) {
  const int64_t r = blockIdx.x;
  const int64_t i = static_cast<int64_t>(blockIdx.y) * kThreads + threadIdx.x;
  if (i >= p.inter) return;
  const float* g = p.gate_up + r * 2 * p.inter;
  const float gv = g[i], uv = g[p.inter + i];
  p.out[r * p.inter + i] = __float2bfloat16_rn(gv / (1.0f + expf(-gv)) * uv);
}

__global__ void __launch_bounds__(kThreads)
    CastKernel(const float* in, __nv_bfloat16* out, int64_t n) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * kThreads)
    out[i] = __float2bfloat16_rn(in[i]);
}

}  // namespace

cudaError_t CastF32ToBf16(const float* in, __nv_bfloat16* out, int64_t n, cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  const unsigned blocks =
      static_cast<unsigned>(CeilDiv(n, kThreads) < 4096 ? CeilDiv(n, kThreads) : 4096);
  CastKernel<<<blocks, kThreads, 0, stream>>>(in, out, n);
  return cudaGetLastError();
}

cudaError_t EmbeddingGather(const EmbeddingParams& p, cudaStream_t stream) {
  if (p.rows <= 0) return cudaSuccess;
  EmbeddingKernel<<<static_cast<unsigned>(p.rows), kThreads, 0, stream>>>(p);
  return cudaGetLastError();
}

cudaError_t SiluMul(const SiluMulParams& p, cudaStream_t stream) {
  if (p.rows <= 0 || p.inter <= 0) return cudaSuccess;
  dim3 grid(static_cast<unsigned>(p.rows), static_cast<unsigned>(CeilDiv(p.inter, kThreads)));
  SiluMulKernel<<<grid, kThreads, 0, stream>>>(p);
  return cudaGetLastError();
}

}  // namespace dsinfer::cuda
