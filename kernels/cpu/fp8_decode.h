// Vectorised E4M3 dequantisation for LinearFp8 (internal to kernels/cpu). Every path yields
// exactly the reference's value, e4m3(code) * scale in f32 (and, for bf16 runs, that rounded
// to bf16), so the tiles LinearFp8 feeds to the dot kernels equal the dequantised matrix.
#pragma once

#ifndef DSINFER_CPU_ISA
#error "fp8_decode.h is compiled per ISA: define DSINFER_CPU_ISA (see gemm_avx2.cc)"
#endif

#include <immintrin.h>

#include <cmath>
#include <cstdint>
#include <cstring>

#include "kernels/cpu/fp8.h"
#include "kernels/cpu/linear_tile.h"

namespace dsinfer::cpu::DSINFER_CPU_ISA::fp8 {

// Scalar: the E4M3 table times the scale, as the reference's weight_dequant.
inline float DequantF32(uint8_t c, float s) { return E4M3Table()[c] * s; }
inline uint16_t DequantBf16(uint8_t c, float s) { return tile::ToBf16(E4M3Table()[c] * s); }

#if defined(__AVX2__)
// Eight codes -> e4m3(code) * s in f32: the magnitude bits at f32 bit 20 times 2^120 are the
// exact E4M3 value (see E4M3ToF32), so the one rounding is that of the product with s. NaN codes
// (S.1111.111) give NaN (all ones).
inline __m256 Dequant8(const uint8_t* c, __m256 s) {
  const __m256i b = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(c)));
  const __m256i mag = _mm256_and_si256(b, _mm256_set1_epi32(0x7f));
  const __m256i sign = _mm256_slli_epi32(_mm256_and_si256(b, _mm256_set1_epi32(0x80)), 24);
  const __m256 v = _mm256_mul_ps(
      _mm256_castsi256_ps(_mm256_or_si256(_mm256_slli_epi32(mag, 20), sign)),
      _mm256_set1_ps(0x1p120f));
  const __m256i nan = _mm256_cmpeq_epi32(mag, _mm256_set1_epi32(0x7f));
  return _mm256_or_ps(_mm256_mul_ps(v, s), _mm256_castsi256_ps(nan));
}

// f32 -> bf16 bits (nearest even) in the low half of each 32-bit lane, as tile::ToBf16 (NaN
// lanes become 0xffff, a NaN).
inline __m256i RoundBf16x8(__m256 f) {
  const __m256i u = _mm256_castps_si256(f);
  const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
  const __m256i r = _mm256_srli_epi32(
      _mm256_add_epi32(_mm256_add_epi32(u, _mm256_set1_epi32(0x7fff)), lsb), 16);
  const __m256i nan = _mm256_castps_si256(_mm256_cmp_ps(f, f, _CMP_UNORD_Q));
  return _mm256_or_si256(r, _mm256_srli_epi32(nan, 16));
}

// Eight codes -> their bf16-rounded values as f32 (bf16 bits in the high half).
inline __m256 DequantBf16x8(const uint8_t* c, __m256 s) {
  return _mm256_castsi256_ps(_mm256_slli_epi32(RoundBf16x8(Dequant8(c, s)), 16));
}

// Lookup tables for one weight block with scale s, for decoding 32 codes at a time into f32
// (NB = 4 bytes per value) or bf16 (NB = 2). A normal code S.EEEE.MMM (E >= 1) has index
// i = code & 15 = M + 8 (E & 1) and h = E >> 1; then
//   e4m3(code) * s = ((1 + M/8) 2^((E & 1) - 7) * s) * 2^(2h) * (-1)^S
// in f32 (and rounded to bf16), exact because scaling by a power of two commutes with rounding
// while every value stays normal (`fast` checks the scale's range). Multiplying by 2^(2h) adds
// h to the value's top byte and the sign flips that byte's top bit, so the top byte is
// t[NB-1][i] + hs[code >> 4] (mod 256) with hs[u] = (u & 7) + 128 (u >> 3). Denormal codes
// (E = 0, zeros included) have their own table and NaN codes give all-ones (a NaN); both are
// rare in real weights, so Decode32 patches them in only when present.
template <int NB>
struct alignas(32) BlockLut {
  __m256i t[NB];  // [16] byte b of the normal-code values (both 128-bit halves alike)
  __m256i d[NB];  // [16] byte b of the denormal-code values (entries 8..15 unused)
  bool fast;
};

template <int NB>
inline BlockLut<NB> MakeBlockLut(float s) {
  // (1 + M/8) 2^(e - 7) for i = M + 8e.
  static const float kBase[16] = {
      0x1.0p-7f, 0x1.2p-7f, 0x1.4p-7f, 0x1.6p-7f, 0x1.8p-7f, 0x1.ap-7f, 0x1.cp-7f, 0x1.ep-7f,
      0x1.0p-6f, 0x1.2p-6f, 0x1.4p-6f, 0x1.6p-6f, 0x1.8p-6f, 0x1.ap-6f, 0x1.cp-6f, 0x1.ep-6f};
  BlockLut<NB> l;
  l.fast = std::isfinite(s) && std::fabs(s) >= 0x1p-119f && std::fabs(s) < 0x1p119f;
  alignas(32) uint8_t t[2 * NB][32];
  for (int i = 0; i < 16; ++i) {
    uint32_t tv, dv = 0;
    if constexpr (NB == 4) {
      const float tf = kBase[i] * s, df = i < 8 ? DequantF32(static_cast<uint8_t>(i), s) : 0.f;
      std::memcpy(&tv, &tf, 4);
      std::memcpy(&dv, &df, 4);
    } else {
      tv = tile::ToBf16(kBase[i] * s);
      dv = i < 8 ? DequantBf16(static_cast<uint8_t>(i), s) : 0;
    }
    for (int b = 0; b < NB; ++b)
      for (int half = 0; half < 2; ++half) {
        t[b][16 * half + i] = static_cast<uint8_t>(tv >> (8 * b));
        t[NB + b][16 * half + i] = static_cast<uint8_t>(dv >> (8 * b));
      }
  }
  for (int b = 0; b < NB; ++b) {
    l.t[b] = _mm256_load_si256(reinterpret_cast<const __m256i*>(t[b]));
    l.d[b] = _mm256_load_si256(reinterpret_cast<const __m256i*>(t[NB + b]));
  }
  return l;
}

// 32 codes (any byte order) -> byte b of their values in planes[b], byte for byte.
template <int NB>
inline void Decode32(__m256i c, const BlockLut<NB>& l, __m256i* planes) {
  const __m256i kHs = _mm256_setr_epi8(
      0, 1, 2, 3, 4, 5, 6, 7, -128, -127, -126, -125, -124, -123, -122, -121,
      0, 1, 2, 3, 4, 5, 6, 7, -128, -127, -126, -125, -124, -123, -122, -121);
  const __m256i nib = _mm256_set1_epi8(0x0f);
  const __m256i i = _mm256_and_si256(c, nib);
  const __m256i u = _mm256_and_si256(_mm256_srli_epi16(c, 4), nib);
  for (int b = 0; b < NB - 1; ++b) planes[b] = _mm256_shuffle_epi8(l.t[b], i);
  planes[NB - 1] =
      _mm256_add_epi8(_mm256_shuffle_epi8(l.t[NB - 1], i), _mm256_shuffle_epi8(kHs, u));
  // Special: magnitude m = code & 0x7f below 8 (E = 0) or 0x7f (NaN), i.e. int8(m + 1) <= 8.
  const __m256i m1 =
      _mm256_add_epi8(_mm256_and_si256(c, _mm256_set1_epi8(0x7f)), _mm256_set1_epi8(1));
  const __m256i special = _mm256_cmpgt_epi8(_mm256_set1_epi8(9), m1);
  if (!_mm256_testz_si256(special, special)) {
    // E = 0 has m + 1 in [1, 8]; NaN has m + 1 = 0x80 (-128 as int8).
    const __m256i e_zero =
        _mm256_and_si256(special, _mm256_cmpgt_epi8(m1, _mm256_setzero_si256()));
    const __m256i nan = _mm256_xor_si256(special, e_zero);
    const __m256i sign = _mm256_and_si256(c, _mm256_set1_epi8(static_cast<char>(0x80)));
    for (int b = 0; b < NB; ++b) {
      __m256i d = _mm256_shuffle_epi8(l.d[b], i);
      if (b == NB - 1) d = _mm256_xor_si256(d, sign);
      planes[b] = _mm256_or_si256(_mm256_blendv_epi8(planes[b], d, e_zero), nan);
    }
  }
}

// 32 codes -> 32 bf16 values in order (two vectors of 16), e.g. for a bf16 tile.
inline void Decode32Bf16(const uint8_t* c, const BlockLut<2>& l, __m256i* first,
                         __m256i* second) {
  // Qword order q0 q2 q1 q3, so that the in-lane byte unpacks below come out in order.
  const __m256i v = _mm256_permute4x64_epi64(
      _mm256_loadu_si256(reinterpret_cast<const __m256i*>(c)), 0xd8);
  __m256i p[2];
  Decode32(v, l, p);
  *first = _mm256_unpacklo_epi8(p[0], p[1]);
  *second = _mm256_unpackhi_epi8(p[0], p[1]);
}

// 32 codes -> four vectors of 8 values as f32, in order (NB = 2: the bf16-rounded values).
template <int NB>
inline void Decode32F32(const uint8_t* c, const BlockLut<NB>& l, __m256* w) {
  // Dword order d0 d2 d4 d6 d1 d3 d5 d7, so that the in-lane unpacks come out in order.
  const __m256i v = _mm256_permutevar8x32_epi32(
      _mm256_loadu_si256(reinterpret_cast<const __m256i*>(c)),
      _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7));
  __m256i p[NB];
  Decode32(v, l, p);
  __m256i lo16[2], hi16[2];  // 16-bit halves of the values: lo16 for bytes 0-1, hi16 for 2-3
  if constexpr (NB == 4) {
    lo16[0] = _mm256_unpacklo_epi8(p[0], p[1]);
    lo16[1] = _mm256_unpackhi_epi8(p[0], p[1]);
    hi16[0] = _mm256_unpacklo_epi8(p[2], p[3]);
    hi16[1] = _mm256_unpackhi_epi8(p[2], p[3]);
  } else {
    lo16[0] = lo16[1] = _mm256_setzero_si256();
    hi16[0] = _mm256_unpacklo_epi8(p[0], p[1]);
    hi16[1] = _mm256_unpackhi_epi8(p[0], p[1]);
  }
  w[0] = _mm256_castsi256_ps(_mm256_unpacklo_epi16(lo16[0], hi16[0]));
  w[1] = _mm256_castsi256_ps(_mm256_unpackhi_epi16(lo16[0], hi16[0]));
  w[2] = _mm256_castsi256_ps(_mm256_unpacklo_epi16(lo16[1], hi16[1]));
  w[3] = _mm256_castsi256_ps(_mm256_unpackhi_epi16(lo16[1], hi16[1]));
}
#endif  // __AVX2__

}  // namespace dsinfer::cpu::DSINFER_CPU_ISA::fp8
