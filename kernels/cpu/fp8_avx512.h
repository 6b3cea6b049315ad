// FP8 E4M3 -> bf16 decode in registers with AVX512-VBMI, feeding vdpbf16ps (internal to
// kernels/cpu; compiled per ISA, empty without AVX512-BF16 + VBMI).
//
// Design: table-lookup dequantisation (as in LUT-based low-bit GEMV kernels, e.g. T-MAC), with
// one 128-entry table per weight block: for the magnitudes m = 0..127 of a block with scale s,
// bf16(e4m3(m) * s) split into a low-byte and a high-byte plane of 128 bytes (two zmm each).
// 64 codes are looked up at once with vpermi2b (7-bit index, so the code's sign bit is
// ignored), the sign is XORed into the high byte (bf16 rounding is symmetric, so
// bf16(-v * s) = bf16(v * s) ^ 0x8000), and the planes are interleaved into 2 x 32 bf16 in memory
// order. Every value is exactly DequantBf16(code, s) (for NaN codes: a NaN), so the products
// equal tile::DotTile's on the bf16-rounded dequantised matrix, bit for bit.
#pragma once

#include <immintrin.h>

#include <cstdint>

#include "kernels/cpu/fp8_decode.h"
#include "kernels/cpu/linear_tile.h"

#if defined(__AVX512BF16__) && defined(__AVX512VBMI__)
namespace dsinfer::cpu::DSINFER_CPU_ISA::fp8 {

struct alignas(64) Bf16Lut {
  __m512i lo[2], hi[2];  // byte 0 / byte 1 of bf16(e4m3(m) * s) for m = 0..63, 64..127
};

// Sixteen f32 -> bf16 bits (nearest even) in 16-bit lanes, exactly as tile::ToBf16 (NaN:
// the quieted top half).
inline __m256i RoundBf16x16(__m512 f) {
  const __m512i u = _mm512_castps_si512(f);
  const __m512i top = _mm512_srli_epi32(u, 16);
  __m512i r = _mm512_srli_epi32(
      _mm512_add_epi32(_mm512_add_epi32(u, _mm512_set1_epi32(0x7fff)),
                       _mm512_and_si512(top, _mm512_set1_epi32(1))),
      16);
  const __mmask16 nan = _mm512_cmp_ps_mask(f, f, _CMP_UNORD_Q);
  r = _mm512_mask_mov_epi32(r, nan, _mm512_or_si512(top, _mm512_set1_epi32(0x40)));
  return _mm512_cvtepi32_epi16(r);
}

// The tables of a block with scale s: bf16(E4M3Table()[m] * s) for m = 0..127, the same f32
// products and rounding as DequantBf16.
inline Bf16Lut MakeBf16Lut(float s) {
  const float* table = E4M3Table().data();
  const __m512 sv = _mm512_set1_ps(s);
  Bf16Lut l;
  for (int h = 0; h < 2; ++h) {  // entries 64h .. 64h + 63
    __m512i words[2];            // 32 bf16 each
    for (int q = 0; q < 2; ++q) {
      const float* t = table + 64 * h + 32 * q;
      const __m256i a = RoundBf16x16(_mm512_mul_ps(_mm512_loadu_ps(t), sv));
      const __m256i b = RoundBf16x16(_mm512_mul_ps(_mm512_loadu_ps(t + 16), sv));
      words[q] = _mm512_inserti64x4(_mm512_castsi256_si512(a), b, 1);
    }
    l.lo[h] = _mm512_inserti64x4(_mm512_castsi256_si512(_mm512_cvtepi16_epi8(words[0])),
                                 _mm512_cvtepi16_epi8(words[1]), 1);
    l.hi[h] = _mm512_inserti64x4(
        _mm512_castsi256_si512(_mm512_cvtepi16_epi8(_mm512_srli_epi16(words[0], 8))),
        _mm512_cvtepi16_epi8(_mm512_srli_epi16(words[1], 8)), 1);
  }
  return l;
}

// 64 codes -> their bf16 values: codes 0..31 in *a, 32..63 in *b (memory order).
inline void Decode64Bf16(const uint8_t* c, const Bf16Lut& l, __m512i* a, __m512i* b) {
  // Lane L gets qwords L and L + 4, so that the in-lane byte unpacks below come out in order.
  const __m512i v = _mm512_permutexvar_epi64(_mm512_setr_epi64(0, 4, 1, 5, 2, 6, 3, 7),
                                             _mm512_loadu_si512(c));
  const __m512i lo = _mm512_permutex2var_epi8(l.lo[0], v, l.lo[1]);
  __m512i hi = _mm512_permutex2var_epi8(l.hi[0], v, l.hi[1]);
  hi = _mm512_ternarylogic_epi32(hi, v, _mm512_set1_epi8(static_cast<char>(0x80)),
                                 0x78);  // hi ^ (v & 0x80)
  *a = _mm512_unpacklo_epi8(lo, hi);
  *b = _mm512_unpackhi_epi8(lo, hi);
}

// out[r * C + c] = sum_j x[r][j] * bf16(W[c][j]) over j < k, in tile::DotTile's order
// (AVX512-BF16): per 32-wide chunk one vdpbf16ps per (r, c), _mm512_reduce_add_ps, then the
// k % 32 tail in ascending order. luts[c][b]: the tables of row c's block b; ws[c][b]: its
// scale. Needs block_k % 32 == 0. `prefetch`: bytes from a row to the same column of the next
// row group, fetched a cache line (64 codes) per step (short rows give the hardware prefetcher
// little to train on; as the AVX2 fused path does).
template <int R, int C>
inline void FusedTileBf16(const Bf16Lut* const* luts, const uint8_t* const* wc,
                          const float* const* ws, const uint16_t* const* xs, int64_t k,
                          int64_t block_k, int64_t prefetch, float* out) {
  __m512 acc[R][C];
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) acc[r][c] = _mm512_setzero_ps();
  int64_t j = 0;
  for (int64_t b = 0, j0 = 0; j0 < k; ++b, j0 += block_k) {
    const int64_t j1 = std::min(k, j0 + block_k);
    j = j0;
    for (; j + 64 <= j1; j += 64) {
      __m512i w0[C], w1[C];
      for (int c = 0; c < C; ++c) {
        _mm_prefetch(reinterpret_cast<const char*>(wc[c] + j + prefetch), _MM_HINT_T0);
        Decode64Bf16(wc[c] + j, luts[c][b], &w0[c], &w1[c]);
      }
      for (int r = 0; r < R; ++r) {
        const __m512i x0 = _mm512_loadu_si512(reinterpret_cast<const void*>(xs[r] + j));
        const __m512i x1 = _mm512_loadu_si512(reinterpret_cast<const void*>(xs[r] + j + 32));
        for (int c = 0; c < C; ++c) {
          acc[r][c] = _mm512_dpbf16_ps(acc[r][c], (__m512bh)x0, (__m512bh)w0[c]);
          acc[r][c] = _mm512_dpbf16_ps(acc[r][c], (__m512bh)x1, (__m512bh)w1[c]);
        }
      }
    }
    if (j + 32 <= j1) {  // one 32-wide chunk left in this block: decoded one code at a time
      __m512i w[C];
      for (int c = 0; c < C; ++c) {
        alignas(64) uint16_t buf[32];
        for (int q = 0; q < 32; ++q) buf[q] = DequantBf16(wc[c][j + q], ws[c][b]);
        w[c] = _mm512_load_si512(buf);
      }
      for (int r = 0; r < R; ++r) {
        const __m512i xv = _mm512_loadu_si512(reinterpret_cast<const void*>(xs[r] + j));
        for (int c = 0; c < C; ++c)
          acc[r][c] = _mm512_dpbf16_ps(acc[r][c], (__m512bh)xv, (__m512bh)w[c]);
      }
      j += 32;
    }
  }
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) out[r * C + c] = _mm512_reduce_add_ps(acc[r][c]);
  for (; j < k; ++j)  // the k % 32 tail (only the last block can end off the 32 grid)
    for (int r = 0; r < R; ++r)
      for (int c = 0; c < C; ++c)
        out[r * C + c] += tile::FromBf16(xs[r][j]) *
                          tile::FromBf16(DequantBf16(wc[c][j], ws[c][j / block_k]));
}

}  // namespace dsinfer::cpu::DSINFER_CPU_ISA::fp8
#endif  // __AVX512BF16__ && __AVX512VBMI__
