// The register-tiled dot-product microkernels behind cpu::Linear (linear.cc) and cpu::LinearFp8
// (linear_fp8.cc), shared so that an FP8 layer run on dequantised tiles adds its products in
// exactly the order the bf16 layer does. Internal to kernels/cpu.
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

namespace dsinfer::cpu::tile {

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
      __m128 s = _mm_add_ps(_mm256_castps256_ps128(acc[r][c]), _mm256_extractf128_ps(acc[r][c], 1));
      s = _mm_hadd_ps(s, s);
      s = _mm_hadd_ps(s, s);
      out[r * C + c] = _mm_cvtss_f32(s);
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
      __m128 s = _mm_add_ps(_mm256_castps256_ps128(acc[r][c]), _mm256_extractf128_ps(acc[r][c], 1));
      s = _mm_hadd_ps(s, s);
      s = _mm_hadd_ps(s, s);
      out[r * C + c] = _mm_cvtss_f32(s);
    }
#else
  for (int i = 0; i < R * C; ++i) out[i] = 0.f;
#endif
  for (; kk < k; ++kk)
    for (int r = 0; r < R; ++r)
      for (int c = 0; c < C; ++c) out[r * C + c] += xs[r][kk] * ws[c][kk];
}

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

// y[i * ldy + j] (+)= sum_k x[i][k] * w[j][k] for weight rows j in [0, rows) and activation rows
// i in [i0, i1), in tiles of 2 weight rows x 4 activation rows (weight rows outer, so each pair
// is read once per call). T is uint16_t (bf16 bits) or float.
template <typename T>
inline void DotRows(const T* w, int64_t ldw, int64_t rows, const T* x, int64_t ldx, int64_t i0,
                    int64_t i1, int64_t k, float* y, int64_t ldy, bool accumulate) {
  for (int64_t j = 0; j < rows; j += 2) {
    const int c = static_cast<int>(std::min<int64_t>(2, rows - j));
    const T* ws[2] = {w + j * ldw, w + (j + c - 1) * ldw};
    for (int64_t i = i0; i < i1; i += 4) {
      const int r = static_cast<int>(std::min<int64_t>(4, i1 - i));
      const T* xs[4];
      for (int q = 0; q < r; ++q) xs[q] = x + (i + q) * ldx;
      float out[8];
      if (c == 2)
        DotRowsC<2>(r, ws, xs, k, out);
      else
        DotRowsC<1>(r, ws, xs, k, out);
      for (int q = 0; q < r; ++q)
        for (int cc = 0; cc < c; ++cc) {
          float* dst = y + (i + q) * ldy + j + cc;
          *dst = accumulate ? *dst + out[q * c + cc] : out[q * c + cc];
        }
    }
  }
}

}  // namespace dsinfer::cpu::tile
