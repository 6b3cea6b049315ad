#include "kernels/cpu/linear_fp8.h"

#include <immintrin.h>

#include <algorithm>
#include <vector>

#include "kernels/cpu/fp8.h"
#include "kernels/cpu/linear_tile.h"

namespace dsinfer::cpu {
namespace {

// One weight element as the reference dequantises it: e4m3(code) * scale in f32 (table
// lookup), then, for bf16 runs, rounded to bf16.
inline float DequantF32(uint8_t c, float s) { return E4M3Table()[c] * s; }
inline uint16_t DequantBf16(uint8_t c, float s) { return tile::ToBf16(E4M3Table()[c] * s); }

#if defined(__AVX2__)
// Eight codes -> e4m3(code) * s in f32, exactly as DequantF32: the magnitude bits placed at f32
// bit 20 times 2^120 is the exact E4M3 value (see E4M3ToF32), so the single rounding is that of
// the product with s. NaN codes (S.1111.111) give NaN (all ones).
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

// f32 -> bf16 bits (nearest even) in the low half of each 32-bit lane, as tile::ToBf16; NaN
// lanes become 0xffff (a NaN).
inline __m256i RoundBf16x8(__m256 f) {
  const __m256i u = _mm256_castps_si256(f);
  const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
  const __m256i r = _mm256_srli_epi32(
      _mm256_add_epi32(_mm256_add_epi32(u, _mm256_set1_epi32(0x7fff)), lsb), 16);
  const __m256i nan = _mm256_castps_si256(_mm256_cmp_ps(f, f, _CMP_UNORD_Q));
  return _mm256_or_si256(r, _mm256_srli_epi32(nan, 16));
}
#endif

// Columns [j0, j1) of one weight row, all under scale s.
void DequantSpan(const uint8_t* c, float s, int64_t j0, int64_t j1, float* out) {
  int64_t j = j0;
#if defined(__AVX2__)
  const __m256 sv = _mm256_set1_ps(s);
  for (; j + 8 <= j1; j += 8) _mm256_storeu_ps(out + j, Dequant8(c + j, sv));
#endif
  for (; j < j1; ++j) out[j] = DequantF32(c[j], s);
}

void DequantSpan(const uint8_t* c, float s, int64_t j0, int64_t j1, uint16_t* out) {
  int64_t j = j0;
#if defined(__AVX2__)
  const __m256 sv = _mm256_set1_ps(s);
  for (; j + 16 <= j1; j += 16) {
    const __m256i lo = RoundBf16x8(Dequant8(c + j, sv)), hi = RoundBf16x8(Dequant8(c + j + 8, sv));
    // packus interleaves 128-bit halves: lanes [lo0-3, hi0-3, lo4-7, hi4-7] -> reorder.
    const __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi32(lo, hi), 0xd8);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + j), packed);
  }
#endif
  for (; j < j1; ++j) out[j] = DequantBf16(c[j], s);
}

// Rows [r0, r1) of the weight matrix into out ([r1 - r0, k], row stride k).
template <typename T>
void DequantRows(const Fp8LinearParams& p, int64_t ldw, int64_t ld_scale, int64_t r0, int64_t r1,
                 T* out) {
  for (int64_t r = r0; r < r1; ++r) {
    const uint8_t* c = p.w + r * ldw;
    const float* s = p.scale_inv + (r / p.block_n) * ld_scale;
    T* o = out + (r - r0) * p.k;
    for (int64_t j0 = 0, b = 0; j0 < p.k; j0 += p.block_k, ++b)
      DequantSpan(c, s[b], j0, std::min(p.k, j0 + p.block_k), o);
  }
}

// T: the element type of the dequantised tile and of x (float, or uint16_t bf16 bits).
template <typename T>
void Run(const Fp8LinearParams& p, const T* x, int64_t ldx, const ParallelFor& pfor) {
  const int64_t ldw = p.ldw ? p.ldw : p.k, ldy = p.ldy ? p.ldy : p.n;
  const int64_t ld_scale = p.ld_scale ? p.ld_scale : (p.k + p.block_k - 1) / p.block_k;
  const int64_t row_bytes = p.k * static_cast<int64_t>(sizeof(T));
  // Activation rows per pass: an L2-sized chunk, as cpu::Linear walks them.
  const int64_t chunk = std::max<int64_t>(4, (256 * 1024) / row_bytes / 4 * 4);
  // Weight rows per dequantised tile: in decode (one pass over x, each element used once) a
  // tile that stays in L1; otherwise one that stays in L2 while x streams past it.
  const int64_t budget = p.m <= 4 ? 24 * 1024 : 192 * 1024;
  const int64_t tile_rows = std::clamp<int64_t>(budget / row_bytes / 2 * 2, 2, 128);
  const int64_t pairs = (p.n + 1) / 2;
  pfor(pairs, [&](int64_t p0, int64_t p1) {
    const int64_t n0 = 2 * p0, n1 = std::min(p.n, 2 * p1);
    thread_local std::vector<T> scratch;
    if (scratch.size() < static_cast<size_t>(tile_rows * p.k)) scratch.resize(tile_rows * p.k);
    for (int64_t t0 = n0; t0 < n1; t0 += tile_rows) {
      const int64_t t1 = std::min(n1, t0 + tile_rows);
      DequantRows(p, ldw, ld_scale, t0, t1, scratch.data());
      for (int64_t i0 = 0; i0 < p.m; i0 += chunk)
        tile::DotRows(scratch.data(), p.k, t1 - t0, x, ldx, i0, std::min(p.m, i0 + chunk), p.k,
                      p.y + t0, ldy, p.accumulate);
    }
  });
}

}  // namespace

void LinearFp8(const Fp8LinearParams& p, const ParallelFor& pfor) {
  if (p.m <= 0 || p.n <= 0) return;
  const int64_t ldx = p.ldx ? p.ldx : p.k;
  if (p.k == 0) {
    if (!p.accumulate) {
      const int64_t ldy = p.ldy ? p.ldy : p.n;
      for (int64_t i = 0; i < p.m; ++i) std::fill(p.y + i * ldy, p.y + i * ldy + p.n, 0.f);
    }
    return;
  }
  if (!p.round_bf16) {
    Run<float>(p, p.x, ldx, pfor);
    return;
  }
  std::vector<uint16_t> xb(static_cast<size_t>(p.m * p.k));
  for (int64_t i = 0; i < p.m; ++i)
    for (int64_t j = 0; j < p.k; ++j) xb[i * p.k + j] = tile::ToBf16(p.x[i * ldx + j]);
  Run<uint16_t>(p, xb.data(), p.k, pfor);
}

}  // namespace dsinfer::cpu
