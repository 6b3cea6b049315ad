// Per-row 1 x 128 activation quantisation to E4M3 (DeepSeek-V3's act_quant), the GPU twin of
// cpu::ActQuantFp8: one warp per (row, 128-column block). The encoder is the CPU's integer
// rounding (kernels/cpu/fp8.h) written for the device, so codes match bit for bit on every
// architecture (sm_80 has no cvt to E4M3); x / s is IEEE division (no fast math).
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/fp8_gemm.h"

namespace dsinfer::cuda {
namespace {

constexpr int kWarps = 8;

__device__ __forceinline__ float Load(const __nv_bfloat16* x, int64_t i) {
  return __bfloat162float(x[i]);
}
__device__ __forceinline__ float Load(const float* x, int64_t i) { return x[i]; }

template <typename T>
__global__ void ActQuantKernel(const T* x, int64_t ldx, uint8_t* q, int64_t ldq, float* scale,
                               int64_t ld_scale, int64_t k, int64_t blocks, int64_t total) {
  const int64_t wid = static_cast<int64_t>(blockIdx.x) * kWarps + (threadIdx.x >> 5);
  if (wid >= total) return;
  const int lane = threadIdx.x & 31;
  const int64_t row = wid / blocks, b = wid % blocks;
  const int64_t c0 = b * kFp8Block;
  const int cols = static_cast<int>(min(k - c0, kFp8Block));
  const T* xr = x + row * ldx + c0;
  float v[4], amax = 0.f;
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int c = lane + 32 * i;
    v[i] = c < cols ? Load(xr, c) : 0.f;
    amax = fmaxf(amax, fabsf(v[i]));
  }
  amax = WarpMax(amax);
  const float s = __fdiv_rn(fmaxf(amax, 1e-4f), 448.0f);
  uint8_t* qr = q + row * ldq + c0;
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int c = lane + 32 * i;
    if (c < cols) qr[c] = EncodeE4M3(__fdiv_rn(v[i], s));
  }
  if (lane == 0) scale[row * ld_scale + b] = s;
}

}  // namespace

cudaError_t ActQuantFp8(const ActQuantFp8Params& p, cudaStream_t stream) {
  if (p.m <= 0 || p.k <= 0) return cudaSuccess;
  const int64_t blocks = CeilDiv(p.k, kFp8Block), total = p.m * blocks;
  const int64_t ldx = p.ldx ? p.ldx : p.k, ldq = p.ldq ? p.ldq : p.k;
  const int64_t ld_scale = p.ld_scale ? p.ld_scale : blocks;
  const int64_t grid = CeilDiv(total, kWarps);
  if (grid > 0x7fffffff) return cudaErrorInvalidValue;
  if (p.x_f32) {
    ActQuantKernel<float><<<static_cast<unsigned>(grid), 32 * kWarps, 0, stream>>>(
        static_cast<const float*>(p.x), ldx, p.q, ldq, p.scale, ld_scale, p.k, blocks, total);
  } else {
    ActQuantKernel<__nv_bfloat16><<<static_cast<unsigned>(grid), 32 * kWarps, 0, stream>>>(
        static_cast<const __nv_bfloat16*>(p.x), ldx, p.q, ldq, p.scale, ld_scale, p.k, blocks,
        total);
  }
  return cudaGetLastError();
}

}  // namespace dsinfer::cuda
