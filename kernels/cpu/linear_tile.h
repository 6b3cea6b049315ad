// The register-tiled dot-product microkernels behind cpu::Linear (bf16) and cpu::LinearFp8
// (linear_bf16_impl.h, linear_fp8_impl.h), shared so that an FP8 layer run on dequantised tiles
// adds its products in exactly the order the bf16 layer does. Internal to kernels/cpu; compiled
// once per ISA (gemm_avx2.cc, gemm_avx512.cc: DSINFER_CPU_ISA names the namespace).
//
// Summation order of one output (a dot product over k), the same for every tile shape, so a
// row's result never depends on the other rows of the call:
//   AVX512-BF16: 16 f32 lanes; per 32-wide k chunk, lane l adds x[2l]w[2l] + x[2l+1]w[2l+1]
//     (vdpbf16ps); then _mm512_reduce_add_ps; then the k % 32 tail in ascending k.
//   AVX2: 8 f32 lanes, lane l sums k = l mod 8 ascending (FMA); then the 128-bit halves added
//     and two hadds; then the k % 8 tail in ascending k.
#pragma once

#ifndef DSINFER_CPU_ISA
#error "linear_tile.h is compiled per ISA: define DSINFER_CPU_ISA (see gemm_avx2.cc)"
#endif

#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

namespace dsinfer::cpu::DSINFER_CPU_ISA::tile {

inline uint16_t ToBf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

inline float FromBf16(uint16_t h) {
  uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

#if defined(__AVX2__)
// The AVX2 kernels' horizontal sum of 8 lanes: (lo half + hi half), then two hadds.
inline float HSum8(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_hadd_ps(s, s);
  s = _mm_hadd_ps(s, s);
  return _mm_cvtss_f32(s);
}
#endif

// A tile of dot products between C bf16 weight rows and R bf16 activation rows, f32
// accumulation: out[r * C + c] = sum_k x[r][k] * w[c][k].
template <int R, int C>
inline void DotTile(const uint16_t* const* ws, const uint16_t* const* xs, int64_t k, float* out) {
  int64_t kk = 0;
#if defined(__AVX512BF16__)
  __m512 acc[R][C];
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) acc[r][c] = _mm512_setzero_ps();
  for (; kk + 32 <= k; kk += 32) {
    __m512i wv[C];
    for (int c = 0; c < C; ++c) wv[c] = _mm512_loadu_si512(reinterpret_cast<const void*>(ws[c] + kk));
    for (int r = 0; r < R; ++r) {
      __m512i xv = _mm512_loadu_si512(reinterpret_cast<const void*>(xs[r] + kk));
      for (int c = 0; c < C; ++c)
        acc[r][c] = _mm512_dpbf16_ps(acc[r][c], (__m512bh)xv, (__m512bh)wv[c]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) out[r * C + c] = _mm512_reduce_add_ps(acc[r][c]);
#elif defined(__AVX2__) && defined(__FMA__)
  __m256 acc[R][C];
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) acc[r][c] = _mm256_setzero_ps();
  auto load8 = [](const uint16_t* p) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(
        _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))), 16));
  };
  for (; kk + 8 <= k; kk += 8) {
    __m256 wv[C];
    for (int c = 0; c < C; ++c) wv[c] = load8(ws[c] + kk);
    for (int r = 0; r < R; ++r) {
      __m256 xv = load8(xs[r] + kk);
      for (int c = 0; c < C; ++c) acc[r][c] = _mm256_fmadd_ps(wv[c], xv, acc[r][c]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) {
      out[r * C + c] = HSum8(acc[r][c]);
    }
#else
  for (int i = 0; i < R * C; ++i) out[i] = 0.f;
#endif
  for (; kk < k; ++kk)
    for (int r = 0; r < R; ++r)
      for (int c = 0; c < C; ++c) out[r * C + c] += FromBf16(xs[r][kk]) * FromBf16(ws[c][kk]);
}

// The f32 twin of DotTile: f32 weights and activations, the same lanes and reduction (AVX2
// FMA; 8 lanes, lane l sums k = l mod 8, then the scalar tail).
template <int R, int C>
inline void DotTile(const float* const* ws, const float* const* xs, int64_t k, float* out) {
  int64_t kk = 0;
#if defined(__AVX2__) && defined(__FMA__)
  __m256 acc[R][C];
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) acc[r][c] = _mm256_setzero_ps();
  for (; kk + 8 <= k; kk += 8) {
    __m256 wv[C];
    for (int c = 0; c < C; ++c) wv[c] = _mm256_loadu_ps(ws[c] + kk);
    for (int r = 0; r < R; ++r) {
      __m256 xv = _mm256_loadu_ps(xs[r] + kk);
      for (int c = 0; c < C; ++c) acc[r][c] = _mm256_fmadd_ps(wv[c], xv, acc[r][c]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) {
      out[r * C + c] = HSum8(acc[r][c]);
    }
#else
  for (int i = 0; i < R * C; ++i) out[i] = 0.f;
#endif
  for (; kk < k; ++kk)
    for (int r = 0; r < R; ++r)
      for (int c = 0; c < C; ++c) out[r * C + c] += xs[r][kk] * ws[c][kk];
}

// Weight rows per tile: 4 where the ISA has 32 vector registers (4 x 4 accumulators), else 2.
#if defined(__AVX512F__)
inline constexpr int kTileCols = 4;
#else
inline constexpr int kTileCols = 2;
#endif

// Dispatch on the number of activation rows (1..4) of a tile.
template <int C, typename T>
inline void DotRowsC(int r, const T* const* ws, const T* const* xs, int64_t k, float* out) {
  switch (r) {
    case 4: DotTile<4, C>(ws, xs, k, out); break;
    case 3: DotTile<3, C>(ws, xs, k, out); break;
    case 2: DotTile<2, C>(ws, xs, k, out); break;
    default: DotTile<1, C>(ws, xs, k, out); break;
  }
}

// ... and on the number of weight rows (1..kTileCols).
template <typename T>
inline void DotTileRC(int r, int c, const T* const* ws, const T* const* xs, int64_t k,
                      float* out) {
  if constexpr (kTileCols >= 4) {
    if (c == 4) return DotRowsC<4>(r, ws, xs, k, out);
    if (c == 3) return DotRowsC<3>(r, ws, xs, k, out);
  }
  if (c == 2) return DotRowsC<2>(r, ws, xs, k, out);
  DotRowsC<1>(r, ws, xs, k, out);
}

// y[i * ldy + j] (+)= sum_k x[i][k] * w[j][k] for weight rows j in [0, rows) and activation rows
// i in [i0, i1), in tiles of kTileCols weight rows x 4 activation rows (weight rows outer, so
// each group is read once per call). T is uint16_t (bf16 bits) or float.
template <typename T>
inline void DotRows(const T* w, int64_t ldw, int64_t rows, const T* x, int64_t ldx, int64_t i0,
                    int64_t i1, int64_t k, float* y, int64_t ldy, bool accumulate) {
  for (int64_t j = 0; j < rows; j += kTileCols) {
    const int c = static_cast<int>(std::min<int64_t>(kTileCols, rows - j));
    const T* ws[kTileCols];
    for (int q = 0; q < kTileCols; ++q) ws[q] = w + (j + std::min(q, c - 1)) * ldw;
    for (int64_t i = i0; i < i1; i += 4) {
      const int r = static_cast<int>(std::min<int64_t>(4, i1 - i));
      const T* xs[4];
      for (int q = 0; q < r; ++q) xs[q] = x + (i + q) * ldx;
      float out[4 * kTileCols];
      DotTileRC(r, c, ws, xs, k, out);
      for (int q = 0; q < r; ++q)
        for (int cc = 0; cc < c; ++cc) {
          float* dst = y + (i + q) * ldy + j + cc;
          *dst = accumulate ? *dst + out[q * c + cc] : out[q * c + cc];
        }
    }
  }
}

}  // namespace dsinfer::cpu::DSINFER_CPU_ISA::tile
