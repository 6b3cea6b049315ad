// GQA append and attention (see gqa_attention.h).
#include "kernels/cuda/gqa_attention.h"
#include "kernels/cuda/warp_attention.cuh"

namespace dsinfer::cuda {
namespace {

constexpr int kAppendThreads = 128;
constexpr int kWarps = 4;  // query heads per CTA

// Rotates the pair (x[i], x[i + half]) by pos * inv_freq[i] (f32, precise cos/sin, as the CPU).
__device__ __forceinline__ void RotateHalfPair(float* x, int64_t i, int64_t half, float pos,
                                               float inv_freq) {
  const float angle = pos * inv_freq;
  const float c = cosf(angle), s = sinf(angle);
  const float a = x[i], b = x[i + half];
  x[i] = a * c - b * s;
  x[i + half] = a * s + b * c;
}

__global__ void __launch_bounds__(kAppendThreads) GqaAppendKernel(GqaAppendParams p) {
  const int64_t t = blockIdx.x, hd = p.head_dim, half = hd / 2, kw = p.kv_heads * hd;
  const float pos = static_cast<float>(p.positions[t]);
  float* q = p.q + t * p.ld_q;
  for (int64_t w = threadIdx.x; w < p.heads * half; w += kAppendThreads)
    RotateHalfPair(q + (w / half) * hd, w % half, half, pos, p.inv_freq[w % half]);
  float* k = p.k + t * p.ld_k;
  const float* v = p.v + t * p.ld_v;
  __nv_bfloat16* dst = p.cache + static_cast<int64_t>(p.slots[t]) * 2 * kw;
  for (int64_t w = threadIdx.x; w < p.kv_heads * half; w += kAppendThreads) {
    const int64_t h = w / half, i = w % half;
    RotateHalfPair(k + h * hd, i, half, pos, p.inv_freq[i]);
    dst[h * hd + i] = __float2bfloat16_rn(k[h * hd + i]);
    dst[h * hd + i + half] = __float2bfloat16_rn(k[h * hd + i + half]);
  }
  for (int64_t e = threadIdx.x; e < kw; e += kAppendThreads)
    dst[kw + e] = __float2bfloat16_rn(v[e]);
}

__global__ void __launch_bounds__(kWarps * 32) GqaAttentionKernel(GqaAttentionParams p) {
  extern __shared__ float smem[];  // per warp: q [head_dim] | acc [head_dim]
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int64_t i = blockIdx.x, h = static_cast<int64_t>(blockIdx.y) * kWarps + warp;
  if (h >= p.heads) return;  // (no CTA-wide barrier below)
  const int hd = static_cast<int>(p.head_dim);
  const int64_t width = 2 * p.kv_heads * hd, g = h / (p.heads / p.kv_heads);
  float* qs = smem + warp * 2 * hd;
  float* acc = qs + hd;
  const float* q = p.q + i * p.ld_q + h * hd;
  for (int e = lane; e < hd; e += 32) {
    qs[e] = q[e];
    acc[e] = 0.f;
  }
  __syncwarp();
  const int32_t* table = p.block_tables + p.token_table[i];
  const int64_t n = static_cast<int64_t>(p.positions[i]) + 1;
  WarpSoftmaxState st;
  for (int64_t t = 0; t < n; ++t) {
    const __nv_bfloat16* row =
        p.cache +
        (static_cast<int64_t>(table[t / p.block_size]) * p.block_size + t % p.block_size) * width;
    const float s = WarpDot(qs, row + g * hd, hd, lane) * p.softmax_scale;
    WarpSoftmaxAdd(st, s, row + width / 2 + g * hd, acc, hd, lane);
  }
  __syncwarp();
  WarpSoftmaxStore(st, acc, p.out + i * p.ld_out + h * hd, hd, lane);
}

}  // namespace

cudaError_t GqaAppend(const GqaAppendParams& p, cudaStream_t stream) {
  if (p.tokens <= 0) return cudaSuccess;
  if (p.head_dim <= 0 || p.head_dim % 2 || p.kv_heads <= 0) return cudaErrorInvalidValue;
  GqaAppendKernel<<<static_cast<unsigned>(p.tokens), kAppendThreads, 0, stream>>>(p);
  return cudaGetLastError();
}

cudaError_t GqaAttention(const GqaAttentionParams& p, cudaStream_t stream) {
  if (p.tokens <= 0) return cudaSuccess;
  if (p.head_dim <= 0 || p.kv_heads <= 0 || p.heads % p.kv_heads || p.block_size <= 0)
    return cudaErrorInvalidValue;
  const size_t smem = static_cast<size_t>(kWarps) * 2 * p.head_dim * sizeof(float);
  if (smem > 48 * 1024) return cudaErrorInvalidValue;  // head_dim > 1536
  const dim3 grid(static_cast<unsigned>(p.tokens),
                  static_cast<unsigned>((p.heads + kWarps - 1) / kWarps));
  GqaAttentionKernel<<<grid, kWarps * 32, smem, stream>>>(p);
  return cudaGetLastError();
}

}  // namespace dsinfer::cuda
