#include "kernels/cuda/common.cuh"
#include "kernels/cuda/rmsnorm.h"

namespace dsinfer::cuda {
namespace {

constexpr int kThreads = 256;

__global__ void __launch_bounds__(kThreads) RmsNormKernel(RmsNormParams p) {
  __shared__ float scratch[32];
  const int64_t r = blockIdx.x;
  const int64_t src = p.row_index ? p.row_index[r] : r;
  float* x = p.x + src * p.ldx;
  float ss = 0.f;
  if (p.residual) {
    const float* res = p.residual + src * p.ld_res;
    for (int64_t i = threadIdx.x; i < p.dim; i += kThreads) {
      const float h = x[i] + res[i];
      x[i] = h;
      ss += h * h;
    }
  } else {
    for (int64_t i = threadIdx.x; i < p.dim; i += kThreads) ss += x[i] * x[i];
  }
  ss = BlockSum(ss, scratch);
  const float inv = 1.0f / sqrtf(ss / static_cast<float>(p.dim) + p.eps);
  float* yf = p.y_f32 ? p.y_f32 + r * p.ldy : nullptr;
  __nv_bfloat16* yb = p.y_bf16 ? p.y_bf16 + r * p.ldy_bf16 : nullptr;
  for (int64_t i = threadIdx.x; i < p.dim; i += kThreads) {
    const float v = x[i] * inv * p.w[i];
    if (yb) yb[i] = __float2bfloat16_rn(v);
    if (yf) yf[i] = v;  // after the read of x[i]: y may alias x
  }
}

}  // namespace

cudaError_t RmsNorm(const RmsNormParams& in, cudaStream_t stream) {
  if (in.rows <= 0) return cudaSuccess;
  RmsNormParams p = in;
  if (!p.ldx) p.ldx = p.dim;
  if (!p.ld_res) p.ld_res = p.dim;
  if (!p.ldy) p.ldy = p.dim;
  if (!p.ldy_bf16) p.ldy_bf16 = p.dim;
  if (p.residual && p.row_index) return cudaErrorInvalidValue;  // would add twice to shared rows
  RmsNormKernel<<<static_cast<unsigned>(p.rows), kThreads, 0, stream>>>(p);
  return cudaGetLastError();
}

}  // namespace dsinfer::cuda
