// Grouped GEMM over MoE experts (see moe.h): C[rows of e] = A[rows of e] · W_e^T, bf16 in,
// f32 accumulation with mma.sync m16n8k16. CTA tile 64 x 128 x 32, 4 warps (2 x 2, 32 x 64 each),
// three cp.async stages. The m-tile -> expert map is read from tile_offsets on the device, so the
// launch needs no host knowledge of the routing (no sync, CUDA-graph friendly); CTAs past the last
// tile exit at once.
#include <algorithm>
#include <cstring>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/moe.h"

namespace dsinfer::cuda {
namespace {

constexpr int kBM = static_cast<int>(kGroupedTileM), kBN = 128, kBK = 32;
constexpr int kPitch = kBK + 8;  // 80-byte rows: ldmatrix conflict-free
constexpr int kStages = 3;
constexpr int kThreads = 128;
constexpr int kStageElems = (kBM + kBN) * kPitch;
constexpr int kEpiPitch = kBN + 4;
static_assert(kBM * kEpiPitch * 4 <= kStages * kStageElems * 2, "epilogue tile fits the stages");

template <GroupedEpilogue kEpi>
__global__ void __launch_bounds__(kThreads) GroupedGemmKernel(GroupedGemmParams p) {
  __shared__ __align__(16) __nv_bfloat16 smem[kStages * kStageElems];
  const int by = blockIdx.y;
  const int total_tiles = p.tile_offsets[p.n_experts];
  if (by >= total_tiles) return;
  int lo = 0, hi = static_cast<int>(p.n_experts);
  while (lo < hi) {  // largest e with tile_offsets[e] <= by
    const int mid = (lo + hi + 1) >> 1;
    if (p.tile_offsets[mid] <= by)
      lo = mid;
    else
      hi = mid - 1;
  }
  const int e = lo;
  const int row_begin = p.expert_offsets[e] + (by - p.tile_offsets[e]) * kBM;
  const int row_end = min(p.expert_offsets[e + 1], row_begin + kBM);
  const int n0 = blockIdx.x * kBN;
  const int64_t K = p.k, N = p.n;
  const __nv_bfloat16* w = p.w + static_cast<int64_t>(e) * N * K;

  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const int wm = warp >> 1, wn = warp & 1;
  const int g = lane >> 2, q4 = lane & 3;

  // Rows this thread loads: A rows tid/4 and tid/4 + 32, B rows tid/4 + 32 i; chunk tid % 4.
  const int chunk = tid & 3;
  const __nv_bfloat16* a_src[2];
  bool a_ok[2];
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    const int pr = row_begin + (tid >> 2) + 32 * i;
    a_ok[i] = pr < row_end;
    const int64_t src = a_ok[i] ? (p.a_row_index ? p.a_row_index[pr] : pr) : 0;
    a_src[i] = p.a + src * p.lda + chunk * 8;
  }
  const __nv_bfloat16* b_src[4];
  bool b_ok[4];
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int64_t nr = n0 + (tid >> 2) + 32 * i;
    b_ok[i] = nr < N;
    b_src[i] = w + (b_ok[i] ? nr : 0) * K + chunk * 8;
  }
  auto load = [&](int kt, int stage) {
    __nv_bfloat16* sA = smem + stage * kStageElems;
    __nv_bfloat16* sB = sA + kBM * kPitch;
    const int64_t k0 = static_cast<int64_t>(kt) * kBK;
    const bool k_ok = k0 + chunk * 8 < K;
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      const bool v = a_ok[i] && k_ok;
      CpAsync16(sA + ((tid >> 2) + 32 * i) * kPitch + chunk * 8, v ? a_src[i] + k0 : p.a, v);
    }
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const bool v = b_ok[i] && k_ok;
      CpAsync16(sB + ((tid >> 2) + 32 * i) * kPitch + chunk * 8, v ? b_src[i] + k0 : p.w, v);
    }
  };

  float acc[2][8][4];
#pragma unroll
  for (int i = 0; i < 2; ++i)
#pragma unroll
    for (int j = 0; j < 8; ++j) acc[i][j][0] = acc[i][j][1] = acc[i][j][2] = acc[i][j][3] = 0.f;

  const int KT = static_cast<int>((K + kBK - 1) / kBK);
#pragma unroll
  for (int s = 0; s < kStages - 1; ++s) {
    if (s < KT) load(s, s);
    CpAsyncCommit();
  }
  for (int kt = 0; kt < KT; ++kt) {
    CpAsyncWait<kStages - 2>();
    __syncthreads();
    if (kt + kStages - 1 < KT) load(kt + kStages - 1, (kt + kStages - 1) % kStages);
    CpAsyncCommit();
    const __nv_bfloat16* sA = smem + (kt % kStages) * kStageElems;
    const __nv_bfloat16* sB = sA + kBM * kPitch;
#pragma unroll
    for (int kk = 0; kk < kBK / 16; ++kk) {
      uint32_t a[2][4];
#pragma unroll
      for (int i = 0; i < 2; ++i)
        Ldmatrix4(a[i], sA + (wm * 32 + i * 16 + (lane & 15)) * kPitch + kk * 16 + (lane >> 4) * 8);
#pragma unroll
      for (int jp = 0; jp < 4; ++jp) {
        uint32_t b[4];
        Ldmatrix4(b, sB + (wn * 64 + jp * 16 + (lane & 7) + ((lane >> 4) << 3)) * kPitch + kk * 16 +
                         ((lane >> 3) & 1) * 8);
#pragma unroll
        for (int i = 0; i < 2; ++i) {
          MmaBf16(acc[i][2 * jp], a[i], b[0], b[1]);
          MmaBf16(acc[i][2 * jp + 1], a[i], b[2], b[3]);
        }
      }
    }
  }
  CpAsyncWait<0>();

  if constexpr (kEpi == GroupedEpilogue::kStoreF32) {
#pragma unroll
    for (int i = 0; i < 2; ++i) {
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int pr = row_begin + wm * 32 + i * 16 + g + 8 * h;
        if (pr >= row_end) continue;
        float* c = p.c + static_cast<int64_t>(pr) * p.ldc;
#pragma unroll
        for (int j = 0; j < 8; ++j) {
          const int64_t col = n0 + wn * 64 + j * 8 + 2 * q4;
          if (col < N) c[col] = acc[i][j][2 * h];
          if (col + 1 < N) c[col + 1] = acc[i][j][2 * h + 1];
        }
      }
    }
  } else {
    // Stage the f32 tile in smem, then pair gate column c with up column w + c of this block.
    __syncthreads();
    float* t = reinterpret_cast<float*>(smem);
#pragma unroll
    for (int i = 0; i < 2; ++i)
#pragma unroll
      for (int h = 0; h < 2; ++h)
#pragma unroll
        for (int j = 0; j < 8; ++j) {
          const int r = wm * 32 + i * 16 + g + 8 * h, c = wn * 64 + j * 8 + 2 * q4;
          t[r * kEpiPitch + c] = acc[i][j][2 * h];
          t[r * kEpiPitch + c + 1] = acc[i][j][2 * h + 1];
        }
    __syncthreads();
    const int64_t inter = N / 2;
    const int64_t feat0 = static_cast<int64_t>(blockIdx.x) * (kBN / 2);
    const int wblk = static_cast<int>(inter - feat0 < kBN / 2 ? inter - feat0 : kBN / 2);
    for (int idx = tid; idx < kBM * wblk; idx += kThreads) {
      const int r = idx / wblk, c = idx % wblk;
      const int pr = row_begin + r;
      if (pr >= row_end) continue;
      const float gv = t[r * kEpiPitch + c], uv = t[r * kEpiPitch + wblk + c];
      p.act[static_cast<int64_t>(pr) * p.ldc + feat0 + c] =
          __float2bfloat16_rn(gv / (1.0f + expf(-gv)) * uv);
    }
  }
}

}  // namespace

cudaError_t GroupedGemm(const GroupedGemmParams& p, cudaStream_t stream) {
  if (p.max_tiles <= 0 || p.n <= 0) return cudaSuccess;
  if (p.k % 8 != 0 || p.lda % 8 != 0 || p.max_tiles > 65535) return cudaErrorInvalidValue;
  if (p.epilogue == GroupedEpilogue::kSiluMul && p.n % 2 != 0) return cudaErrorInvalidValue;
  dim3 grid(static_cast<unsigned>(CeilDiv(p.n, kBN)), static_cast<unsigned>(p.max_tiles));
  if (p.epilogue == GroupedEpilogue::kStoreF32) {
    GroupedGemmKernel<GroupedEpilogue::kStoreF32><<<grid, kThreads, 0, stream>>>(p);
  } else {
    GroupedGemmKernel<GroupedEpilogue::kSiluMul><<<grid, kThreads, 0, stream>>>(p);
  }
  return cudaGetLastError();
}

void InterleaveGateUp(const uint16_t* gate, const uint16_t* up, int64_t inter, int64_t k,
                      uint16_t* dst) {
  const int64_t blk = kBN / 2;
  for (int64_t f0 = 0; f0 < inter; f0 += blk) {
    const int64_t w = std::min(blk, inter - f0);
    uint16_t* out = dst + 2 * f0 * k;
    std::memcpy(out, gate + f0 * k, static_cast<size_t>(w * k) * 2);
    std::memcpy(out + w * k, up + f0 * k, static_cast<size_t>(w * k) * 2);
  }
}

}  // namespace dsinfer::cuda
