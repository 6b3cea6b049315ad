// LinearFp4, compiled once per ISA (gemm_avx2.cc, gemm_avx512.cc): a thread decodes a tile of
// its weight rows into scratch (f32, or bf16 for round_bf16 runs) exactly and runs
// tile::DotRows on it, once per L2-sized chunk of activations, so results match cpu::Linear on
// the dequantised matrix in the active ISA's lanes and order (linear_tile.h; with AMX, bf16 runs
// hand the decoded tiles to linear_amx.h).
#pragma once

#include <algorithm>
#include <vector>

#include "kernels/cpu/fp4.h"
#include "kernels/cpu/linear_amx.h"
#include "kernels/cpu/linear_fp4.h"
#include "kernels/cpu/linear_tile.h"

namespace dsinfer::cpu::DSINFER_CPU_ISA {
namespace fp4_impl {

struct Fp4Geometry {
  int64_t ldx, ldw, ld_scale, ldy;
};

inline Fp4Geometry GetFp4Geometry(const Fp4LinearParams& p) {
  const int64_t blocks = (p.k + kFp4BlockK - 1) / kFp4BlockK;
  return {p.ldx ? p.ldx : p.k, p.ldw ? p.ldw : p.k / 2, p.ld_scale ? p.ld_scale : blocks,
          p.ldy ? p.ldy : p.n};
}

#if defined(__AVX2__)
// 32 values of one block (16 bytes) as 32 signed bytes holding twice the E2M1 value (exact
// integers 0..12), in column order: byte j's low nibble, then its high nibble.
inline void Decode32Twice(const uint8_t* c, __m128i* first, __m128i* second) {
  const __m128i table = _mm_setr_epi8(0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12);
  const __m128i mask = _mm_set1_epi8(0x0f);
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(c));
  const __m128i lo = _mm_and_si128(v, mask);
  const __m128i hi = _mm_and_si128(_mm_srli_epi16(v, 4), mask);
  *first = _mm_shuffle_epi8(table, _mm_unpacklo_epi8(lo, hi));   // columns 0..15
  *second = _mm_shuffle_epi8(table, _mm_unpackhi_epi8(lo, hi));  // columns 16..31
}

// 32 exact f32 weights: (2 * value) * 2^(e - 128).
inline void Decode32F32(const uint8_t* c, float half_scale, float* out) {
  __m128i a, b;
  Decode32Twice(c, &a, &b);
  const __m256 s = _mm256_set1_ps(half_scale);
  _mm256_storeu_ps(out, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(a)), s));
  _mm256_storeu_ps(out + 8, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(a, 8))), s));
  _mm256_storeu_ps(out + 16, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(b)), s));
  _mm256_storeu_ps(out + 24, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(b, 8))), s));
}
#endif

#if defined(__AVX512BF16__) && defined(__AVX512BW__)
// 32 bf16 weights through a per-block 16-entry table (E2M1 values times the scale, exact in
// bf16) indexed by vpermw.
inline void Decode32Bf16(const uint8_t* c, float scale, uint16_t* out) {
  const __m512 values = _mm512_setr_ps(0.f, .5f, 1.f, 1.5f, 2.f, 3.f, 4.f, 6.f, -0.f, -.5f, -1.f,
                                       -1.5f, -2.f, -3.f, -4.f, -6.f);
  const __m256i t16 = (__m256i)_mm512_cvtneps_pbh(_mm512_mul_ps(values, _mm512_set1_ps(scale)));
  const __m512i table = _mm512_castsi256_si512(t16);
  const __m128i mask = _mm_set1_epi8(0x0f);
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(c));
  const __m128i lo = _mm_and_si128(v, mask);
  const __m128i hi = _mm_and_si128(_mm_srli_epi16(v, 4), mask);
  const __m256i idx8 = _mm256_set_m128i(_mm_unpackhi_epi8(lo, hi), _mm_unpacklo_epi8(lo, hi));
  const __m512i idx = _mm512_cvtepu8_epi16(idx8);
  _mm512_storeu_si512(reinterpret_cast<void*>(out), _mm512_permutexvar_epi16(idx, table));
}
#endif

// Columns [0, k) of one weight row, exactly.
inline void DecodeRow(const uint8_t* c, const uint8_t* s, int64_t k, float* out) {
  int64_t j = 0;
#if defined(__AVX2__)
  for (; j + kFp4BlockK <= k; j += kFp4BlockK)
    Decode32F32(c + j / 2, 0.5f * E8M0ToF32(s[j / kFp4BlockK]), out + j);
#endif
  for (; j < k; ++j) out[j] = E2M1ToF32(Fp4Code(c, j)) * E8M0ToF32(s[j / kFp4BlockK]);
}

inline void DecodeRow(const uint8_t* c, const uint8_t* s, int64_t k, uint16_t* out) {
  int64_t j = 0;
#if defined(__AVX512BF16__) && defined(__AVX512BW__)
  for (; j + kFp4BlockK <= k; j += kFp4BlockK) Decode32Bf16(c + j / 2, E8M0ToF32(s[j / kFp4BlockK]), out + j);
#elif defined(__AVX2__)
  alignas(32) float tmp[kFp4BlockK];
  for (; j + kFp4BlockK <= k; j += kFp4BlockK) {
    Decode32F32(c + j / 2, 0.5f * E8M0ToF32(s[j / kFp4BlockK]), tmp);
    for (int q = 0; q < kFp4BlockK; ++q) out[j + q] = tile::ToBf16(tmp[q]);
  }
#endif
  for (; j < k; ++j) out[j] = tile::ToBf16(E2M1ToF32(Fp4Code(c, j)) * E8M0ToF32(s[j / kFp4BlockK]));
}

// Decodes tiles of a thread's weight rows (T: float, or uint16_t bf16 bits) into scratch and
// hands each to dot(tile, rows, first_row). Threads take blocks of `unit` rows.
template <typename T, typename Dot>
void ForEachFp4Tile(const Fp4LinearParams& p, const Fp4Geometry& g, int64_t unit,
                    const ParallelFor& pfor, const Dot& dot) {
  const int64_t row_bytes = p.k * static_cast<int64_t>(sizeof(T));
  const int64_t tile_rows = std::clamp<int64_t>(192 * 1024 / row_bytes / unit * unit, unit,
                                                std::max<int64_t>(128, unit));
  pfor((p.n + unit - 1) / unit, [&](int64_t b0, int64_t b1) {
    const int64_t n0 = unit * b0, n1 = std::min(p.n, unit * b1);
    thread_local std::vector<T> scratch;
    if (scratch.size() < static_cast<size_t>(tile_rows * p.k)) scratch.resize(tile_rows * p.k);
    for (int64_t t0 = n0; t0 < n1; t0 += tile_rows) {
      const int64_t t1 = std::min(n1, t0 + tile_rows);
      for (int64_t r = t0; r < t1; ++r)
        DecodeRow(p.w + r * g.ldw, p.scale + r * g.ld_scale, p.k, scratch.data() + (r - t0) * p.k);
      dot(scratch.data(), t1 - t0, t0);
    }
  });
}

// T: the element type of the decoded tile and of x (float, or uint16_t bf16 bits).
template <typename T>
void RunFp4Tiles(const Fp4LinearParams& p, const Fp4Geometry& g, const T* x, int64_t ldx,
                 const ParallelFor& pfor) {
  const int64_t chunk =
      std::max<int64_t>(4, (256 * 1024) / (p.k * static_cast<int64_t>(sizeof(T))) / 4 * 4);
  ForEachFp4Tile<T>(p, g, 2, pfor, [&](const T* tile, int64_t rows, int64_t t0) {
    for (int64_t i0 = 0; i0 < p.m; i0 += chunk)
      tile::DotRows(tile, p.k, rows, x, ldx, i0, std::min(p.m, i0 + chunk), p.k, p.y + t0, g.ldy,
                    p.accumulate);
  });
}

}  // namespace fp4_impl

inline void LinearFp4Impl(const Fp4LinearParams& p, const ParallelFor& pfor) {
  using namespace fp4_impl;
  if (p.m <= 0 || p.n <= 0) return;
  const Fp4Geometry g = GetFp4Geometry(p);
  if (p.k == 0) {
    if (!p.accumulate)
      for (int64_t i = 0; i < p.m; ++i) std::fill(p.y + i * g.ldy, p.y + i * g.ldy + p.n, 0.f);
    return;
  }
  if (!p.round_bf16) {
    RunFp4Tiles<float>(p, g, p.x, g.ldx, pfor);
    return;
  }
  std::vector<uint16_t> xb(static_cast<size_t>(p.m * p.k));
  for (int64_t i = 0; i < p.m; ++i)
    for (int64_t j = 0; j < p.k; ++j) xb[i * p.k + j] = tile::ToBf16(p.x[i * g.ldx + j]);
  RunFp4Tiles<uint16_t>(p, g, xb.data(), p.k, pfor);
}

#if defined(DSINFER_AMX_TILES)
// bf16 runs on AMX (linear_amx.h), every m: bf16 tiles of decoded rows, so bf16 runs stay
// bit-identical to cpu::Linear (AMX) on the dequantised matrix; f32 runs as above.
inline void LinearFp4AmxImpl(const Fp4LinearParams& p, const ParallelFor& pfor) {
  if (!p.round_bf16 || p.m <= 0 || p.n <= 0 || p.k == 0) return LinearFp4Impl(p, pfor);
  const fp4_impl::Fp4Geometry g = fp4_impl::GetFp4Geometry(p);
  amx::PackedX xp;
  amx::PackX(p.x, g.ldx, p.m, p.k, pfor, &xp);
  fp4_impl::ForEachFp4Tile<uint16_t>(p, g, 16, pfor,
                                     [&](const uint16_t* tile, int64_t rows, int64_t t0) {
                                       amx::DotRows(tile, p.k, rows, xp, p.y + t0, g.ldy,
                                                    p.accumulate);
                                     });
}
#endif

}  // namespace dsinfer::cpu::DSINFER_CPU_ISA
