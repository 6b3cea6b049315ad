// Paged MLA attention kernels: tensor-core (512 + 64 layout), generic, and the split combine.
#include <math_constants.h>

#include <atomic>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/mla_attention.h"

namespace dsinfer::cuda {
namespace {

// ---------------------------------------------------------------------------------------------
// Tensor-core kernel. One CTA = one work item: a tile of 16*RG query rows against one split of
// keys, walked in tiles of 32 keys (half a 64-token block) through a two-stage cp.async pipeline.
// 8 warps: warp w serves row group w / (8/RG) (16 rows each); within a row group the warps split
// the scores by keys and the 512 output columns among themselves. Per key tile:
//   S = Q K^T (576 deep) -> row max shared through smem -> P = exp2(S - m) as bf16 in smem ->
//   O = O * alpha + P V (V = first 512 columns of K).
// ---------------------------------------------------------------------------------------------
namespace tc {

constexpr int kLat = 512, kRope = 64, kW = kLat + kRope;
constexpr int kPitch = kW + 8;  // smem row pitch (elements): 1168 bytes, ldmatrix conflict-free
constexpr int kTile = 32;       // keys per pipeline stage
constexpr int kPPitch = kTile + 8;
constexpr int kThreads = 256;
constexpr int kChunksPerRow = kW / 8;  // 16-byte chunks

template <int RG>
struct Cfg {
  static constexpr int kRows = 16 * RG;
  static constexpr int kWpr = 8 / RG;              // warps per row group
  static constexpr int kSw = kWpr < 4 ? kWpr : 4;  // of which compute scores
  static constexpr int kSnt = 4 / kSw;             // 8-key n-tiles of S per score warp
  static constexpr int kOnt = 64 / kWpr;           // 8-column n-tiles of O per warp
  static constexpr size_t kSmemQ = size_t(kRows) * kPitch * 2;
  static constexpr size_t kSmemK = size_t(2) * kTile * kPitch * 2;
  static constexpr size_t kSmemP = size_t(kRows) * kPPitch * 2;
  static constexpr size_t kSmemRed = size_t(2) * RG * 4 * 16 * 4;
  static constexpr size_t kSmem = kSmemQ + kSmemK + kSmemP + kSmemRed;
  static_assert(kOnt % 2 == 0 && kSnt >= 1 && kSnt <= 2);
};

template <int RG>
__global__ void __launch_bounds__(kThreads, 1) MlaTcKernel(MlaAttentionParams p) {
  using C = Cfg<RG>;
  extern __shared__ __align__(16) unsigned char smem[];
  __nv_bfloat16* sQ = reinterpret_cast<__nv_bfloat16*>(smem);
  __nv_bfloat16* sK = sQ + C::kRows * kPitch;
  __nv_bfloat16* sP = sK + 2 * kTile * kPitch;
  float* sMax = reinterpret_cast<float*>(sP + C::kRows * kPPitch);  // [RG][4][16]
  float* sSum = sMax + RG * 4 * 16;                                 // [RG][4][16]

  if (p.num_work_dev && static_cast<int>(blockIdx.x) >= *p.num_work_dev) return;
  const MlaWorkItem item = p.work[blockIdx.x];
  const MlaSeqDesc sd = p.seqs[item.seq];
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const int g = lane >> 2, q4 = lane & 3;
  const int rg = warp / C::kWpr, wr = warp % C::kWpr;
  const bool score_warp = wr < C::kSw;
  const int kv_begin = item.kv_begin, kv_end = item.kv_end;
  const int n_tiles = kv_end > kv_begin ? (kv_end - kv_begin + kTile - 1) / kTile : 0;
  const int32_t* table = p.block_tables + sd.table_offset;
  const int rows_valid = min(C::kRows, sd.n_rows - item.row0);
  const int bs = static_cast<int>(p.block_size);

  // Q tile (rows past the sequence's end are zero).
  for (int c = tid; c < C::kRows * kChunksPerRow; c += kThreads) {
    const int r = c / kChunksPerRow, col = (c % kChunksPerRow) * 8;
    const bool v = r < rows_valid;
    const __nv_bfloat16* src =
        p.q + static_cast<int64_t>(sd.q_row0 + item.row0 + (v ? r : 0)) * kW + col;
    CpAsync16(sQ + r * kPitch + col, src, v);
  }
  auto load_keys = [&](int tile, int stage) {
    const int t0 = kv_begin + tile * kTile;  // a whole key tile lies in one cache block
    const int64_t page = table[t0 / bs];
    const __nv_bfloat16* base = p.cache + (page * bs + t0 % bs) * kW;
    __nv_bfloat16* dst = sK + stage * kTile * kPitch;
    for (int c = tid; c < kTile * kChunksPerRow; c += kThreads) {
      const int j = c / kChunksPerRow, col = (c % kChunksPerRow) * 8;
      const bool v = t0 + j < kv_end;  // zero past the split: P is 0 there, V must not be NaN
      CpAsync16(dst + j * kPitch + col, base + (v ? j * kW : 0) + col, v);
    }
  };
  if (n_tiles > 0) load_keys(0, 0);
  CpAsyncCommit();
  if (n_tiles > 1) load_keys(1, 1);
  CpAsyncCommit();

  // Per thread: rows ra = rg*16 + g and ra + 8; their causal key limits.
  int lim[2];
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    const int r = rg * 16 + g + 8 * i;
    lim[i] = r < rows_valid
                 ? min(kv_end, sd.start_pos + (item.row0 + r) / static_cast<int>(p.heads) + 1)
                 : kv_end;
  }
  const float scale = p.softmax_scale * kLog2e;
  float o[C::kOnt][4];
#pragma unroll
  for (int n = 0; n < C::kOnt; ++n) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.f;
  float m_run[2] = {-CUDART_INF_F, -CUDART_INF_F};
  float l_run[2] = {0.f, 0.f};
  const int key_base = wr * C::kSnt * 8;  // this score warp's keys within a tile
  const int col_base = wr * C::kOnt * 8;  // this warp's output columns

  for (int it = 0; it < n_tiles; ++it) {
    if (it + 1 < n_tiles)
      CpAsyncWait<1>();
    else
      CpAsyncWait<0>();
    __syncthreads();
    const __nv_bfloat16* kt = sK + (it & 1) * kTile * kPitch;
    const int t0 = kv_begin + it * kTile;

    float s[C::kSnt][4];
    if (score_warp) {
#pragma unroll
      for (int j = 0; j < C::kSnt; ++j) s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.f;
#pragma unroll 4
      for (int kk = 0; kk < kW / 16; ++kk) {
        uint32_t a[4];
        Ldmatrix4(a, sQ + (rg * 16 + (lane & 15)) * kPitch + kk * 16 + (lane >> 4) * 8);
        if constexpr (C::kSnt == 2) {
          uint32_t b[4];
          Ldmatrix4(b, kt + (key_base + (lane & 7) + ((lane >> 4) << 3)) * kPitch + kk * 16 +
                           ((lane >> 3) & 1) * 8);
          MmaBf16(s[0], a, b[0], b[1]);
          MmaBf16(s[1], a, b[2], b[3]);
        } else {
          uint32_t b[2];
          Ldmatrix2(b, kt + (key_base + (lane & 7)) * kPitch + kk * 16 + ((lane >> 3) & 1) * 8);
          MmaBf16(s[0], a, b[0], b[1]);
        }
      }
      float mx[2] = {-CUDART_INF_F, -CUDART_INF_F};
#pragma unroll
      for (int j = 0; j < C::kSnt; ++j) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int key = t0 + key_base + j * 8 + 2 * q4 + (e & 1);
          const float v = key < lim[e >> 1] ? s[j][e] * scale : -CUDART_INF_F;
          s[j][e] = v;
          mx[e >> 1] = fmaxf(mx[e >> 1], v);
        }
      }
#pragma unroll
      for (int i = 0; i < 2; ++i) {
        mx[i] = fmaxf(mx[i], __shfl_xor_sync(0xffffffffu, mx[i], 1));
        mx[i] = fmaxf(mx[i], __shfl_xor_sync(0xffffffffu, mx[i], 2));
      }
      if (q4 == 0) {
        sMax[(rg * 4 + wr) * 16 + g] = mx[0];
        sMax[(rg * 4 + wr) * 16 + g + 8] = mx[1];
      }
    }
    __syncthreads();

    float alpha[2], base[2];
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      float m_new = m_run[i];
#pragma unroll
      for (int sw = 0; sw < C::kSw; ++sw)
        m_new = fmaxf(m_new, sMax[(rg * 4 + sw) * 16 + g + 8 * i]);
      // No finite score yet: nothing to rescale, and exp2(-inf - -inf) must not make NaN.
      alpha[i] = m_new == -CUDART_INF_F ? 1.f : exp2f(m_run[i] - m_new);
      base[i] = m_new == -CUDART_INF_F ? 0.f : m_new;
      m_run[i] = m_new;
    }
    if (score_warp) {
      float ls[2] = {0.f, 0.f};
#pragma unroll
      for (int j = 0; j < C::kSnt; ++j) {
        const float p0 = exp2f(s[j][0] - base[0]), p1 = exp2f(s[j][1] - base[0]);
        const float p2 = exp2f(s[j][2] - base[1]), p3 = exp2f(s[j][3] - base[1]);
        ls[0] += p0 + p1;
        ls[1] += p2 + p3;
        const int col = key_base + j * 8 + 2 * q4;
        *reinterpret_cast<uint32_t*>(sP + (rg * 16 + g) * kPPitch + col) = PackBf16x2(p0, p1);
        *reinterpret_cast<uint32_t*>(sP + (rg * 16 + g + 8) * kPPitch + col) = PackBf16x2(p2, p3);
      }
      l_run[0] = l_run[0] * alpha[0] + ls[0];
      l_run[1] = l_run[1] * alpha[1] + ls[1];
    }
    __syncthreads();

#pragma unroll
    for (int n = 0; n < C::kOnt; ++n) {
      o[n][0] *= alpha[0];
      o[n][1] *= alpha[0];
      o[n][2] *= alpha[1];
      o[n][3] *= alpha[1];
    }
#pragma unroll
    for (int ks = 0; ks < kTile / 16; ++ks) {
      uint32_t a[4];
      Ldmatrix4(a, sP + (rg * 16 + (lane & 15)) * kPPitch + ks * 16 + (lane >> 4) * 8);
#pragma unroll
      for (int np = 0; np < C::kOnt / 2; ++np) {
        uint32_t b[4];
        Ldmatrix4Trans(b, kt + (ks * 16 + (lane & 7) + (((lane >> 3) & 1) << 3)) * kPitch +
                              col_base + np * 16 + (lane >> 4) * 8);
        MmaBf16(o[2 * np], a, b[0], b[1]);
        MmaBf16(o[2 * np + 1], a, b[2], b[3]);
      }
    }
    __syncthreads();  // stage it & 1 and sP are free again
    if (it + 2 < n_tiles) {
      load_keys(it + 2, it & 1);
      CpAsyncCommit();
    }
  }
  CpAsyncWait<0>();

  // Row sums: each score warp holds a partial over its keys (all under the same running max).
  if (score_warp) {
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      l_run[i] += __shfl_xor_sync(0xffffffffu, l_run[i], 1);
      l_run[i] += __shfl_xor_sync(0xffffffffu, l_run[i], 2);
    }
    if (q4 == 0) {
      sSum[(rg * 4 + wr) * 16 + g] = l_run[0];
      sSum[(rg * 4 + wr) * 16 + g + 8] = l_run[1];
    }
  }
  __syncthreads();
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    const int r = rg * 16 + g + 8 * i;
    if (r >= rows_valid) continue;
    float l = 0.f;
#pragma unroll
    for (int sw = 0; sw < C::kSw; ++sw) l += sSum[(rg * 4 + sw) * 16 + g + 8 * i];
    const float inv = l > 0.f ? 1.f / l : 0.f;
    if (item.partial < 0) {
      __nv_bfloat16* dst =
          p.out + static_cast<int64_t>(sd.q_row0 + item.row0 + r) * kLat + col_base;
#pragma unroll
      for (int n = 0; n < C::kOnt; ++n) {
        *reinterpret_cast<uint32_t*>(dst + n * 8 + 2 * q4) =
            PackBf16x2(o[n][2 * i] * inv, o[n][2 * i + 1] * inv);
      }
    } else {
      float* dst =
          p.partial_out + (static_cast<int64_t>(item.partial) * C::kRows + r) * kLat + col_base;
#pragma unroll
      for (int n = 0; n < C::kOnt; ++n) {
        *reinterpret_cast<float2*>(dst + n * 8 + 2 * q4) =
            make_float2(o[n][2 * i] * inv, o[n][2 * i + 1] * inv);
      }
      if (wr == 0 && q4 == 0) {
        p.partial_lse[static_cast<int64_t>(item.partial) * C::kRows + r] =
            l > 0.f ? m_run[i] + log2f(l) : -CUDART_INF_F;
      }
    }
  }
}

template <int RG>
cudaError_t LaunchTc(const MlaAttentionParams& p, cudaStream_t stream) {
  MlaTcKernel<RG><<<static_cast<unsigned>(p.num_work), kThreads, Cfg<RG>::kSmem, stream>>>(p);
  return cudaGetLastError();
}

}  // namespace tc

// ---------------------------------------------------------------------------------------------
// Generic kernel: one CTA per (tile row, work item); any kv_lora <= 1024, any rope, any block
// size. Scores of 32 keys at a time (a warp per key, lanes across the width), online softmax,
// each thread accumulating a few output columns.
// ---------------------------------------------------------------------------------------------
namespace generic {

constexpr int kThreads = 128, kChunk = 32, kMaxPer = 8;

__global__ void __launch_bounds__(kThreads) MlaGenericKernel(MlaAttentionParams p) {
  extern __shared__ float gsm[];
  if (p.num_work_dev && static_cast<int>(blockIdx.y) >= *p.num_work_dev) return;
  const MlaWorkItem item = p.work[blockIdx.y];
  const MlaSeqDesc sd = p.seqs[item.seq];
  const int r = blockIdx.x;
  if (item.row0 + r >= sd.n_rows) return;
  const int64_t width = p.kv_lora + p.rope;
  const int64_t qrow = sd.q_row0 + item.row0 + r;
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  float* sq = gsm;
  float* ss = gsm + width;
  for (int64_t i = tid; i < width; i += kThreads)
    sq[i] = p.q_f32 ? p.q_f32[qrow * width + i] : Bf16ToF32(p.q[qrow * width + i]);
  const int32_t* table = p.block_tables + sd.table_offset;
  const int lim = min(item.kv_end, sd.start_pos + (item.row0 + r) / static_cast<int>(p.heads) + 1);
  const float scale = p.softmax_scale * kLog2e;
  const int64_t bs = p.block_size;
  float acc[kMaxPer];
#pragma unroll
  for (int k = 0; k < kMaxPer; ++k) acc[k] = 0.f;
  float m = -CUDART_INF_F, l = 0.f;
  __syncthreads();
  for (int t0 = item.kv_begin; t0 < lim; t0 += kChunk) {
    const int n = min(kChunk, lim - t0);
    for (int j = warp; j < n; j += kThreads / 32) {
      const int t = t0 + j;
      const __nv_bfloat16* row =
          p.cache + (static_cast<int64_t>(table[t / bs]) * bs + t % bs) * width;
      float d = 0.f;
      for (int64_t i = lane; i < width; i += 32) d += sq[i] * Bf16ToF32(row[i]);
      d = WarpSum(d);
      if (lane == 0) ss[j] = d * scale;
    }
    __syncthreads();
    float cmax = -CUDART_INF_F;
    for (int j = 0; j < n; ++j) cmax = fmaxf(cmax, ss[j]);
    const float m_new = fmaxf(m, cmax);
    const float alpha = exp2f(m - m_new);  // m == -inf: 0, and acc, l are 0 anyway
    l *= alpha;
#pragma unroll
    for (int k = 0; k < kMaxPer; ++k) acc[k] *= alpha;
    for (int j = 0; j < n; ++j) {
      const float pj = exp2f(ss[j] - m_new);
      l += pj;
      const int t = t0 + j;
      const __nv_bfloat16* row =
          p.cache + (static_cast<int64_t>(table[t / bs]) * bs + t % bs) * width;
#pragma unroll
      for (int k = 0; k < kMaxPer; ++k) {
        const int64_t d = tid + k * kThreads;
        if (d < p.kv_lora) acc[k] += pj * Bf16ToF32(row[d]);
      }
    }
    m = m_new;
    __syncthreads();
  }
  const float inv = l > 0.f ? 1.f / l : 0.f;
  if (item.partial < 0) {
#pragma unroll
    for (int k = 0; k < kMaxPer; ++k) {
      const int64_t d = tid + k * kThreads;
      if (d >= p.kv_lora) continue;
      if (p.out_f32)
        p.out_f32[qrow * p.kv_lora + d] = acc[k] * inv;
      else
        p.out[qrow * p.kv_lora + d] = __float2bfloat16_rn(acc[k] * inv);
    }
  } else {
    const int64_t prow = static_cast<int64_t>(item.partial) * p.tile_rows + r;
#pragma unroll
    for (int k = 0; k < kMaxPer; ++k) {
      const int64_t d = tid + k * kThreads;
      if (d < p.kv_lora) p.partial_out[prow * p.kv_lora + d] = acc[k] * inv;
    }
    if (tid == 0) p.partial_lse[prow] = l > 0.f ? m + log2f(l) : -CUDART_INF_F;
  }
}

}  // namespace generic

// Merges a tile's splits: out = sum_i w_i O_i with w_i = 2^(lse_i - max) / sum.
constexpr int kCombineThreads = 256;

__global__ void __launch_bounds__(kCombineThreads) MlaCombineKernel(MlaAttentionParams p) {
  __shared__ float sw[MlaMaxTileRows()][kMlaMaxSplits];
  if (p.num_combine_dev && static_cast<int>(blockIdx.x) >= *p.num_combine_dev) return;
  const MlaCombineItem ci = p.combine[blockIdx.x];
  const MlaSeqDesc sd = p.seqs[ci.seq];
  const int rows = min(p.tile_rows, sd.n_rows - ci.row0);
  const int ns = ci.num_splits;
  for (int r = threadIdx.x; r < rows; r += kCombineThreads) {
    float mx = -CUDART_INF_F;
    for (int s = 0; s < ns; ++s)
      mx = fmaxf(mx, p.partial_lse[static_cast<int64_t>(ci.first_partial + s) * p.tile_rows + r]);
    float sum = 0.f;
    for (int s = 0; s < ns; ++s) {
      const float lse = p.partial_lse[static_cast<int64_t>(ci.first_partial + s) * p.tile_rows + r];
      const float w = mx == -CUDART_INF_F ? 0.f : exp2f(lse - mx);
      sw[r][s] = w;
      sum += w;
    }
    const float inv = sum > 0.f ? 1.f / sum : 0.f;
    for (int s = 0; s < ns; ++s) sw[r][s] *= inv;
  }
  __syncthreads();
  const int64_t D = p.kv_lora;
  for (int64_t e = threadIdx.x; e < rows * D; e += kCombineThreads) {
    const int r = static_cast<int>(e / D);
    const int64_t d = e % D;
    float acc = 0.f;
    for (int s = 0; s < ns; ++s) {
      acc += sw[r][s] *
             p.partial_out[(static_cast<int64_t>(ci.first_partial + s) * p.tile_rows + r) * D + d];
    }
    const int64_t o = static_cast<int64_t>(sd.q_row0 + ci.row0 + r) * D + d;
    if (p.out_f32)
      p.out_f32[o] = acc;
    else
      p.out[o] = __float2bfloat16_rn(acc);
  }
}

}  // namespace

bool MlaTensorCoreSupported(int64_t kv_lora, int64_t rope, int64_t block_size, int device) {
  if (kv_lora != tc::kLat || rope != tc::kRope || block_size % tc::kTile != 0) return false;
  int major = 0, smem_optin = 0;
  if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess)
    return false;
  if (cudaDeviceGetAttribute(&smem_optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device) !=
      cudaSuccess)
    return false;
  return major >= 8 && static_cast<size_t>(smem_optin) >= tc::Cfg<4>::kSmem;
}

namespace {
// Set once the tensor-core kernels' shared-memory limits are raised (per process: one device).
std::atomic<bool> g_tc_prepared{false};
}  // namespace

cudaError_t MlaAttentionPrepare() {
  for (cudaError_t err :
       {cudaFuncSetAttribute(tc::MlaTcKernel<1>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                             static_cast<int>(tc::Cfg<1>::kSmem)),
        cudaFuncSetAttribute(tc::MlaTcKernel<2>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                             static_cast<int>(tc::Cfg<2>::kSmem)),
        cudaFuncSetAttribute(tc::MlaTcKernel<4>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                             static_cast<int>(tc::Cfg<4>::kSmem))})
    if (err != cudaSuccess) return err;
  g_tc_prepared.store(true);
  return cudaSuccess;
}

cudaError_t MlaAttention(const MlaAttentionParams& p, cudaStream_t stream) {
  if (p.num_work <= 0) return cudaSuccess;
  if (p.tile_rows > MlaMaxTileRows()) return cudaErrorInvalidValue;
  cudaError_t err = cudaSuccess;
  if (p.kernel == MlaKernel::kTensorCore) {
    if (p.q_f32 || p.out_f32) return cudaErrorInvalidValue;
    if (!g_tc_prepared.load()) {
      err = MlaAttentionPrepare();
      if (err != cudaSuccess) return err;
    }
    if (p.kv_lora != tc::kLat || p.rope != tc::kRope || p.block_size % tc::kTile != 0)
      return cudaErrorInvalidValue;
    switch (p.tile_rows) {
      case 16:
        err = tc::LaunchTc<1>(p, stream);
        break;
      case 32:
        err = tc::LaunchTc<2>(p, stream);
        break;
      case 64:
        err = tc::LaunchTc<4>(p, stream);
        break;
      default:
        return cudaErrorInvalidValue;
    }
  } else {
    if (p.kv_lora > generic::kThreads * generic::kMaxPer) return cudaErrorInvalidValue;
    const size_t smem = (p.kv_lora + p.rope + generic::kChunk) * sizeof(float);
    dim3 grid(static_cast<unsigned>(p.tile_rows), static_cast<unsigned>(p.num_work));
    generic::MlaGenericKernel<<<grid, generic::kThreads, smem, stream>>>(p);
    err = cudaGetLastError();
  }
  if (err != cudaSuccess || p.num_combine <= 0) return err;
  MlaCombineKernel<<<static_cast<unsigned>(p.num_combine), kCombineThreads, 0, stream>>>(p);
  return cudaGetLastError();
}

}  // namespace dsinfer::cuda
