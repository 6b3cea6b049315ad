#include "kernels/cuda/common.cuh"
#include "kernels/cuda/rope.h"

namespace dsinfer::cuda {
namespace {

constexpr int kThreads = 128;

// Rotates the pair (a, b) by angle pos * inv_freq (f32, precise cos/sin as the CPU twin).
__device__ __forceinline__ void RotatePair(float pos, float inv_freq, float attn_factor, float& a,
                                           float& b) {
  const float angle = pos * inv_freq;
  const float c = cosf(angle) * attn_factor, s = sinf(angle) * attn_factor;
  const float x0 = a, x1 = b;
  a = x0 * c - x1 * s;
  b = x0 * s + x1 * c;
}

__global__ void __launch_bounds__(kThreads) RopeKernel(RopeParams p) {
  const int64_t r = blockIdx.x;
  const int64_t half = p.rope_dim / 2;
  const float pos = static_cast<float>(p.positions[r]);
  for (int64_t w = threadIdx.x; w < p.heads * half; w += kThreads) {
    const int64_t h = w / half, i = w % half;
    float* x = p.x + r * p.row_stride + h * p.head_stride + 2 * i;
    float a = x[0], b = x[1];
    RotatePair(pos, p.inv_freq[i], p.attn_factor, a, b);
    x[0] = a;
    x[1] = b;
  }
}

__global__ void __launch_bounds__(kThreads) MlaKvAppendKernel(MlaKvAppendParams p) {
  __shared__ float scratch[32];
  const int64_t t = blockIdx.x;
  const float* kv = p.kv + t * p.ld_kv;
  float ss = 0.f;
  for (int64_t i = threadIdx.x; i < p.kv_lora; i += kThreads) ss += kv[i] * kv[i];
  ss = BlockSum(ss, scratch);
  const float inv = 1.0f / sqrtf(ss / static_cast<float>(p.kv_lora) + p.eps);
  __nv_bfloat16* dst = p.cache + static_cast<int64_t>(p.slots[t]) * (p.kv_lora + p.rope);
  for (int64_t i = threadIdx.x; i < p.kv_lora; i += kThreads)
    dst[i] = __float2bfloat16_rn(kv[i] * inv * p.norm_w[i]);
  const float pos = static_cast<float>(p.positions[t]);
  for (int64_t i = threadIdx.x; i < p.rope / 2; i += kThreads) {
    float a = kv[p.kv_lora + 2 * i], b = kv[p.kv_lora + 2 * i + 1];
    RotatePair(pos, p.inv_freq[i], p.attn_factor, a, b);
    dst[p.kv_lora + 2 * i] = __float2bfloat16_rn(a);
    dst[p.kv_lora + 2 * i + 1] = __float2bfloat16_rn(b);
  }
}

__global__ void __launch_bounds__(kThreads) MlaQPrepKernel(MlaQPrepParams p) {
  const int64_t t = blockIdx.x;
  const int64_t qk = p.nope + p.rope, width = p.kv_lora + p.rope, half = p.rope / 2;
  const float* q = p.q + t * p.ldq;
  const float pos = static_cast<float>(p.positions[t]);
  for (int64_t w = threadIdx.x; p.q_nope && w < p.heads * p.nope; w += kThreads) {
    const int64_t h = w / p.nope, i = w % p.nope;
    p.q_nope[(t * p.heads + h) * p.nope + i] = __float2bfloat16_rn(q[h * qk + i]);
  }
  for (int64_t w = threadIdx.x; w < p.heads * half; w += kThreads) {
    const int64_t h = w / half, i = w % half;
    float a = q[h * qk + p.nope + 2 * i], b = q[h * qk + p.nope + 2 * i + 1];
    RotatePair(pos, p.inv_freq[i], p.attn_factor, a, b);
    const int64_t o = (t * p.heads + h) * width + p.kv_lora + 2 * i;
    if (p.q_attn_f32) {
      p.q_attn_f32[o] = a;
      p.q_attn_f32[o + 1] = b;
    } else {
      p.q_attn[o] = __float2bfloat16_rn(a);
      p.q_attn[o + 1] = __float2bfloat16_rn(b);
    }
  }
}

}  // namespace

cudaError_t Rope(const RopeParams& p, cudaStream_t stream) {
  if (p.rows <= 0) return cudaSuccess;
  if (p.rope_dim % 2) return cudaErrorInvalidValue;
  RopeKernel<<<static_cast<unsigned>(p.rows), kThreads, 0, stream>>>(p);
  return cudaGetLastError();
}

cudaError_t MlaKvAppend(const MlaKvAppendParams& p, cudaStream_t stream) {
  if (p.tokens <= 0) return cudaSuccess;
  if (p.rope % 2) return cudaErrorInvalidValue;
  MlaKvAppendKernel<<<static_cast<unsigned>(p.tokens), kThreads, 0, stream>>>(p);
  return cudaGetLastError();
}

cudaError_t MlaQPrep(const MlaQPrepParams& p, cudaStream_t stream) {
  if (p.tokens <= 0) return cudaSuccess;
  if (p.rope % 2) return cudaErrorInvalidValue;
  MlaQPrepKernel<<<static_cast<unsigned>(p.tokens), kThreads, 0, stream>>>(p);
  return cudaGetLastError();
}

}  // namespace dsinfer::cuda
