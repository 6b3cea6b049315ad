// One warp attends one query row over a list of keys (internal to kernels/cuda): the query and
// the running output live in the warp's slice of shared memory (lane l owns elements l + 32 e),
// scores are warp-reduced dot products and the softmax is the online one (Milakov &
// Gimelshein, 2018: running max m and sum l, the output rescaled when the max grows). f32
// throughout; keys and values are bf16 rows. Used by the sparse MLA and GQA kernels, whose
// CPU twins (cpu::MlaDecode, cpu::GqaAttention) compute the same softmax in two passes.
#pragma once

#include <cuda_bf16.h>

#include <cmath>

#include "kernels/cuda/common.cuh"

namespace dsinfer::cuda {

struct WarpSoftmaxState {
  float m = -INFINITY;  // running max of the scaled scores
  float l = 0.f;        // running sum of exp(score - m)
};

// q · k over `width` values (q f32 in shared memory, k bf16), summed over the warp.
__device__ __forceinline__ float WarpDot(const float* q, const __nv_bfloat16* k, int width,
                                         int lane) {
  float acc = 0.f;
  for (int e = lane; e < width; e += 32) acc += q[e] * __bfloat162float(k[e]);
  return WarpSum(acc);
}

// Adds one key of (scaled) score `s` with value row v[0:dim) to the warp's state and output.
__device__ __forceinline__ void WarpSoftmaxAdd(WarpSoftmaxState& st, float s,
                                               const __nv_bfloat16* v, float* acc, int dim,
                                               int lane) {
  const float m_new = fmaxf(st.m, s);
  const float alpha = expf(st.m - m_new);  // 0 for the first key (m = -inf)
  const float p = expf(s - m_new);
  st.l = st.l * alpha + p;
  st.m = m_new;
  for (int e = lane; e < dim; e += 32) acc[e] = acc[e] * alpha + p * __bfloat162float(v[e]);
}

__device__ __forceinline__ void StoreOut(float* out, int e, float v) { out[e] = v; }
__device__ __forceinline__ void StoreOut(__nv_bfloat16* out, int e, float v) {
  out[e] = __float2bfloat16_rn(v);
}

// out[0:dim) = acc / l (zeros when no key was seen).
template <typename OT>
__device__ __forceinline__ void WarpSoftmaxStore(const WarpSoftmaxState& st, const float* acc,
                                                 OT* out, int dim, int lane) {
  const float inv = st.l > 0.f ? 1.0f / st.l : 0.f;
  for (int e = lane; e < dim; e += 32) StoreOut(out, e, acc[e] * inv);
}

}  // namespace dsinfer::cuda
