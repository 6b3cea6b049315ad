// The lightning indexer's kernels (see dsa_indexer.h). The per-row transforms (LayerNorm,
// half-split RoPE, Hadamard rotation, act_quant) run one CTA per row with one thread per value,
// in the CPU twin's order of operations; scores are one warp per key; top-k is a radix select of
// the k-th largest score followed by an ordered compaction (ascending positions).
#include <cub/block/block_scan.cuh>

#include "kernels/cpu/dsa_indexer.h"
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/dsa_indexer.h"

namespace dsinfer::cuda {
namespace {

constexpr int kQuantBlock = 128;  // act_quant's block, cpu::kIndexQuantBlock

// Sum of one double per thread over the CTA (scratch: >= 32 doubles); every thread gets it.
__device__ double BlockSumD(double v, double* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = (blockDim.x + 31) >> 5;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  double t = 0;
  for (int w = 0; w < warps; ++w) t += scratch[w];  // in warp order: the same on every thread
  return t;
}

// x (shared, blockDim.x == dim values, thread d owns x[d]) -> rope_half, Hadamard * rot_scale,
// act_quant per 128 values: code of value d to codes[d], each block's scale to scales[block].
// amax_scratch holds dim / 32 floats.
__device__ void RotateAndQuantize(float* x, float* amax_scratch, int32_t pos, const float* inv_freq,
                                  int64_t rope, float attn_factor, float rot_scale, bool ue8m0,
                                  uint8_t* codes, float* scales) {
  const int d = threadIdx.x, dim = blockDim.x;
  const int half = static_cast<int>(rope / 2);
  __syncthreads();
  if (d < half) {
    const float angle = static_cast<float>(pos) * inv_freq[d];
    const float c = cosf(angle) * attn_factor, s = sinf(angle) * attn_factor;
    const float a = x[d], b = x[d + half];
    x[d] = a * c - b * s;
    x[d + half] = a * s + b * c;
  }
  // Walsh-Hadamard butterflies of stride 1, 2, 4, ... (Sylvester order, as the CPU twin).
  for (int h = 1; h < dim; h *= 2) {
    __syncthreads();
    if ((d & h) == 0) {
      const float a = x[d], b = x[d + h];
      x[d] = a + b;
      x[d + h] = a - b;
    }
  }
  __syncthreads();
  const float v = x[d] * rot_scale;
  const float amax = WarpMax(fabsf(v));
  if ((d & 31) == 0) amax_scratch[d >> 5] = amax;
  __syncthreads();
  const int blk = d / kQuantBlock, w0 = blk * (kQuantBlock / 32);
  const int w1 = min(w0 + kQuantBlock / 32, (dim + 31) / 32);
  float m = 0.f;
  for (int w = w0; w < w1; ++w) m = fmaxf(m, amax_scratch[w]);
  float s = __fmul_rn(fmaxf(m, 1e-4f), 1.0f / 448.0f);
  if (ue8m0) {
    // 2^ceil(log2(s)) from the bits (the reference's fast_round_scale).
    const uint32_t bits = __float_as_uint(s);
    const int32_t e =
        static_cast<int32_t>((bits >> 23) & 0xffu) - 127 + ((bits & 0x7fffffu) ? 1 : 0);
    s = __uint_as_float(static_cast<uint32_t>(e + 127) << 23);
  }
  codes[d] = EncodeE4M3(fminf(fmaxf(__fdiv_rn(v, s), -448.0f), 448.0f));
  if (d % kQuantBlock == 0) scales[blk] = s;
}

__global__ void IndexKeyAppendKernel(IndexKeyAppendParams p, int64_t row_bytes) {
  extern __shared__ float smem[];  // x [dim] | amax [dim / 32]
  __shared__ double red[32];
  float* x = smem;
  const int64_t t = blockIdx.x;
  const int d = threadIdx.x, dim = blockDim.x;
  const float v = p.k[t * p.ld_k + d];
  // LayerNorm with the CPU's double sums and biased variance.
  const float mean = static_cast<float>(BlockSumD(v, red) / dim);
  const float dv = v - mean;
  const double sq = BlockSumD(static_cast<double>(dv) * dv, red);
  const float rstd = 1.0f / sqrtf(static_cast<float>(sq / dim) + p.eps);
  x[d] = dv * rstd * p.norm_w[d] + p.norm_b[d];
  uint8_t* row = p.cache + static_cast<int64_t>(p.slots[t]) * row_bytes;
  __shared__ float scales[8];
  RotateAndQuantize(x, smem + dim, p.positions[t], p.inv_freq, p.rope, p.attn_factor, p.rot_scale,
                    p.ue8m0, row, scales);
  __syncthreads();
  if (d < (dim + kQuantBlock - 1) / kQuantBlock) reinterpret_cast<float*>(row + dim)[d] = scales[d];
}

__global__ void IndexQueryPrepKernel(IndexQueryPrepParams p) {
  extern __shared__ float smem[];  // x [dim] | amax [dim / 32]
  __shared__ float scales[8];
  float* x = smem;
  const int64_t t = blockIdx.x, h = blockIdx.y;
  const int d = threadIdx.x, dim = blockDim.x;
  x[d] = p.q[t * p.ld_q + h * dim + d];
  RotateAndQuantize(x, smem + dim, p.positions[t], p.inv_freq, p.rope, p.attn_factor, p.rot_scale,
                    p.ue8m0, p.q_codes + (t * p.heads + h) * dim, scales);
  __syncthreads();
  if (d == 0) {
    const float w = p.w[t * p.ld_w + h];
    p.head_weights[t * p.heads + h] =
        __fmul_rn(__fmul_rn(__fmul_rn(w, p.head_scale), scales[0]), p.softmax_scale);
  }
}

constexpr int kScoreWarps = 8;

// One warp per key: lane l holds the key's values 4l .. 4l + 3 (dim == 128).
__global__ void __launch_bounds__(kScoreWarps * 32)
    IndexScoresKernel(IndexScoresParams p, int64_t row_bytes) {
  extern __shared__ float smem[];  // q [heads, 128] decoded | w [heads]
  const int64_t i = blockIdx.x;
  const int H = static_cast<int>(p.heads);
  float* q = smem;
  float* w = smem + H * 128;
  for (int e = threadIdx.x; e < H * 128; e += blockDim.x)
    q[e] = DecodeE4M3(p.q_codes[i * H * 128 + e]);
  for (int h = threadIdx.x; h < H; h += blockDim.x) w[h] = p.head_weights[i * H + h];
  __syncthreads();
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int64_t n = static_cast<int64_t>(p.positions[i]) + 1;
  const int32_t* table = p.block_tables + p.token_table[i];
  const int64_t stride = static_cast<int64_t>(gridDim.y) * kScoreWarps;
  for (int64_t t = static_cast<int64_t>(blockIdx.y) * kScoreWarps + warp; t < n; t += stride) {
    const uint8_t* row = p.cache + (static_cast<int64_t>(table[t / p.block_size]) * p.block_size +
                                    t % p.block_size) *
                                       row_bytes;
    const uint32_t codes = reinterpret_cast<const uint32_t*>(row)[lane];
    const float k0 = DecodeE4M3(codes & 0xffu), k1 = DecodeE4M3((codes >> 8) & 0xffu);
    const float k2 = DecodeE4M3((codes >> 16) & 0xffu), k3 = DecodeE4M3(codes >> 24);
    float sum = 0.f;
    for (int h = 0; h < H; ++h) {
      const float4 qv = reinterpret_cast<const float4*>(q + h * 128)[lane];
      float dot = qv.x * k0;
      dot += qv.y * k1;
      dot += qv.z * k2;
      dot += qv.w * k3;
      dot = WarpSum(dot);
      sum += fmaxf(dot, 0.f) * w[h];
    }
    if (lane == 0)
      p.scores[i * p.ld_scores + t] = sum * reinterpret_cast<const float*>(row + 128)[0];
  }
}

// Larger float -> larger unsigned key (-0 is read as +0, as the CPU's == compares them).
__device__ __forceinline__ uint32_t OrderKey(float v) {
  const uint32_t u = __float_as_uint(v + 0.0f);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

constexpr int kTopKThreads = 512;

__global__ void __launch_bounds__(kTopKThreads) IndexTopKKernel(IndexTopKParams p) {
  using Scan = cub::BlockScan<int, kTopKThreads>;
  __shared__ typename Scan::TempStorage scan_tmp;
  __shared__ int hist[256];
  __shared__ uint32_t s_prefix;
  __shared__ int s_remaining;
  const int64_t i = blockIdx.x, K = p.k;
  const int64_t n = static_cast<int64_t>(p.positions[i]) + 1;
  const float* sc = p.scores + i * p.ld_scores;
  int32_t* out = p.out + i * p.ld_out;
  const int tid = threadIdx.x;
  for (int64_t j = min(n, K) + tid; j < K; j += kTopKThreads) out[j] = -1;
  if (n <= K) {
    for (int64_t j = tid; j < n; j += kTopKThreads) out[j] = static_cast<int32_t>(j);
    return;
  }
  // Radix select, 8 bits a pass from the top: the K-th largest key and how many keys equal to
  // it are still to be taken.
  uint32_t prefix = 0, mask = 0;
  int remaining = static_cast<int>(K);
  for (int shift = 24; shift >= 0; shift -= 8) {
    for (int j = tid; j < 256; j += kTopKThreads) hist[j] = 0;
    __syncthreads();
    for (int64_t j = tid; j < n; j += kTopKThreads) {
      const uint32_t u = OrderKey(sc[j]);
      if ((u & mask) == prefix) atomicAdd(&hist[(u >> shift) & 0xffu], 1);
    }
    __syncthreads();
    if (tid == 0) {
      int above = 0, digit = 255;
      for (; digit > 0; --digit) {
        if (above + hist[digit] >= remaining) break;
        above += hist[digit];
      }
      s_prefix = prefix | (static_cast<uint32_t>(digit) << shift);
      s_remaining = remaining - above;
    }
    __syncthreads();
    prefix = s_prefix;
    remaining = s_remaining;
    mask |= 0xffu << shift;
  }
  // Keys above the threshold, and the first `remaining` equal to it by position, in order.
  int eq_base = 0, out_base = 0;
  for (int64_t c0 = 0; c0 < n; c0 += kTopKThreads) {
    const int64_t j = c0 + tid;
    const uint32_t u = j < n ? OrderKey(sc[j]) : 0u;
    const int eq = j < n && u == prefix, gt = j < n && u > prefix;
    int eq_pre, eq_total, sel_pre, sel_total;
    Scan(scan_tmp).ExclusiveSum(eq, eq_pre, eq_total);
    __syncthreads();
    const int sel = gt || (eq && eq_base + eq_pre < remaining);
    Scan(scan_tmp).ExclusiveSum(sel, sel_pre, sel_total);
    __syncthreads();
    if (sel) out[out_base + sel_pre] = static_cast<int32_t>(j);
    eq_base += eq_total;
    out_base += sel_total;
  }
}

bool ValidDim(int64_t dim) { return dim >= 32 && dim <= 1024 && (dim & (dim - 1)) == 0; }

}  // namespace

cudaError_t IndexKeyAppend(const IndexKeyAppendParams& p, cudaStream_t stream) {
  if (p.tokens <= 0) return cudaSuccess;
  if (!ValidDim(p.dim) || p.rope > p.dim || p.rope % 2) return cudaErrorInvalidValue;
  const size_t smem = (p.dim + p.dim / 32) * sizeof(float);
  IndexKeyAppendKernel<<<static_cast<unsigned>(p.tokens), static_cast<unsigned>(p.dim), smem,
                         stream>>>(p, cpu::IndexKeyRowBytes(p.dim));
  return cudaGetLastError();
}

cudaError_t IndexQueryPrep(const IndexQueryPrepParams& p, cudaStream_t stream) {
  if (p.tokens <= 0 || p.heads <= 0) return cudaSuccess;
  if (!ValidDim(p.dim) || p.dim > kQuantBlock || p.rope > p.dim || p.rope % 2)
    return cudaErrorInvalidValue;  // one scale per head (the CPU twin's w_h folds it in)
  const size_t smem = (p.dim + p.dim / 32) * sizeof(float);
  const dim3 grid(static_cast<unsigned>(p.tokens), static_cast<unsigned>(p.heads));
  IndexQueryPrepKernel<<<grid, static_cast<unsigned>(p.dim), smem, stream>>>(p);
  return cudaGetLastError();
}

cudaError_t IndexScores(const IndexScoresParams& p, cudaStream_t stream) {
  if (p.tokens <= 0) return cudaSuccess;
  if (p.dim != 128 || p.heads <= 0 || p.splits < 1) return cudaErrorInvalidValue;
  const size_t smem = static_cast<size_t>(p.heads) * (128 + 1) * sizeof(float);
  if (smem > 48 * 1024) {
    const cudaError_t e = cudaFuncSetAttribute(
        IndexScoresKernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem));
    if (e != cudaSuccess) return e;
  }
  const dim3 grid(static_cast<unsigned>(p.tokens), static_cast<unsigned>(p.splits));
  IndexScoresKernel<<<grid, kScoreWarps * 32, smem, stream>>>(p, cpu::IndexKeyRowBytes(128));
  return cudaGetLastError();
}

cudaError_t IndexTopK(const IndexTopKParams& p, cudaStream_t stream) {
  if (p.tokens <= 0 || p.k <= 0) return cudaSuccess;
  IndexTopKKernel<<<static_cast<unsigned>(p.tokens), kTopKThreads, 0, stream>>>(p);
  return cudaGetLastError();
}

}  // namespace dsinfer::cuda
