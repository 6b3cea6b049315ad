// Device-side helpers shared by the CUDA kernels (internal to kernels/cuda): warp reductions,
// bf16 packing, cp.async, ldmatrix and the m16n8k16 bf16 tensor-core MMA (sm_80+).
//
// MMA fragment layouts (PTX ISA, mma.m16n8k16 .bf16), g = lane / 4, q = lane % 4:
//   A 16x16 row-major: a0 (g, 2q..2q+1), a1 (g+8, 2q..), a2 (g, 8+2q..), a3 (g+8, 8+2q..)
//   B 16x8 (k x n):    b0 (k 2q..2q+1, n g), b1 (k 8+2q.., n g)
//   C 16x8 f32:        c0,c1 (g, 2q..2q+1), c2,c3 (g+8, 2q..2q+1)
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace dsinfer::cuda {

inline constexpr float kLog2e = 1.4426950408889634f;

__device__ __forceinline__ float WarpSum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__device__ __forceinline__ float WarpMax(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Sum over the block; `scratch` holds >= 32 floats. Every thread gets the result.
__device__ __forceinline__ float BlockSum(float v, float* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int warps = (blockDim.x + 31) >> 5;
  v = WarpSum(v);
  __syncthreads();  // scratch may still be read from a previous call
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  float t = lane < warps ? scratch[lane] : 0.f;
  return WarpSum(t);
}

__device__ __forceinline__ float Bf16ToF32(__nv_bfloat16 v) { return __bfloat162float(v); }

// Two floats as one bf16x2 register, `lo` in the low half (the lower column of an MMA pair).
__device__ __forceinline__ uint32_t PackBf16x2(float lo, float hi) {
  __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<uint32_t*>(&v);
}

__device__ __forceinline__ uint32_t SmemAddr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// 16-byte global -> shared copy that bypasses L1; when !valid the destination is zero-filled
// (src must still be a mapped address).
__device__ __forceinline__ void CpAsync16(void* smem, const void* gmem, bool valid) {
  const int src_size = valid ? 16 : 0;
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(SmemAddr(smem)), "l"(gmem),
               "r"(src_size));
}
__device__ __forceinline__ void CpAsyncCommit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void CpAsyncWait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

// Four 8x8 b16 matrices; lane l gives the row address of matrix l / 8, row l % 8.
__device__ __forceinline__ void Ldmatrix4(uint32_t (&r)[4], const void* smem) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(SmemAddr(smem)));
}
__device__ __forceinline__ void Ldmatrix2(uint32_t (&r)[2], const void* smem) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0, %1}, [%2];\n"
               : "=r"(r[0]), "=r"(r[1])
               : "r"(SmemAddr(smem)));
}
__device__ __forceinline__ void Ldmatrix4Trans(uint32_t (&r)[4], const void* smem) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(SmemAddr(smem)));
}

// d += a * b  (16x8x16, bf16 in, f32 accumulate)
__device__ __forceinline__ void MmaBf16(float (&d)[4], const uint32_t (&a)[4], uint32_t b0,
                                        uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, "
      "{%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// FP8 E4M3 encode (the CPU's integer rounding, kernels/cpu/fp8.h, so codes match bit for bit on
// every architecture; sm_80 has no cvt to E4M3) and exact decode (as cpu::E4M3ToF32).
// Nearest even, saturating at ±448, NaN -> 0x7f, the sign of zero kept (as F32ToE4M3).
__device__ __forceinline__ uint8_t EncodeE4M3(float f) {
  uint32_t u = __float_as_uint(f);
  const uint32_t sign = (u >> 24) & 0x80u;
  u &= 0x7fffffffu;
  if (u > 0x7f800000u) return 0x7f;
  if (u >= 0x43e00000u) return static_cast<uint8_t>(sign | 0x7eu);
  if (u >= 0x3c800000u) {
    const uint32_t r = (u + 0x7ffffu + ((u >> 20) & 1u)) >> 20;
    return static_cast<uint8_t>(sign | (r - (120u << 3)));
  }
  // m * 2^-9 with m = round_even(|f| * 2^9): adding 2^23 rounds to an integer (the product is
  // exact, so a fused multiply-add gives the same).
  const float r = __fadd_rn(__fmul_rn(__uint_as_float(u), 512.0f), 8388608.0f);
  return static_cast<uint8_t>(sign | (__float_as_uint(r) - 0x4b000000u));
}

__device__ __forceinline__ float DecodeE4M3(uint32_t b) {
  const uint32_t mag = b & 0x7fu;
  float f = __fmul_rn(__uint_as_float(mag << 20), 0x1p120f);
  f = mag == 0x7fu ? __uint_as_float(0x7fc00000u) : f;
  return (b & 0x80u) ? -f : f;
}

inline int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

}  // namespace dsinfer::cuda
