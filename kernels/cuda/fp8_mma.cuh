// The FP8 block-scaled GEMM kernel behind Fp8Gemm and Fp8GroupedGemm (internal to kernels/cuda).
//
// Design: DeepSeek-V3's fine-grained quantization (report §3.3) with DeepGEMM's promotion. A CTA
// computes a 64 x 128 tile of C; a k-step is one 128-wide scale block (128 bytes of E4M3 per row),
// staged with cp.async in a 3-deep ring together with the 64 activation scales and the weight
// scale(s) of that block. Eight warps (2 x 4, 32 x 32 each) run mma.sync m16n8k32 E4M3 into a
// block accumulator that starts at zero for each k-block; after the block the tile is promoted:
// total = fma(block, a_scale[row] * w_scale[col], total) in f32 on the CUDA cores. The tensor
// cores thus only ever sum 128 products (DeepSeek-V3's remedy for their limited FP8 accumulation
// precision), and the scales are applied once per block, exactly as the CPU twin
// (cpu::Fp8BlockGemmRef) does; results differ from it only by summation order.
//
// mma.m16n8k32 with 8-bit operands has the byte layout of m16n8k16 with 16-bit ones (A: rows g,
// g + 8, bytes 4q..4q+3 and 16+4q..; B: column g, the same bytes), so ldmatrix .b16 loads the
// fragments from rows of 32 bytes exactly as the bf16 kernels load rows of 16 elements.
// Shared rows are 144 bytes apart (9 x 16): ldmatrix's eight 16-byte row reads hit distinct banks.
// Only sm_89+ has FP8 MMA: below that the kernel body is compiled out and the host side refuses
// (Fp8GemmSupported).
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/cuda/common.cuh"

namespace dsinfer::cuda::fp8mma {

constexpr int kBM = 64, kBN = 128, kBK = 128;  // kBK bytes = one 128-wide scale block
constexpr int kPitch = kBK + 16;
constexpr int kThreads = 256;
constexpr int kStages = 3;
constexpr int kStageBytes = (kBM + kBN) * kPitch;
constexpr int kScalePitch = kBM + 4;  // per stage: 64 activation scales, 2 weight scales, pad
constexpr int kSmemBytes = kStages * kStageBytes + kStages * kScalePitch * 4;
constexpr int kEpiPitch = kBN + 4;  // f32 tile staged for the SiLU epilogue
static_assert(kBM * kEpiPitch * 4 <= kStages * kStageBytes, "epilogue tile fits the stages");
static_assert(kStageBytes % 16 == 0 && kPitch % 16 == 0, "cp.async / ldmatrix alignment");

enum class Epi : int32_t {
  kF32,      // c[row, col] (+)= acc
  kBf16,     // c_bf16[row, col] = bf16(acc)
  kPartial,  // partial[split, row, col] = acc (dense split-k; summed by a second kernel)
  kSiluMul,  // act[row, j] = bf16(silu(gate_j) * up_j), gate/up interleaved in 64-row blocks
};

struct Args {
  const uint8_t* a;            // [*, k] E4M3 codes, row stride lda
  const float* a_scale;        // [*, ceil(k / 128)] row stride ld_a_scale
  const int32_t* a_row_index;  // [rows] gather of A rows (codes and scales), or nullptr
  int64_t lda, ld_a_scale;
  const uint8_t* w;            // [experts, n, k] E4M3 codes, row stride ldw, expert stride w_stride
  const float* w_scale;        // [experts, scale rows, ceil(k / 128)], expert stride w_scale_stride
  int64_t ldw, w_stride, w_scale_stride, ld_w_scale;
  bool gate_up_scales;         // scale rows 2t / 2t + 1 (gate / up) for tile t; else row t
  const int32_t* expert_offsets;  // [n_experts + 1] grouped, or nullptr (dense)
  const int32_t* tile_offsets;    // [n_experts + 1]
  int32_t n_experts;
  int64_t m, n, k;             // m: dense rows
  int32_t kb_per_split;        // k-blocks per blockIdx.z
  float* c;                    // kF32: [rows, n] row stride ldc
  __nv_bfloat16* c_bf16;       // kBf16 / kSiluMul: [rows, n] / [rows, n / 2] row stride ldc
  int64_t ldc;
  bool accumulate;
  float* partial;              // kPartial: [splits, m, n]
};

__device__ __forceinline__ void CpAsync4(void* smem, const void* gmem, bool valid) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(SmemAddr(smem)), "l"(gmem),
               "r"(valid ? 4 : 0));
}

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 890
// d += a * b  (16x8x32, E4M3 in, f32 accumulate)
__device__ __forceinline__ void MmaE4m3(float (&d)[4], const uint32_t (&a)[4], uint32_t b0,
                                        uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k32.row.col.f32.e4m3.e4m3.f32 {%0, %1, %2, %3}, "
      "{%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
#endif

template <Epi kEpi>
__global__ void __launch_bounds__(kThreads, 2) Fp8MmaKernel(Args p) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 890
  extern __shared__ __align__(128) uint8_t smem[];
  float* s_scale = reinterpret_cast<float*>(smem + kStages * kStageBytes);

  // The tile's rows: an m-tile of one expert (grouped) or of the dense matrix.
  int e = 0, row_begin, row_end;
  const int by = blockIdx.y;
  if (p.expert_offsets != nullptr) {
    if (by >= p.tile_offsets[p.n_experts]) return;
    int lo = 0, hi = p.n_experts;
    while (lo < hi) {  // largest e with tile_offsets[e] <= by
      const int mid = (lo + hi + 1) >> 1;
      if (p.tile_offsets[mid] <= by)
        lo = mid;
      else
        hi = mid - 1;
    }
    e = lo;
    row_begin = p.expert_offsets[e] + (by - p.tile_offsets[e]) * kBM;
    row_end = min(p.expert_offsets[e + 1], row_begin + kBM);
  } else {
    row_begin = by * kBM;
    row_end = static_cast<int>(min(p.m, static_cast<int64_t>(row_begin) + kBM));
  }
  const int bx = blockIdx.x, n0 = bx * kBN;
  const int64_t N = p.n, K = p.k;
  const int KB = static_cast<int>((K + kBK - 1) / kBK);
  const int kb0 = blockIdx.z * p.kb_per_split, kb1 = min(KB, kb0 + p.kb_per_split);
  const uint8_t* w = p.w + e * p.w_stride;
  const float* w_scale = p.w_scale + e * p.w_scale_stride;
  const int ws_row0 = p.gate_up_scales ? 2 * bx : bx, ws_row1 = p.gate_up_scales ? 2 * bx + 1 : bx;

  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const int wm = warp >> 2, wn = warp & 3, g = lane >> 2, q4 = lane & 3;

  // Copy duties: 16-byte chunk `chunk` of A rows tid/8 + 32i (i < 2) and B rows tid/8 + 32i
  // (i < 4); thread t < 64 copies row t's activation scale, threads 64 and 65 the weight scales.
  const int chunk = tid & 7, crow = tid >> 3;
  const uint8_t* a_src[2];
  bool a_ok[2];
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    const int pr = row_begin + crow + 32 * i;
    a_ok[i] = pr < row_end;
    const int64_t src = a_ok[i] ? (p.a_row_index ? p.a_row_index[pr] : pr) : 0;
    a_src[i] = p.a + src * p.lda + chunk * 16;
  }
  const float* s_src = p.a_scale;
  bool s_ok = false;
  if (tid < kBM) {
    const int pr = row_begin + tid;
    s_ok = pr < row_end;
    const int64_t src = s_ok ? (p.a_row_index ? p.a_row_index[pr] : pr) : 0;
    s_src = p.a_scale + src * p.ld_a_scale;
  } else if (tid < kBM + 2) {
    s_src = w_scale + (tid == kBM ? ws_row0 : ws_row1) * p.ld_w_scale;
    s_ok = true;
  }
  // B rows n0 + crow + 32i: the first one's chunk address, the step, and which are inside n.
  const uint8_t* b_src = w + (n0 + crow) * p.ldw + chunk * 16;
  const int64_t b_step = 32 * p.ldw;
  int b_rows = 0;
#pragma unroll
  for (int i = 0; i < 4; ++i) b_rows |= (n0 + crow + 32 * i < N) << i;
  auto load = [&](int kb, int stage) {
    uint8_t* sA = smem + stage * kStageBytes;
    uint8_t* sB = sA + kBM * kPitch;
    const int64_t k0 = static_cast<int64_t>(kb) * kBK;
    const bool k_ok = k0 + chunk * 16 < K;  // k % 16 == 0: a chunk is all in or all out
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      const bool v = a_ok[i] && k_ok;
      CpAsync16(sA + (crow + 32 * i) * kPitch + chunk * 16, v ? a_src[i] + k0 : p.a, v);
    }
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const bool v = ((b_rows >> i) & 1) && k_ok;
      CpAsync16(sB + (crow + 32 * i) * kPitch + chunk * 16, v ? b_src + i * b_step + k0 : p.w, v);
    }
    if (tid < kBM + 2) CpAsync4(s_scale + stage * kScalePitch + tid, s_src + kb, s_ok);
  };

  float acc[2][4][4], tot[2][4][4];
#pragma unroll
  for (int i = 0; i < 2; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j)
#pragma unroll
      for (int r = 0; r < 4; ++r) tot[i][j][r] = 0.f;

  // Columns of this thread's tile that take the up scale (gate/up interleaving: the tile's first
  // wblk columns are gate rows, the next wblk up rows).
  const int wblk = p.gate_up_scales ? static_cast<int>(min(N / 2 - n0 / 2, int64_t{kBN / 2}))
                                    : kBN;

  const int KT = kb1 - kb0;
#pragma unroll
  for (int s = 0; s < kStages - 1; ++s) {
    if (s < KT) load(kb0 + s, s);
    CpAsyncCommit();
  }
  for (int t = 0; t < KT; ++t) {
    CpAsyncWait<kStages - 2>();
    __syncthreads();
    if (t + kStages - 1 < KT) load(kb0 + t + kStages - 1, (t + kStages - 1) % kStages);
    CpAsyncCommit();
    const int stage = t % kStages;
    const uint8_t* sA = smem + stage * kStageBytes;
    const uint8_t* sB = sA + kBM * kPitch;
#pragma unroll
    for (int i = 0; i < 2; ++i)
#pragma unroll
      for (int j = 0; j < 4; ++j) acc[i][j][0] = acc[i][j][1] = acc[i][j][2] = acc[i][j][3] = 0.f;
#pragma unroll
    for (int ks = 0; ks < kBK / 32; ++ks) {
      uint32_t a[2][4];
#pragma unroll
      for (int i = 0; i < 2; ++i)
        Ldmatrix4(a[i], sA + (wm * 32 + i * 16 + (lane & 15)) * kPitch + ks * 32 + (lane >> 4) * 16);
#pragma unroll
      for (int jp = 0; jp < 2; ++jp) {
        uint32_t b[4];
        Ldmatrix4(b, sB + (wn * 32 + jp * 16 + (lane & 7) + ((lane >> 4) << 3)) * kPitch +
                         ks * 32 + ((lane >> 3) & 1) * 16);
#pragma unroll
        for (int i = 0; i < 2; ++i) {
          MmaE4m3(acc[i][2 * jp], a[i], b[0], b[1]);
          MmaE4m3(acc[i][2 * jp + 1], a[i], b[2], b[3]);
        }
      }
    }
    // Promotion: tot += block sum * (a_scale * w_scale).
    const float* ss = s_scale + stage * kScalePitch;
    const float sw0 = ss[kBM], sw1 = ss[kBM + 1];
#pragma unroll
    for (int i = 0; i < 2; ++i)
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const float sa = ss[wm * 32 + i * 16 + g + 8 * h];
        const float s0 = sa * sw0, s1 = sa * sw1;
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          const int col = wn * 32 + j * 8 + 2 * q4;
          tot[i][j][2 * h] = fmaf(acc[i][j][2 * h], col < wblk ? s0 : s1, tot[i][j][2 * h]);
          tot[i][j][2 * h + 1] =
              fmaf(acc[i][j][2 * h + 1], col + 1 < wblk ? s0 : s1, tot[i][j][2 * h + 1]);
        }
      }
  }
  CpAsyncWait<0>();

  if constexpr (kEpi == Epi::kSiluMul) {
    // Stage the f32 tile, then pair gate column c with up column wblk + c of this block.
    __syncthreads();
    float* tile = reinterpret_cast<float*>(smem);
#pragma unroll
    for (int i = 0; i < 2; ++i)
#pragma unroll
      for (int h = 0; h < 2; ++h)
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          const int r = wm * 32 + i * 16 + g + 8 * h, c = wn * 32 + j * 8 + 2 * q4;
          tile[r * kEpiPitch + c] = tot[i][j][2 * h];
          tile[r * kEpiPitch + c + 1] = tot[i][j][2 * h + 1];
        }
    __syncthreads();
    const int64_t feat0 = static_cast<int64_t>(bx) * (kBN / 2);
    for (int idx = tid; idx < kBM * wblk; idx += kThreads) {
      const int r = idx / wblk, c = idx % wblk;
      const int pr = row_begin + r;
      if (pr >= row_end) continue;
      const float gv = tile[r * kEpiPitch + c], uv = tile[r * kEpiPitch + wblk + c];
      p.c_bf16[static_cast<int64_t>(pr) * p.ldc + feat0 + c] =
          __float2bfloat16_rn(gv / (1.0f + expf(-gv)) * uv);
    }
  } else {
#pragma unroll
    for (int i = 0; i < 2; ++i)
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int pr = row_begin + wm * 32 + i * 16 + g + 8 * h;
        if (pr >= row_end) continue;
#pragma unroll
        for (int j = 0; j < 4; ++j)
#pragma unroll
          for (int e2 = 0; e2 < 2; ++e2) {
            const int64_t col = n0 + wn * 32 + j * 8 + 2 * q4 + e2;
            if (col >= N) continue;
            const float v = tot[i][j][2 * h + e2];
            if constexpr (kEpi == Epi::kF32) {
              float* dst = p.c + static_cast<int64_t>(pr) * p.ldc + col;
              *dst = p.accumulate ? *dst + v : v;
            } else if constexpr (kEpi == Epi::kBf16) {
              p.c_bf16[static_cast<int64_t>(pr) * p.ldc + col] = __float2bfloat16_rn(v);
            } else {
              p.partial[(static_cast<int64_t>(blockIdx.z) * p.m + pr) * N + col] = v;
            }
          }
      }
  }
#endif  // __CUDA_ARCH__ >= 890
}

}  // namespace dsinfer::cuda::fp8mma
