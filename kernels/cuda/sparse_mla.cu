// Sparse MLA (see sparse_mla.h): one warp per (token, head) over the token's selected rows.
#include "kernels/cuda/sparse_mla.h"
#include "kernels/cuda/warp_attention.cuh"

namespace dsinfer::cuda {
namespace {

constexpr int kWarps = 8;  // heads per CTA

__device__ __forceinline__ float LoadF(const float* q, int64_t i) { return q[i]; }
__device__ __forceinline__ float LoadF(const __nv_bfloat16* q, int64_t i) {
  return __bfloat162float(q[i]);
}

template <typename QT, typename OT>
__global__ void __launch_bounds__(kWarps * 32)
    SparseMlaKernel(SparseMlaParams p, const QT* q, OT* out) {
  extern __shared__ float smem[];  // per warp: q [width] | acc [kv_lora]
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int64_t i = blockIdx.x, h = static_cast<int64_t>(blockIdx.y) * kWarps + warp;
  if (h >= p.heads) return;  // (no CTA-wide barrier below)
  const int width = static_cast<int>(p.kv_lora + p.rope), kvl = static_cast<int>(p.kv_lora);
  float* qs = smem + warp * (width + kvl);
  float* acc = qs + width;
  const int64_t row = i * p.heads + h;
  for (int e = lane; e < width; e += 32) qs[e] = LoadF(q, row * width + e);
  for (int e = lane; e < kvl; e += 32) acc[e] = 0.f;
  __syncwarp();
  const int32_t* table = p.block_tables + p.token_table[i];
  const int32_t* sel = p.topk + i * p.ld_topk;
  WarpSoftmaxState st;
  for (int64_t j = 0; j < p.topk_count; ++j) {
    const int32_t t = sel[j];
    if (t < 0) break;
    const __nv_bfloat16* k =
        p.cache +
        (static_cast<int64_t>(table[t / p.block_size]) * p.block_size + t % p.block_size) * width;
    const float s = WarpDot(qs, k, width, lane) * p.softmax_scale;
    WarpSoftmaxAdd(st, s, k, acc, kvl, lane);
  }
  __syncwarp();
  WarpSoftmaxStore(st, acc, out + row * kvl, kvl, lane);
}

template <typename QT, typename OT>
cudaError_t Launch(const SparseMlaParams& p, const QT* q, OT* out, cudaStream_t stream) {
  const size_t smem = static_cast<size_t>(kWarps) * (2 * p.kv_lora + p.rope) * sizeof(float);
  if (smem > 48 * 1024) {
    const cudaError_t e =
        cudaFuncSetAttribute(SparseMlaKernel<QT, OT>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                             static_cast<int>(smem));
    if (e != cudaSuccess) return e;
  }
  const dim3 grid(static_cast<unsigned>(p.tokens),
                  static_cast<unsigned>((p.heads + kWarps - 1) / kWarps));
  SparseMlaKernel<QT, OT><<<grid, kWarps * 32, smem, stream>>>(p, q, out);
  return cudaGetLastError();
}

}  // namespace

cudaError_t SparseMlaAttention(const SparseMlaParams& p, cudaStream_t stream) {
  if (p.tokens <= 0 || p.heads <= 0) return cudaSuccess;
  if (p.block_size <= 0 || p.kv_lora <= 0 || (p.q == nullptr) == (p.q_f32 == nullptr) ||
      (p.out == nullptr) == (p.out_f32 == nullptr))
    return cudaErrorInvalidValue;
  if (p.q_f32 && p.out_f32) return Launch(p, p.q_f32, p.out_f32, stream);
  if (p.q_f32) return Launch(p, p.q_f32, p.out, stream);
  if (p.out_f32) return Launch(p, p.q, p.out_f32, stream);
  return Launch(p, p.q, p.out, stream);
}

}  // namespace dsinfer::cuda
