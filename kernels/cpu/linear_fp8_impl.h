// LinearFp8, compiled once per ISA (gemm_avx2.cc, gemm_avx512.cc). Schedules over the same
// numerics:
//  - Tiles (any m): a thread dequantises a tile of its weight rows into scratch (bf16 or f32)
//    and runs tile::DotRows on it, once per L2-sized chunk of activations.
//  - Fused (m <= kFusedMaxRows, block_k % 32 == 0): decode is the bottleneck when each weight
//    is used by few rows, so the codes are decoded in registers and fed straight to the dot
//    products, in the same lanes and order as tile::DotTile (bit-identical results): the AVX2
//    32-code table decode (fp8_decode.h) into FMAs, or, for bf16 runs with AVX512-BF16, the
//    vpermi2b decode (fp8_avx512.h) into vdpbf16ps.
//  - AMX (bf16 runs, any m): the tiles, handed to linear_amx.h's tile GEMM, whose order is not
//    vdpbf16ps's, so the fused schedule does not apply; bf16 tiles are decoded 64 codes at a
//    time with the fused path's vpermi2b tables (DequantRowVbmi).
#pragma once

#include <algorithm>
#include <type_traits>
#include <vector>

#include "kernels/cpu/fp8_avx512.h"
#include "kernels/cpu/fp8_decode.h"
#include "kernels/cpu/linear_amx.h"
#include "kernels/cpu/linear_fp8.h"
#include "kernels/cpu/linear_tile.h"

namespace dsinfer::cpu::DSINFER_CPU_ISA {
namespace {

constexpr int64_t kFusedMaxRows = 4;

struct Geometry {
  int64_t ldx, ldw, ld_scale, ldy, blocks;
};

Geometry GetGeometry(const Fp8LinearParams& p) {
  const int64_t blocks = (p.k + p.block_k - 1) / p.block_k;
  return {p.ldx ? p.ldx : p.k, p.ldw ? p.ldw : p.k, p.ld_scale ? p.ld_scale : blocks,
          p.ldy ? p.ldy : p.n, blocks};
}

// Columns [j0, j1) of one weight row under scale s, exactly (8 at a time, then scalar).
void DequantSpan(const uint8_t* c, float s, int64_t j0, int64_t j1, float* out) {
  int64_t j = j0;
#if defined(__AVX2__)
  const __m256 sv = _mm256_set1_ps(s);
  for (; j + 8 <= j1; j += 8) _mm256_storeu_ps(out + j, fp8::Dequant8(c + j, sv));
#endif
  for (; j < j1; ++j) out[j] = fp8::DequantF32(c[j], s);
}

void DequantSpan(const uint8_t* c, float s, int64_t j0, int64_t j1, uint16_t* out) {
  int64_t j = j0;
#if defined(__AVX2__)
  const __m256 sv = _mm256_set1_ps(s);
  for (; j + 16 <= j1; j += 16) {
    const __m256i lo = fp8::RoundBf16x8(fp8::Dequant8(c + j, sv));
    const __m256i hi = fp8::RoundBf16x8(fp8::Dequant8(c + j + 8, sv));
    // packus works within 128-bit halves: [lo0-3, hi0-3, lo4-7, hi4-7] -> reorder qwords.
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + j),
                        _mm256_permute4x64_epi64(_mm256_packus_epi32(lo, hi), 0xd8));
  }
#endif
  for (; j < j1; ++j) out[j] = fp8::DequantBf16(c[j], s);
}

#if defined(__AVX2__)
// The block tables (Lut, made by Make from a block's scale) of one scale row (one block_n-row
// block of weights), kept per thread for the last two scale rows seen (rows are visited in
// ascending order).
template <typename Lut, Lut (*Make)(float)>
class LutCache {
 public:
  const Lut* Row(const Fp8LinearParams& p, const Geometry& g, int64_t scale_row) {
    Entry& e = entries_[0].row == scale_row ? entries_[0] : entries_[1];
    if (e.row != scale_row) {
      Entry& victim = entries_[0].last_use < entries_[1].last_use ? entries_[0] : entries_[1];
      victim.row = scale_row;
      victim.luts.resize(static_cast<size_t>(g.blocks));
      const float* s = p.scale_inv + scale_row * g.ld_scale;
      for (int64_t b = 0; b < g.blocks; ++b) victim.luts[b] = Make(s[b]);
      victim.last_use = ++clock_;
      return victim.luts.data();
    }
    e.last_use = ++clock_;
    return e.luts.data();
  }
  // Called at the start of each call's work: another call's scales may have the same address.
  void Reset() { entries_[0].row = entries_[1].row = -1; }

 private:
  struct Entry {
    int64_t row = -1;
    uint64_t last_use = 0;
    std::vector<Lut> luts;
  };
  Entry entries_[2];
  uint64_t clock_ = 0;
};
template <int NB>
using TableCache = LutCache<fp8::BlockLut<NB>, fp8::MakeBlockLut<NB>>;

template <typename T>
constexpr int kBytes = static_cast<int>(sizeof(T));

// One weight row into a tile row through the tables; blocks whose scale is outside the tables'
// range take the exact 8-wide path. Needs block_k % 32 == 0.
template <typename T>
void DequantRowTables(const Fp8LinearParams& p, const fp8::BlockLut<kBytes<T>>* luts,
                      const uint8_t* c, const float* s, T* out) {
  for (int64_t b = 0, j0 = 0; j0 < p.k; ++b, j0 += p.block_k) {
    const int64_t j1 = std::min(p.k, j0 + p.block_k);
    int64_t j = j0;
    if (luts[b].fast) {
      for (; j + 32 <= j1; j += 32) {
        if constexpr (std::is_same_v<T, uint16_t>) {
          __m256i first, second;
          fp8::Decode32Bf16(c + j, luts[b], &first, &second);
          _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + j), first);
          _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + j + 16), second);
        } else {
          __m256 w[4];
          fp8::Decode32F32(c + j, luts[b], w);
          for (int q = 0; q < 4; ++q) _mm256_storeu_ps(out + j + 8 * q, w[q]);
        }
      }
    }
    DequantSpan(c, s[b], j, j1, out);
  }
}

// Eight weights as the dot kernels see them: f32 (NB = 4) or bf16-rounded (NB = 2), exactly.
template <int NB>
inline __m256 Exact8(const uint8_t* c, float s) {
  if constexpr (NB == 4)
    return fp8::Dequant8(c, _mm256_set1_ps(s));
  else
    return fp8::DequantBf16x8(c, _mm256_set1_ps(s));
}
template <int NB>
inline float Exact1(uint8_t c, float s) {
  if constexpr (NB == 4)
    return fp8::DequantF32(c, s);
  else
    return tile::FromBf16(fp8::DequantBf16(c, s));
}

// Fused decode + dot products of C weight rows with R activation rows, in DotTile's lanes and
// order: lane l sums k = l mod 8 ascending, then the same horizontal sum, then the scalar tail
// (so bf16 runs are bit-identical to cpu::Linear, and f32 runs equal the tiled schedule). Each
// output is one serial FMA chain; throughput comes from running R * C chains side by side.
// NB = 2: x holds bf16-rounded values and weights are rounded to bf16; NB = 4: all f32.
// `prefetch`: bytes from a row to the same column of the next row group (short rows give the
// hardware prefetcher little to train on).
template <int NB, int R, int C>
void FusedTile(const Fp8LinearParams& p, const fp8::BlockLut<NB>* const* luts,
               const uint8_t* const* wc, const float* const* ws, const float* const* xs,
               int64_t prefetch, float* out) {
  __m256 acc[R][C];
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) acc[r][c] = _mm256_setzero_ps();
  auto fma4 = [&](int c, int64_t j, const __m256* w) {
    for (int r = 0; r < R; ++r)
      for (int q = 0; q < 4; ++q)
        acc[r][c] = _mm256_fmadd_ps(w[q], _mm256_loadu_ps(xs[r] + j + 8 * q), acc[r][c]);
  };
  int64_t j = 0;
  for (int64_t b = 0, j0 = 0; j0 < p.k; ++b, j0 += p.block_k) {
    const int64_t j1 = std::min(p.k, j0 + p.block_k);
    bool fast = true;
    for (int c = 0; c < C; ++c) fast = fast && luts[c][b].fast;
    j = j0;
    if (fast) {
      for (; j + 32 <= j1; j += 32) {
        for (int c = 0; c < C; ++c) {
          __m256 w[4];
          if (j & 32) {  // the next row group's codes, a cache line per 64 codes
            _mm_prefetch(reinterpret_cast<const char*>(wc[c] + j + prefetch), _MM_HINT_T0);
          }
          fp8::Decode32F32(wc[c] + j, luts[c][b], w);
          fma4(c, j, w);
        }
      }
    } else {  // a scale outside the tables' range: the exact 8-wide path, same order
      for (; j + 32 <= j1; j += 32) {
        for (int c = 0; c < C; ++c) {
          __m256 w[4];
          for (int q = 0; q < 4; ++q) w[q] = Exact8<NB>(wc[c] + j + 8 * q, ws[c][b]);
          fma4(c, j, w);
        }
      }
    }
    for (; j + 8 <= j1; j += 8) {
      for (int c = 0; c < C; ++c) {
        const __m256 w = Exact8<NB>(wc[c] + j, ws[c][b]);
        for (int r = 0; r < R; ++r)
          acc[r][c] = _mm256_fmadd_ps(w, _mm256_loadu_ps(xs[r] + j), acc[r][c]);
      }
    }
  }
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) {
      out[r * C + c] = tile::HSum8(acc[r][c]);
    }
  for (; j < p.k; ++j)
    for (int r = 0; r < R; ++r)
      for (int c = 0; c < C; ++c)
        out[r * C + c] += xs[r][j] * Exact1<NB>(wc[c][j], ws[c][j / p.block_k]);
}

// x: [m, k] f32 with row stride ldx (bf16-rounded values when NB = 2).
template <int NB>
struct FusedRun {
  const Fp8LinearParams& p;
  const Geometry& g;
  const float* x;
  int64_t ldx;
  TableCache<NB>& cache;

  // C weight rows from row j against activation rows [i, i + R).
  template <int R, int C>
  void Rows(int64_t i, int64_t j) {
    const fp8::BlockLut<NB>* luts[C];
    const uint8_t* wc[C];
    const float* ws[C];
    for (int c = 0; c < C; ++c) {
      luts[c] = cache.Row(p, g, (j + c) / p.block_n);
      wc[c] = p.w + (j + c) * g.ldw;
      ws[c] = p.scale_inv + ((j + c) / p.block_n) * g.ld_scale;
    }
    const float* xs[R];
    for (int r = 0; r < R; ++r) xs[r] = x + (i + r) * ldx;
    float out[R * C];
    FusedTile<NB, R, C>(p, luts, wc, ws, xs, C * g.ldw, out);
    for (int r = 0; r < R; ++r)
      for (int c = 0; c < C; ++c) {
        float* dst = p.y + (i + r) * g.ldy + j + c;
        *dst = p.accumulate ? *dst + out[r * C + c] : out[r * C + c];
      }
  }

  // Weight rows [j0, j1) against activation rows [i, i + R): 4 rows at a time for R <= 2
  // (more chains in flight), else 2.
  template <int R>
  void RowRange(int64_t i, int64_t j0, int64_t j1) {
    int64_t j = j0;
    if constexpr (R <= 2)
      for (; j + 4 <= j1; j += 4) Rows<R, 4>(i, j);
    for (; j + 2 <= j1; j += 2) Rows<R, 2>(i, j);
    if (j < j1) Rows<R, 1>(i, j);
  }
};

template <int NB>
void RunFused(const Fp8LinearParams& p, const Geometry& g, const float* x, int64_t ldx,
              const ParallelFor& pfor) {
  pfor((p.n + 1) / 2, [&](int64_t p0, int64_t p1) {
    thread_local TableCache<NB> cache;
    cache.Reset();
    FusedRun<NB> run{p, g, x, ldx, cache};
    const int64_t n0 = 2 * p0, n1 = std::min(p.n, 2 * p1);
    // Weight rows in slices whose codes stay in L1 across the activation quads.
    const int64_t slice = std::max<int64_t>(4, 16 * 1024 / p.k / 4 * 4);
    for (int64_t s0 = n0; s0 < n1; s0 += slice) {
      const int64_t s1 = std::min(n1, s0 + slice);
      for (int64_t i = 0; i < p.m; i += 4) {
        switch (std::min<int64_t>(4, p.m - i)) {
          case 4: run.template RowRange<4>(i, s0, s1); break;
          case 3: run.template RowRange<3>(i, s0, s1); break;
          case 2: run.template RowRange<2>(i, s0, s1); break;
          default: run.template RowRange<1>(i, s0, s1); break;
        }
      }
    }
  });
}
#if defined(__AVX512BF16__) && defined(__AVX512VBMI__)
// bf16 runs with AVX512-BF16, m <= kFusedMaxRows: the vpermi2b decode into vdpbf16ps
// (fp8_avx512.h). xb: [m, k] bf16 bits. Threads split row pairs as cpu::Linear does; each
// thread walks its rows kTileCols at a time against the activation rows.
inline void RunFusedBf16(const Fp8LinearParams& p, const Geometry& g, const uint16_t* xb,
                         const ParallelFor& pfor) {
  constexpr int C = tile::kTileCols;
  pfor((p.n + 1) / 2, [&](int64_t p0, int64_t p1) {
    thread_local LutCache<fp8::Bf16Lut, fp8::MakeBf16Lut> cache;
    cache.Reset();
    const int64_t n0 = 2 * p0, n1 = std::min(p.n, 2 * p1);
    const uint16_t* xs[4];
    for (int64_t i = 0; i < p.m; ++i) xs[i] = xb + i * p.k;
    // Weight rows [j, j + CC) against all activation rows.
    auto group = [&](auto cols, int64_t j) {
      constexpr int CC = decltype(cols)::value;
      const fp8::Bf16Lut* luts[CC];
      const uint8_t* wc[CC];
      const float* ws[CC];
      for (int q = 0; q < CC; ++q) {
        luts[q] = cache.Row(p, g, (j + q) / p.block_n);
        wc[q] = p.w + (j + q) * g.ldw;
        ws[q] = p.scale_inv + ((j + q) / p.block_n) * g.ld_scale;
      }
      float out[4 * CC];
      switch (p.m) {
        case 4: fp8::FusedTileBf16<4, CC>(luts, wc, ws, xs, p.k, p.block_k, CC * g.ldw, out); break;
        case 3: fp8::FusedTileBf16<3, CC>(luts, wc, ws, xs, p.k, p.block_k, CC * g.ldw, out); break;
        case 2: fp8::FusedTileBf16<2, CC>(luts, wc, ws, xs, p.k, p.block_k, CC * g.ldw, out); break;
        default: fp8::FusedTileBf16<1, CC>(luts, wc, ws, xs, p.k, p.block_k, CC * g.ldw, out); break;
      }
      for (int64_t i = 0; i < p.m; ++i)
        for (int q = 0; q < CC; ++q) {
          float* dst = p.y + i * g.ldy + j + q;
          *dst = p.accumulate ? *dst + out[i * CC + q] : out[i * CC + q];
        }
    };
    int64_t j = n0;
    for (; j + C <= n1; j += C) group(std::integral_constant<int, C>{}, j);
    for (; j < n1; ++j) group(std::integral_constant<int, 1>{}, j);
  });
}
#endif

#endif  // __AVX2__

#if defined(__AVX512BF16__) && defined(__AVX512VBMI__)
// One row's codes -> bf16 with the vpermi2b tables of fp8_avx512.h, 64 codes at a time (exactly
// DequantBf16, as every path); a block's k % 64 rest exactly, one code at a time.
inline void DequantRowVbmi(const Fp8LinearParams& p, const fp8::Bf16Lut* luts, const uint8_t* c,
                           const float* s, uint16_t* out) {
  for (int64_t b = 0, j0 = 0; j0 < p.k; ++b, j0 += p.block_k) {
    const int64_t j1 = std::min(p.k, j0 + p.block_k);
    int64_t j = j0;
    for (; j + 64 <= j1; j += 64) {
      __m512i lo, hi;
      fp8::Decode64Bf16(c + j, luts[b], &lo, &hi);
      _mm512_storeu_si512(reinterpret_cast<void*>(out + j), lo);
      _mm512_storeu_si512(reinterpret_cast<void*>(out + j + 32), hi);
    }
    DequantSpan(c, s[b], j, j1, out);
  }
}
#endif

// Dequantises tiles of a thread's weight rows (T: float, or uint16_t bf16 bits) into scratch
// and hands each to dot(tile, rows, first_row). Threads take blocks of `unit` rows.
template <typename T, typename Dot>
void ForEachTile(const Fp8LinearParams& p, const Geometry& g, int64_t unit,
                 const ParallelFor& pfor, const Dot& dot) {
  const int64_t row_bytes = p.k * static_cast<int64_t>(sizeof(T));
  // Weight rows per tile: a tile that stays in L2 while the activations stream past it.
  const int64_t tile_rows = std::clamp<int64_t>(192 * 1024 / row_bytes / unit * unit, unit,
                                                std::max<int64_t>(128, unit));
  pfor((p.n + unit - 1) / unit, [&](int64_t b0, int64_t b1) {
    const int64_t n0 = unit * b0, n1 = std::min(p.n, unit * b1);
    thread_local std::vector<T> scratch;
    if (scratch.size() < static_cast<size_t>(tile_rows * p.k)) scratch.resize(tile_rows * p.k);
#if defined(__AVX2__)
    thread_local TableCache<kBytes<T>> cache;
    cache.Reset();
#endif
#if defined(__AVX512BF16__) && defined(__AVX512VBMI__)
    thread_local LutCache<fp8::Bf16Lut, fp8::MakeBf16Lut> bf16_cache;
    bf16_cache.Reset();
#endif
    for (int64_t t0 = n0; t0 < n1; t0 += tile_rows) {
      const int64_t t1 = std::min(n1, t0 + tile_rows);
      for (int64_t r = t0; r < t1; ++r) {  // dequantise rows [t0, t1) into the tile
        const uint8_t* c = p.w + r * g.ldw;
        const float* s = p.scale_inv + (r / p.block_n) * g.ld_scale;
        T* o = scratch.data() + (r - t0) * p.k;
#if defined(__AVX512BF16__) && defined(__AVX512VBMI__)
        if constexpr (std::is_same_v<T, uint16_t>) {
          if (p.block_k % 64 == 0) {
            DequantRowVbmi(p, bf16_cache.Row(p, g, r / p.block_n), c, s, o);
            continue;
          }
        }
#endif
#if defined(__AVX2__)
        if (p.block_k % 32 == 0) {
          DequantRowTables(p, cache.Row(p, g, r / p.block_n), c, s, o);
          continue;
        }
#endif
        for (int64_t b = 0, j0 = 0; j0 < p.k; ++b, j0 += p.block_k)
          DequantSpan(c, s[b], j0, std::min(p.k, j0 + p.block_k), o);
      }
      dot(scratch.data(), t1 - t0, t0);
    }
  });
}

// T: the element type of the dequantised tile and of x (float, or uint16_t bf16 bits).
template <typename T>
void RunTiles(const Fp8LinearParams& p, const Geometry& g, const T* x, int64_t ldx,
              const ParallelFor& pfor) {
  // Activation rows per pass: an L2-sized chunk, as cpu::Linear walks them.
  const int64_t chunk =
      std::max<int64_t>(4, (256 * 1024) / (p.k * static_cast<int64_t>(sizeof(T))) / 4 * 4);
  ForEachTile<T>(p, g, 2, pfor, [&](const T* tile, int64_t rows, int64_t t0) {
    for (int64_t i0 = 0; i0 < p.m; i0 += chunk)
      tile::DotRows(tile, p.k, rows, x, ldx, i0, std::min(p.m, i0 + chunk), p.k, p.y + t0, g.ldy,
                    p.accumulate);
  });
}

}  // namespace

inline void LinearFp8Impl(const Fp8LinearParams& p, const ParallelFor& pfor) {
  if (p.m <= 0 || p.n <= 0) return;
  const Geometry g = GetGeometry(p);
  if (p.k == 0) {
    if (!p.accumulate) {
      for (int64_t i = 0; i < p.m; ++i) std::fill(p.y + i * g.ldy, p.y + i * g.ldy + p.n, 0.f);
    }
    return;
  }
  // The fused schedule pays one decode per activation quad, so it wins only in decode.
  [[maybe_unused]] const bool fused = p.m <= kFusedMaxRows && p.block_k % 32 == 0;
  if (!p.round_bf16) {
#if defined(__AVX2__) && defined(__FMA__)
    if (fused) {
      RunFused<4>(p, g, p.x, g.ldx, pfor);
      return;
    }
#endif
    RunTiles<float>(p, g, p.x, g.ldx, pfor);
    return;
  }
#if defined(__AVX512BF16__) && defined(__AVX512VBMI__)
  if (fused) {
    std::vector<uint16_t> xb(static_cast<size_t>(p.m * p.k));
    for (int64_t i = 0; i < p.m; ++i)
      for (int64_t j = 0; j < p.k; ++j) xb[i * p.k + j] = tile::ToBf16(p.x[i * g.ldx + j]);
    RunFusedBf16(p, g, xb.data(), pfor);
    return;
  }
#elif defined(__AVX2__) && defined(__FMA__) && !defined(__AVX512BF16__)
  // (With AVX512-BF16, tile::DotTile uses vdpbf16ps, whose order the AVX2 fused path does not
  // copy.)
  if (fused) {
    std::vector<float> xr(static_cast<size_t>(p.m * p.k));
    for (int64_t i = 0; i < p.m; ++i)
      for (int64_t j = 0; j < p.k; ++j)
        xr[i * p.k + j] = tile::FromBf16(tile::ToBf16(p.x[i * g.ldx + j]));
    RunFused<2>(p, g, xr.data(), p.k, pfor);
    return;
  }
#endif
  std::vector<uint16_t> xb(static_cast<size_t>(p.m * p.k));
  for (int64_t i = 0; i < p.m; ++i)
    for (int64_t j = 0; j < p.k; ++j) xb[i * p.k + j] = tile::ToBf16(p.x[i * g.ldx + j]);
  RunTiles<uint16_t>(p, g, xb.data(), p.k, pfor);
}

#if defined(DSINFER_AMX_TILES)
// bf16 runs on AMX (linear_amx.h), every m: bf16 tiles of dequantised rows, so the products add
// in cpu::Linear's AMX order (bit-identical to it on the bf16-rounded dequantised matrix).
// f32 runs are not AMX's business and take the tiled schedule.
inline void LinearFp8AmxImpl(const Fp8LinearParams& p, const ParallelFor& pfor) {
  if (!p.round_bf16 || p.m <= 0 || p.n <= 0 || p.k == 0) return LinearFp8Impl(p, pfor);
  const Geometry g = GetGeometry(p);
  amx::PackedX xp;
  amx::PackX(p.x, g.ldx, p.m, p.k, pfor, &xp);
  const int64_t ldy = g.ldy;  // (a capture of g would give the lambda internal linkage)
  ForEachTile<uint16_t>(p, g, 16, pfor, [&](const uint16_t* tile, int64_t rows, int64_t t0) {
    amx::DotRows(tile, p.k, rows, xp, p.y + t0, ldy, p.accumulate);
  });
}
#endif

}  // namespace dsinfer::cpu::DSINFER_CPU_ISA
