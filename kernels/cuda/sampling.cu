#include <math_constants.h>

#include <cub/block/block_reduce.cuh>
#include <cub/block/block_scan.cuh>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/sampling.h"

namespace dsinfer::cuda {
namespace {

constexpr int kThreads = 1024;
static_assert(kThreads == kSampleMaxCandidates, "one candidate per thread in the sort");

__global__ void __launch_bounds__(256) PenaltyKernel(SampleParams p) {
  const int64_t r = blockIdx.x;
  const SampleRowParams rp = p.row_params[r];
  float* l = p.logits + r * p.ld;
  for (int32_t i = p.penalty_offsets[r] + threadIdx.x; i < p.penalty_offsets[r + 1];
       i += blockDim.x) {
    const int32_t t = p.penalty_tokens[i];
    if (t < 0 || t >= p.vocab) continue;
    float v = l[t];
    if (rp.repetition_penalty != 1.f)
      v = v > 0 ? v / rp.repetition_penalty : v * rp.repetition_penalty;
    const int32_t c = p.penalty_counts[i];
    if (c > 0) v -= rp.frequency_penalty * static_cast<float>(c) + rp.presence_penalty;
    l[t] = v;
  }
}

// Larger float -> larger key.
__device__ __forceinline__ uint32_t OrderKey(float f) {
  const uint32_t u = __float_as_uint(f);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

struct MaxOp {
  __device__ float operator()(float a, float b) const { return fmaxf(a, b); }
};

struct ArgMax {
  float v;
  int32_t i;
};
struct ArgMaxOp {
  __device__ ArgMax operator()(const ArgMax& a, const ArgMax& b) const {
    return (b.v > a.v || (b.v == a.v && b.i < a.i)) ? b : a;
  }
};

using BlockScanInt = cub::BlockScan<int, kThreads>;
using BlockScanDouble = cub::BlockScan<double, kThreads>;
using BlockReduceArg = cub::BlockReduce<ArgMax, kThreads>;
using BlockReduceFloat = cub::BlockReduce<float, kThreads>;

__global__ void __launch_bounds__(kThreads) SampleKernel(SampleParams p) {
  __shared__ union {
    typename BlockScanInt::TempStorage scan_int;
    typename BlockScanDouble::TempStorage scan_double;
    typename BlockReduceArg::TempStorage reduce_arg;
    typename BlockReduceFloat::TempStorage reduce_float;
  } tmp;
  __shared__ unsigned long long s_cand[kThreads];
  __shared__ float s_e[kThreads];
  __shared__ int s_hist[256];
  __shared__ int s_int[4];
  __shared__ uint32_t s_prefix;
  __shared__ float s_float;
  __shared__ double s_double;

  const int64_t r = blockIdx.x;
  const int tid = threadIdx.x;
  const SampleRowParams rp = p.row_params[r];
  const float* l = p.logits + r * p.ld;
  const int V = static_cast<int>(p.vocab);

  if (rp.temperature == 0.f) {
    ArgMax best{-CUDART_INF_F, INT_MAX};
    for (int i = tid; i < V; i += kThreads) best = ArgMaxOp()(best, ArgMax{l[i], i});
    best = BlockReduceArg(tmp.reduce_arg).Reduce(best, ArgMaxOp());
    if (tid == 0) p.out_tokens[r] = best.i;
    return;
  }
  const float inv_t = 1.0f / rp.temperature;
  const bool top_k_on = rp.top_k > 0 && rp.top_k < V;

  if (!top_k_on && rp.top_p >= 1.0f && V > kSampleMaxCandidates) {
    // Whole vocabulary in index order (min-p is a threshold relative to the top probability).
    float mx = -CUDART_INF_F;
    for (int i = tid; i < V; i += kThreads) mx = fmaxf(mx, l[i]);
    mx = BlockReduceFloat(tmp.reduce_float).Reduce(mx, MaxOp());
    if (tid == 0) s_float = mx;
    __syncthreads();
    mx = s_float;
    const float cutoff = rp.min_p;  // min_p * exp(0)
    double part = 0.0;
    for (int i = tid; i < V; i += kThreads) {
      const float e = expf((l[i] - mx) * inv_t);
      if (e >= cutoff) part += e;
    }
    __syncthreads();
    double total = 0.0;
    BlockScanDouble(tmp.scan_double).InclusiveSum(part, part, total);
    const double target = rp.uniform * total;
    if (tid == 0) {
      s_int[0] = INT_MAX;
      s_double = 0.0;  // carry
    }
    __syncthreads();
    int last_kept = -1;
    for (int base = 0; base < V; base += kThreads) {
      const int i = base + tid;
      float e = 0.f;
      if (i < V) {
        e = expf((l[i] - mx) * inv_t);
        if (e < cutoff)
          e = 0.f;
        else
          last_kept = i;
      }
      double incl, chunk_total;
      __syncthreads();
      BlockScanDouble(tmp.scan_double).InclusiveSum(static_cast<double>(e), incl, chunk_total);
      const double carry = s_double;
      if (e > 0.f && target < carry + incl && target >= carry + incl - e) atomicMin(&s_int[0], i);
      __syncthreads();
      if (tid == 0) s_double = carry + chunk_total;
      __syncthreads();
      if (s_int[0] != INT_MAX) break;
    }
    // Rounding left nothing picked: the last kept token (the CPU's fallback is its last too).
    if (s_int[0] == INT_MAX) {
      if (tid == 0) s_int[1] = -1;
      __syncthreads();
      atomicMax(&s_int[1], last_kept);
      __syncthreads();
      if (tid == 0) p.out_tokens[r] = s_int[1];
    } else if (tid == 0) {
      p.out_tokens[r] = s_int[0];
    }
    return;
  }

  // Candidates: the `cand` largest (logit desc, index asc), by MSB-first radix select.
  const int want = top_k_on ? rp.top_k : V;
  const int cand = want < kSampleMaxCandidates ? want : static_cast<int>(kSampleMaxCandidates);
  if (tid == 0) {
    s_prefix = 0;
    s_int[0] = cand;  // remaining to take at the current prefix
  }
  uint32_t mask = 0;
  for (int shift = 24; shift >= 0; shift -= 8) {
    for (int b = tid; b < 256; b += kThreads) s_hist[b] = 0;
    __syncthreads();
    const uint32_t prefix = s_prefix;
    for (int i = tid; i < V; i += kThreads) {
      const uint32_t key = OrderKey(l[i]);
      if ((key & mask) == prefix) atomicAdd(&s_hist[(key >> shift) & 255], 1);
    }
    __syncthreads();
    if (tid == 0) {
      int remaining = s_int[0], above = 0, b = 255;
      for (; b > 0; --b) {
        if (above + s_hist[b] >= remaining) break;
        above += s_hist[b];
      }
      s_int[0] = remaining - above;
      s_prefix = prefix | (static_cast<uint32_t>(b) << shift);
    }
    mask |= 255u << shift;
    __syncthreads();
  }
  const uint32_t thr = s_prefix;
  const int ties = s_int[0];  // elements equal to thr to take, lowest indices first
  const int n_gt = cand - ties;
  s_cand[tid] = 0ull;
  if (tid == 0) s_int[1] = 0;
  __syncthreads();
  for (int i = tid; i < V; i += kThreads) {
    const uint32_t key = OrderKey(l[i]);
    if (key > thr) {
      const int slot = atomicAdd(&s_int[1], 1);
      s_cand[slot] =
          (static_cast<unsigned long long>(key) << 32) | (0xffffffffu - static_cast<uint32_t>(i));
    }
  }
  int taken = 0;
  for (int base = 0; base < V && taken < ties; base += kThreads) {
    const int i = base + tid;
    const int flag = (i < V && OrderKey(l[i]) == thr) ? 1 : 0;
    int pos, chunk;
    __syncthreads();
    BlockScanInt(tmp.scan_int).ExclusiveSum(flag, pos, chunk);
    if (flag && taken + pos < ties)
      s_cand[n_gt + taken + pos] =
          (static_cast<unsigned long long>(thr) << 32) | (0xffffffffu - static_cast<uint32_t>(i));
    taken += chunk;
  }
  __syncthreads();
  // Bitonic sort, descending (padding zeros sink to the end).
  for (int k = 2; k <= kThreads; k <<= 1) {
    for (int j = k >> 1; j > 0; j >>= 1) {
      const int ixj = tid ^ j;
      if (ixj > tid) {
        const unsigned long long a = s_cand[tid], b = s_cand[ixj];
        const bool desc = (tid & k) == 0;
        if (desc ? a < b : a > b) {
          s_cand[tid] = b;
          s_cand[ixj] = a;
        }
      }
      __syncthreads();
    }
  }
  auto index_of = [&](int c) {
    return static_cast<int>(0xffffffffu - static_cast<uint32_t>(s_cand[c] & 0xffffffffull));
  };
  const float mx = l[index_of(0)];
  if (tid < cand) s_e[tid] = expf((l[index_of(tid)] - mx) * inv_t);
  __syncthreads();
  if (tid == 0) {
    int n = cand;
    double sum = 0.0;
    for (int i = 0; i < n; ++i) sum += s_e[i];
    if (rp.top_p < 1.0f) {
      double cum = 0.0;
      int keep = 0;
      while (keep < n) {
        cum += s_e[keep] / sum;
        ++keep;
        if (cum >= rp.top_p) break;
      }
      n = keep;
    }
    if (rp.min_p > 0.0f) {
      const float cutoff = rp.min_p * s_e[0];
      int keep = 1;
      while (keep < n && s_e[keep] >= cutoff) ++keep;
      n = keep;
    }
    double total = 0.0;
    for (int i = 0; i < n; ++i) total += s_e[i];
    const double u = rp.uniform * total;
    double cum = 0.0;
    int token = index_of(n - 1);
    for (int i = 0; i < n; ++i) {
      cum += s_e[i];
      if (u < cum) {
        token = index_of(i);
        break;
      }
    }
    p.out_tokens[r] = token;
  }
}

}  // namespace

cudaError_t SampleTokens(const SampleParams& p, cudaStream_t stream) {
  if (p.rows <= 0) return cudaSuccess;
  if (p.vocab <= 0 || p.vocab > INT32_MAX) return cudaErrorInvalidValue;
  if (p.penalty_offsets) {
    PenaltyKernel<<<static_cast<unsigned>(p.rows), 256, 0, stream>>>(p);
    cudaError_t err = cudaGetLastError();
    if (err != cudaSuccess) return err;
  }
  SampleKernel<<<static_cast<unsigned>(p.rows), kThreads, 0, stream>>>(p);
  return cudaGetLastError();
}

}  // namespace dsinfer::cuda
