// Fp4GroupedGemm: one warp per weight row (output feature) of one expert; each lane decodes its
// bytes of the row once per group of kRows activation rows and keeps kRows f32 partial sums,
// reduced across the warp at the end. Decode is a 16-entry table lookup times the block's
// power-of-two scale (exact in f32), so the only difference from the CPU twin is summation order.
#include "kernels/cuda/fp4_grouped_gemm.h"

namespace dsinfer::cuda {
namespace {

constexpr int kWarps = 8;  // weight rows per CTA
constexpr int kRows = 4;   // activation rows per pass

__constant__ float kE2M1[16] = {0.f,  0.5f,  1.f,  1.5f,  2.f,  3.f,  4.f,  6.f,
                                -0.f, -0.5f, -1.f, -1.5f, -2.f, -3.f, -4.f, -6.f};

__device__ __forceinline__ float E8M0(uint8_t e) {
  return e == 0 ? __int_as_float(0x00400000) : __int_as_float(static_cast<int>(e) << 23);
}

__global__ void __launch_bounds__(kWarps * 32)
    Fp4GroupedGemmKernel(Fp4GroupedGemmParams p, int64_t lda, int64_t ldc) {
  const int e = blockIdx.y;
  const int lane = threadIdx.x & 31;
  const int64_t o = static_cast<int64_t>(blockIdx.x) * kWarps + (threadIdx.x >> 5);
  if (o >= p.n) return;
  const int32_t r0 = p.expert_offsets[e], r1 = p.expert_offsets[e + 1];
  if (r1 <= r0) return;
  const int64_t row_bytes = p.k / 2, blocks = (p.k + 31) / 32;
  const uint8_t* w = p.w + (static_cast<int64_t>(e) * p.n + o) * row_bytes;
  const uint8_t* s = p.scale + (static_cast<int64_t>(e) * p.n + o) * blocks;
  for (int32_t r = r0; r < r1; r += kRows) {
    const int rows = min(kRows, r1 - r);
    const __nv_bfloat16* a[kRows];
    for (int i = 0; i < kRows; ++i) {
      const int32_t pr = r + min(i, rows - 1);
      const int64_t src = p.a_row_index ? p.a_row_index[pr] : pr;
      a[i] = p.a + src * lda;
    }
    float acc[kRows] = {};
    for (int64_t b = lane; b < row_bytes; b += 32) {
      const uint8_t byte = w[b];
      const float scale = E8M0(s[(2 * b) / 32]);
      const float w0 = kE2M1[byte & 0xf] * scale, w1 = kE2M1[byte >> 4] * scale;
      for (int i = 0; i < kRows; ++i) {
        const __nv_bfloat162 x = *reinterpret_cast<const __nv_bfloat162*>(a[i] + 2 * b);
        acc[i] = fmaf(__bfloat162float(x.x), w0, acc[i]);
        acc[i] = fmaf(__bfloat162float(x.y), w1, acc[i]);
      }
    }
    for (int i = 0; i < kRows; ++i)
      for (int off = 16; off > 0; off >>= 1) acc[i] += __shfl_xor_sync(0xffffffffu, acc[i], off);
    if (lane == 0)
      for (int i = 0; i < rows; ++i) p.c[static_cast<int64_t>(r + i) * ldc + o] = acc[i];
  }
}

}  // namespace

cudaError_t Fp4GroupedGemm(const Fp4GroupedGemmParams& p, cudaStream_t stream) {
  if (p.a == nullptr || p.w == nullptr || p.scale == nullptr || p.expert_offsets == nullptr ||
      p.c == nullptr || p.n_experts <= 0 || p.n <= 0 || p.k <= 0 || p.k % 2 != 0 ||
      p.n_experts > 65535) {
    return cudaErrorInvalidValue;
  }
  const int64_t lda = p.lda ? p.lda : p.k, ldc = p.ldc ? p.ldc : p.n;
  // bf16 pairs are read as __nv_bfloat162: rows must start 4-byte aligned.
  if (lda % 2 != 0 || reinterpret_cast<uintptr_t>(p.a) % 4 != 0) return cudaErrorInvalidValue;
  const dim3 grid(static_cast<unsigned>((p.n + kWarps - 1) / kWarps), static_cast<unsigned>(p.n_experts));
  Fp4GroupedGemmKernel<<<grid, kWarps * 32, 0, stream>>>(p, lda, ldc);
  return cudaGetLastError();
}

}  // namespace dsinfer::cuda
