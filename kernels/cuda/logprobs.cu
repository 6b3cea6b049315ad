#include <cfloat>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/logprobs.h"

namespace dsinfer::cuda {
namespace {

constexpr int kThreads = 256;

// Block-wide reduction of (value, index): larger value first, smaller index on ties.
struct Best {
  float v;
  int32_t i;
};
__device__ __forceinline__ Best Better(Best a, Best b) {
  return (b.v > a.v || (b.v == a.v && b.i < a.i)) ? b : a;
}

__device__ Best BlockBest(Best b, Best* shared) {
  for (int o = 16; o > 0; o /= 2) {
    Best other{__shfl_down_sync(0xffffffffu, b.v, o), __shfl_down_sync(0xffffffffu, b.i, o)};
    b = Better(b, other);
  }
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) shared[warp] = b;
  __syncthreads();
  if (warp == 0) {
    b = lane < kThreads / 32 ? shared[lane] : Best{-FLT_MAX, INT32_MAX};
    for (int o = 16; o > 0; o /= 2) {
      Best other{__shfl_down_sync(0xffffffffu, b.v, o), __shfl_down_sync(0xffffffffu, b.i, o)};
      b = Better(b, other);
    }
    if (lane == 0) shared[0] = b;
  }
  __syncthreads();
  b = shared[0];
  __syncthreads();
  return b;
}

__device__ float BlockSum(float v, float* shared) {
  for (int o = 16; o > 0; o /= 2) v += __shfl_down_sync(0xffffffffu, v, o);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = lane < kThreads / 32 ? shared[lane] : 0.f;
    for (int o = 16; o > 0; o /= 2) v += __shfl_down_sync(0xffffffffu, v, o);
    if (lane == 0) shared[0] = v;
  }
  __syncthreads();
  v = shared[0];
  __syncthreads();
  return v;
}

__global__ void __launch_bounds__(kThreads) LogprobsKernel(LogprobsParams p) {
  __shared__ Best best_shared[kThreads / 32];
  __shared__ float sum_shared[kThreads / 32];
  __shared__ int32_t taken[kLogprobsMaxTop];
  const int64_t e = blockIdx.x;
  const float* row = p.logits + static_cast<int64_t>(p.rows[e]) * p.ld;
  Best b{-FLT_MAX, INT32_MAX};
  for (int64_t j = threadIdx.x; j < p.vocab; j += kThreads)
    b = Better(b, Best{row[j], static_cast<int32_t>(j)});
  const Best top = BlockBest(b, best_shared);
  float s = 0.f;
  for (int64_t j = threadIdx.x; j < p.vocab; j += kThreads) s += expf(row[j] - top.v);
  const float lse = top.v + logf(BlockSum(s, sum_shared));
  if (threadIdx.x == 0) p.chosen_logprob[e] = row[p.chosen[e]] - lse;
  for (int32_t k = 0; k < p.top_n; ++k) {
    Best c{-FLT_MAX, INT32_MAX};
    for (int64_t j = threadIdx.x; j < p.vocab; j += kThreads) {
      bool used = false;
      for (int32_t q = 0; q < k; ++q) used |= taken[q] == j;
      if (!used) c = Better(c, Best{row[j], static_cast<int32_t>(j)});
    }
    c = BlockBest(c, best_shared);
    if (threadIdx.x == 0) {
      taken[k] = c.i;
      p.top_ids[e * p.top_n + k] = c.i;
      p.top_logprobs[e * p.top_n + k] = c.v - lse;
    }
    __syncthreads();
  }
}

}  // namespace

cudaError_t Logprobs(const LogprobsParams& p, cudaStream_t stream) {
  if (p.n <= 0) return cudaSuccess;
  if (p.top_n < 0 || p.top_n > kLogprobsMaxTop || p.top_n > p.vocab) return cudaErrorInvalidValue;
  LogprobsKernel<<<static_cast<unsigned>(p.n), kThreads, 0, stream>>>(p);
  return cudaGetLastError();
}

}  // namespace dsinfer::cuda
