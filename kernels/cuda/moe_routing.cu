// MoE router, permutation and unpermute kernels (see moe.h).
#include <math_constants.h>

#include <climits>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/moe.h"

namespace dsinfer::cuda {
namespace {

// ---- Router: one warp per token, per-warp scratch in shared memory. ----
constexpr int kRouteWarps = 4;

struct Cand {
  float v;
  int32_t i;
};
// Descending value, ascending index on ties (the CPU twin's order).
__device__ __forceinline__ bool Better(Cand a, Cand b) {
  return a.v > b.v || (a.v == b.v && a.i < b.i);
}
__device__ __forceinline__ Cand WarpBest(Cand c) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    Cand d{__shfl_xor_sync(0xffffffffu, c.v, o), __shfl_xor_sync(0xffffffffu, c.i, o)};
    if (Better(d, c)) c = d;
  }
  return c;
}

__global__ void __launch_bounds__(kRouteWarps * 32) MoeRouteKernel(MoeRouteParams p) {
  __shared__ float s_score[kRouteWarps][kMoeMaxExperts];
  __shared__ float s_choice[kRouteWarps][kMoeMaxExperts];
  __shared__ unsigned char s_taken[kRouteWarps][kMoeMaxExperts];
  __shared__ unsigned char s_keep[kRouteWarps][32];
  __shared__ float s_group[kRouteWarps][32];
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int64_t t = static_cast<int64_t>(blockIdx.x) * kRouteWarps + warp;
  if (t >= p.tokens) return;
  const int E = static_cast<int>(p.n_experts);
  float* sc = s_score[warp];
  float* ch = s_choice[warp];
  unsigned char* taken = s_taken[warp];
  const float* lg = p.logits + t * E;

  if (p.scoring == MoeScoring::kSoftmax) {
    float mx = -CUDART_INF_F;
    for (int e = lane; e < E; e += 32) mx = fmaxf(mx, lg[e]);
    mx = WarpMax(mx);
    float sum = 0.f;
    for (int e = lane; e < E; e += 32) {
      const float v = expf(lg[e] - mx);
      sc[e] = v;
      sum += v;
    }
    sum = WarpSum(sum);
    for (int e = lane; e < E; e += 32) sc[e] = sc[e] / sum;
  } else {
    for (int e = lane; e < E; e += 32) sc[e] = 1.0f / (1.0f + expf(-lg[e]));
  }
  for (int e = lane; e < E; e += 32) {
    ch[e] = sc[e] + (p.bias ? p.bias[e] : 0.f);
    taken[e] = 0;
  }
  __syncwarp();

  const int G = static_cast<int>(p.n_group);
  if (G > 1) {
    const int per = E / G;
    if (lane < G) {
      const float* s = ch + lane * per;
      float a = -CUDART_INF_F, b = -CUDART_INF_F;
      for (int i = 0; i < per; ++i) {
        if (s[i] > a) {
          b = a;
          a = s[i];
        } else if (s[i] > b) {
          b = s[i];
        }
      }
      s_group[warp][lane] = p.group_score == MoeGroupScore::kMax ? a : (per > 1 ? a + b : a);
      s_keep[warp][lane] = 0;
    }
    __syncwarp();
    // Best topk_group groups, ties to the lower index (the CPU's stable sort).
    for (int k = 0; k < p.topk_group; ++k) {
      Cand c{-CUDART_INF_F, INT_MAX};
      if (lane < G && !s_keep[warp][lane]) c = {s_group[warp][lane], lane};
      c = WarpBest(c);
      if (lane == 0 && c.i < G) s_keep[warp][c.i] = 1;
      __syncwarp();
    }
    for (int e = lane; e < E; e += 32)
      if (!s_keep[warp][e / per]) ch[e] = -CUDART_INF_F;
    __syncwarp();
  }

  // Top-k by repeated warp argmax.
  const int K = static_cast<int>(p.top_k);
  int32_t ids[kMoeMaxTopK];
  for (int k = 0; k < K; ++k) {
    Cand c{-CUDART_INF_F, INT_MAX};
    for (int e = lane; e < E; e += 32) {
      Cand d{ch[e], e};
      if (!taken[e] && Better(d, c)) c = d;
    }
    c = WarpBest(c);
    ids[k] = c.i;
    if (lane == 0) taken[c.i] = 1;
    __syncwarp();
  }
  if (lane == 0) {
    float w[kMoeMaxTopK];
    float sum = 0.f;
    for (int k = 0; k < K; ++k) {
      w[k] = sc[ids[k]];
      sum += w[k];
    }
    const bool norm = p.normalize && K > 1;
    for (int k = 0; k < K; ++k) {
      if (norm) w[k] /= (sum + 1e-20f);
      if (!norm || p.scale_when_normalized) w[k] *= p.scale;
      p.topk_ids[t * K + k] = ids[k];
      p.topk_weights[t * K + k] = w[k];
    }
  }
}

// ---- Permutation: one CTA counts, scans and scatters. ----
constexpr int kPermuteThreads = 1024;

__global__ void __launch_bounds__(kPermuteThreads) MoePermuteKernel(MoePermuteParams p) {
  __shared__ int32_t s_count[kMoeMaxExperts];
  __shared__ int32_t s_off[kMoeMaxExperts];
  const int E = static_cast<int>(p.n_experts);
  const int64_t n = p.tokens * p.top_k;
  for (int e = threadIdx.x; e < E; e += kPermuteThreads) s_count[e] = 0;
  __syncthreads();
  for (int64_t i = threadIdx.x; i < n; i += kPermuteThreads) atomicAdd(&s_count[p.topk_ids[i]], 1);
  __syncthreads();
  if (threadIdx.x == 0) {
    int32_t off = 0, tiles = 0;
    for (int e = 0; e < E; ++e) {
      p.expert_offsets[e] = off;
      p.tile_offsets[e] = tiles;
      s_off[e] = off;
      off += s_count[e];
      tiles += (s_count[e] + static_cast<int32_t>(kGroupedTileM) - 1) /
               static_cast<int32_t>(kGroupedTileM);
    }
    p.expert_offsets[E] = off;
    p.tile_offsets[E] = tiles;
  }
  __syncthreads();
  if (p.expert_load) {
    for (int e = threadIdx.x; e < E; e += kPermuteThreads)
      p.expert_load[e] += static_cast<int64_t>(s_count[e]);
  }
  for (int64_t i = threadIdx.x; i < n; i += kPermuteThreads) {
    const int32_t pos = atomicAdd(&s_off[p.topk_ids[i]], 1);
    p.slot_of[i] = pos;
    p.row_token[pos] = static_cast<int32_t>(i / p.top_k);
  }
}

// ---- Unpermute: one CTA per token. ----
constexpr int kUnpermuteThreads = 256;

__global__ void __launch_bounds__(kUnpermuteThreads) MoeUnpermuteKernel(MoeUnpermuteParams p) {
  __shared__ int32_t s_slot[kMoeMaxTopK];
  __shared__ float s_w[kMoeMaxTopK];
  const int64_t t = blockIdx.x;
  const int K = static_cast<int>(p.top_k);
  if (threadIdx.x == 0) {
    // Ascending expert id, so a token's sum does not depend on the batch (as on the CPU).
    int32_t ids[kMoeMaxTopK], order[kMoeMaxTopK];
    for (int k = 0; k < K; ++k) {
      ids[k] = p.topk_ids[t * K + k];
      order[k] = k;
    }
    for (int a = 1; a < K; ++a)
      for (int b = a; b > 0 && ids[order[b]] < ids[order[b - 1]]; --b) {
        const int32_t tmp = order[b];
        order[b] = order[b - 1];
        order[b - 1] = tmp;
      }
    for (int k = 0; k < K; ++k) {
      s_slot[k] = p.slot_of[t * K + order[k]];
      s_w[k] = p.topk_weights[t * K + order[k]];
    }
  }
  __syncthreads();
  float* x = p.x + t * p.dim;
  for (int64_t d = threadIdx.x; d < p.dim; d += kUnpermuteThreads) {
    float acc = 0.f;
    for (int k = 0; k < K; ++k) acc += s_w[k] * p.y[static_cast<int64_t>(s_slot[k]) * p.dim + d];
    if (p.shared) acc += p.shared[t * p.dim + d];
    x[d] += acc;
  }
}

}  // namespace

cudaError_t MoeRoute(const MoeRouteParams& p, cudaStream_t stream) {
  if (p.tokens <= 0) return cudaSuccess;
  if (p.n_experts > kMoeMaxExperts || p.top_k > kMoeMaxTopK || p.top_k > p.n_experts ||
      p.n_group > 32 || p.n_group < 1 || p.n_experts % p.n_group != 0 || p.topk_group > p.n_group)
    return cudaErrorInvalidValue;
  const unsigned blocks = static_cast<unsigned>(CeilDiv(p.tokens, kRouteWarps));
  MoeRouteKernel<<<blocks, kRouteWarps * 32, 0, stream>>>(p);
  return cudaGetLastError();
}

cudaError_t MoePermute(const MoePermuteParams& p, cudaStream_t stream) {
  if (p.n_experts > kMoeMaxExperts) return cudaErrorInvalidValue;
  MoePermuteKernel<<<1, kPermuteThreads, 0, stream>>>(p);
  return cudaGetLastError();
}

cudaError_t MoeUnpermute(const MoeUnpermuteParams& p, cudaStream_t stream) {
  if (p.tokens <= 0) return cudaSuccess;
  if (p.top_k > kMoeMaxTopK) return cudaErrorInvalidValue;
  MoeUnpermuteKernel<<<static_cast<unsigned>(p.tokens), kUnpermuteThreads, 0, stream>>>(p);
  return cudaGetLastError();
}

}  // namespace dsinfer::cuda
