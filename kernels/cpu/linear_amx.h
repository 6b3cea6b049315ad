// The AMX-BF16 tile GEMM behind cpu::Linear (bf16) and the bf16 runs of cpu::LinearFp8 and
// cpu::LinearFp4 where the CPU has AMX (isa.h: kAmxBf16). Internal to kernels/cpu; compiled per
// ISA like linear_tile.h, but only the avx512 build (-march=native on an AMX machine) has it.
//
// Design: Intel's AMX programming model (SDM vol. 1 ch. "Intel AMX", TDPBF16PS in vol. 2; the
// Optimization Reference Manual's AMX chapter) with oneDNN's brgemm blocking on AMX: 2 x 2
// accumulator tiles (32 x 32 outputs) fed by 2 A and 2 B tiles per 32-wide k step, which uses
// all 8 tile registers. The weight is the A operand, read in place in Hugging Face layout [n, k]
// (a tile is 16 weight rows x 32 bf16, one cache line per row), so weights are never repacked
// and decode and prefill share them. The activations are the B operand, packed once per call
// into the k-pair interleaved (VNNI-style) layout TDPBF16PS wants, [16 k pairs][cols rows][2],
// by the pass that rounds them to bf16 anyway. A C tile is [16 weight rows][cols activation
// rows] of y^T, transposed on the way out.
//
// Summation order of one output: one f32 accumulator over k in 32-wide steps, TDPBF16PS's pair
// order within a step; k is zero-padded to a multiple of 32. No tile shape, block position,
// thread split, cols (min(m, 16)) or batch changes it, so a row's result never depends on the
// other rows of the call: the contract of linear_tile.h, with AMX's own order (which differs
// from vdpbf16ps's 16 lanes: an ISA choice, like AVX2 vs AVX-512).
#pragma once

#ifndef DSINFER_CPU_ISA
#error "linear_amx.h is compiled per ISA: define DSINFER_CPU_ISA (see gemm_avx512.cc)"
#endif

#if defined(__AMX_TILE__) && defined(__AMX_BF16__) && defined(__AVX512BF16__)
#define DSINFER_AMX_TILES 1

#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "kernels/cpu/parallel.h"

namespace dsinfer::cpu::DSINFER_CPU_ISA::amx {

inline constexpr int64_t kTileK = 32;  // bf16 elements of k per tile step (16 pairs)

// Activations as B tiles: per block jb of `cols` activation rows and 32-wide k chunk kc, one
// [16 k pairs][cols][2] bf16 tile, contiguous (row stride cols * 4 bytes). Rows beyond m and k
// beyond k are zero.
struct PackedX {
  std::unique_ptr<uint16_t[]> data;  // [blocks][chunks][16][cols][2]
  int64_t m = 0, k = 0, chunks = 0, cols = 0, blocks = 0;
  const uint16_t* Tile(int64_t jb, int64_t kc) const {
    return data.get() + (jb * chunks + kc) * kTileK * cols;
  }
};

// 16 f32 -> bf16 bits, exactly tile::ToBf16 (nearest even; NaN kept quiet).
inline __m256i ToBf16x16(__m512i u) {
  const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
  __m512i r = _mm512_srli_epi32(
      _mm512_add_epi32(_mm512_add_epi32(u, _mm512_set1_epi32(0x7fff)), lsb), 16);
  const __mmask16 nan = _mm512_cmpgt_epu32_mask(
      _mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff)), _mm512_set1_epi32(0x7f800000));
  r = _mm512_mask_or_epi32(r, nan, _mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40));
  return _mm512_cvtepi32_epi16(r);
}

// Packs activation blocks [jb0, jb1) of x [m, k] (row stride ldx), rounded to bf16.
inline void PackBlocks(const float* x, int64_t ldx, int64_t jb0, int64_t jb1, PackedX* xp) {
  const int64_t cols = xp->cols, k = xp->k;
  std::vector<uint16_t> row(static_cast<size_t>(xp->chunks * kTileK), 0);  // zero beyond k
  for (int64_t jb = jb0; jb < jb1; ++jb) {
    uint16_t* blk = xp->data.get() + jb * xp->chunks * kTileK * cols;
    for (int64_t c = 0; c < cols; ++c) {
      const int64_t i = jb * cols + c;
      if (i >= xp->m) {  // the last block's missing rows: zero columns
        for (int64_t q = 0; q < xp->chunks * kTileK / 2; ++q)
          std::memset(blk + q * 2 * cols + 2 * c, 0, 4);
        continue;
      }
      const float* xr = x + i * ldx;
      int64_t j = 0;
      for (; j + 16 <= k; j += 16)
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(row.data() + j),
                            ToBf16x16(_mm512_loadu_si512(reinterpret_cast<const void*>(xr + j))));
      if (j < k) {
        const __mmask16 tail = static_cast<__mmask16>((1u << (k - j)) - 1);
        _mm256_mask_storeu_epi16(row.data() + j, tail,
                                 ToBf16x16(_mm512_maskz_loadu_epi32(tail, xr + j)));
      }
      // Pair q of the row (k = 2q, 2q + 1) goes to tile row q % 16 of chunk q / 16; chunks are
      // consecutive, so pair q lands at q * 2 * cols.
      for (int64_t q = 0; q < xp->chunks * kTileK / 2; ++q)
        std::memcpy(blk + q * 2 * cols + 2 * c, row.data() + 2 * q, 4);
    }
  }
}

// x [m, k] (row stride ldx) rounded to bf16 into B tiles; large ones packed by the threads.
inline void PackX(const float* x, int64_t ldx, int64_t m, int64_t k, const ParallelFor& pfor,
                  PackedX* xp) {
  xp->m = m;
  xp->k = k;
  xp->chunks = (k + kTileK - 1) / kTileK;
  xp->cols = std::min<int64_t>(m, 16);
  xp->blocks = (m + xp->cols - 1) / xp->cols;
  xp->data.reset(new uint16_t[static_cast<size_t>(xp->blocks * xp->chunks * kTileK * xp->cols)]);
  if (m * k < (int64_t{1} << 18)) {  // a decode-sized pack is not worth waking the pool
    PackBlocks(x, ldx, 0, xp->blocks, xp);
    return;
  }
  pfor(xp->blocks, [&](int64_t b0, int64_t b1) { PackBlocks(x, ldx, b0, b1, xp); });
}

inline void CompilerBarrier() { asm volatile("" ::: "memory"); }

// The palette-1 tile configuration (64 bytes, SDM: LDTILECFG).
struct alignas(64) TileConfig {
  uint8_t palette = 1, start_row = 0, reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

// tmm0-3: C, [16 weight rows][cols f32]; tmm4, tmm5: A, [16 weight rows][32 bf16];
// tmm6, tmm7: B, [16 k pairs][cols bf16 pairs].
inline void LoadTileConfig(int64_t cols) {
  TileConfig cfg;
  for (int t = 0; t < 8; ++t) {
    cfg.rows[t] = 16;
    cfg.colsb[t] = static_cast<uint16_t>(t == 4 || t == 5 ? 64 : cols * 4);
  }
  // The whole 64 bytes as the operand (GCC 12's _tile_loadconfig names only the first 8).
  asm volatile("ldtilecfg %0" ::"m"(cfg));
}

// How far ahead (k chunks, a cache line each) a block that streams its weight rows from memory
// prefetches them: the 16-32 rows of a block sit in as many 4 KiB pages, more streams than the
// hardware prefetcher follows well.
inline constexpr int64_t kPrefetchChunks = 8;

// NA x NB accumulator tiles over every k chunk: A tile qa is 16 weight rows at a[qa] (row stride
// lda[qa] elements), B tile qb is activation block jb + qb. Tile (qa, qb) is stored at
// c + (2 * qa + qb) * 256, [16][cols]. kPrefetch: the first block of a pass over these weight
// rows, which reads them from memory.
template <int NA, int NB, bool kPrefetch>
inline void TileBlock(const uint16_t* const* a, const int64_t* lda, const PackedX& xp, int64_t jb,
                      float* c) {
  _tile_zero(0);
  if constexpr (NB == 2) _tile_zero(1);
  if constexpr (NA == 2) _tile_zero(2);
  if constexpr (NA == 2 && NB == 2) _tile_zero(3);
  const int64_t sb = xp.cols * 4;
  for (int64_t kc = 0; kc < xp.chunks; ++kc) {
    if constexpr (kPrefetch) {
      if (kc + kPrefetchChunks < xp.chunks) {
        for (int q = 0; q < NA; ++q)
          for (int r = 0; r < 16; ++r)
            _mm_prefetch(reinterpret_cast<const char*>(a[q] + r * lda[q] +
                                                       (kc + kPrefetchChunks) * kTileK),
                         _MM_HINT_T0);
      }
    }
    _tile_loadd(4, a[0] + kc * kTileK, lda[0] * 2);
    _tile_loadd(6, xp.Tile(jb, kc), sb);
    _tile_dpbf16ps(0, 4, 6);
    if constexpr (NB == 2) {
      _tile_loadd(7, xp.Tile(jb + 1, kc), sb);
      _tile_dpbf16ps(1, 4, 7);
    }
    if constexpr (NA == 2) {
      _tile_loadd(5, a[1] + kc * kTileK, lda[1] * 2);
      _tile_dpbf16ps(2, 5, 6);
      if constexpr (NB == 2) _tile_dpbf16ps(3, 5, 7);
    }
  }
  _tile_stored(0, c, sb);
  if constexpr (NB == 2) _tile_stored(1, c + 256, sb);
  if constexpr (NA == 2) _tile_stored(2, c + 512, sb);
  if constexpr (NA == 2 && NB == 2) _tile_stored(3, c + 768, sb);
}

// y[i * ldy + r] (+)= sum_k x[i][k] * w[r][k] for weight rows r in [0, rows) (w: bf16, row
// stride ldw, k = xp.k columns) and every activation row i of xp. Blocks of 16 weight rows that
// the tiles cannot read in place (fewer than 16 rows left, or k not a multiple of 32) are copied
// zero-padded first. Loads the tile configuration and releases the tiles.
inline void DotRows(const uint16_t* w, int64_t ldw, int64_t rows, const PackedX& xp, float* y,
                    int64_t ldy, bool accumulate) {
  if (rows <= 0 || xp.m <= 0) return;
  // GCC's tile-load intrinsics are asm without a memory operand: make every store the tiles are
  // about to read (a caller's dequantised tile, the zero-padded copies below) happen first.
  CompilerBarrier();
  const int64_t kp = xp.chunks * kTileK;
  thread_local std::vector<uint16_t> pad;
  alignas(64) float c[4 * 256];
  // Activation blocks per pass: ~1 MiB of B tiles, which stay in L2 while the weight rows of
  // the thread stream past (a 32-row panel is then reused from L2 by every block of the pass).
  const int64_t block_bytes = xp.chunks * kTileK * xp.cols * 2;
  const int64_t pass = std::max<int64_t>(2, (int64_t{1} << 20) / block_bytes / 2 * 2);
  LoadTileConfig(xp.cols);
  for (int64_t jb0 = 0; jb0 < xp.blocks; jb0 += pass) {
    const int64_t jb1 = std::min(xp.blocks, jb0 + pass);
    for (int64_t n = 0; n < rows; n += 32) {
      const int na = rows - n > 16 ? 2 : 1;
      const uint16_t* a[2];
      int64_t lda[2];
      for (int q = 0; q < na; ++q) {
        const int64_t r0 = n + 16 * q, valid = std::min<int64_t>(16, rows - r0);
        if (valid == 16 && kp == xp.k) {
          a[q] = w + r0 * ldw;
          lda[q] = ldw;
          continue;
        }
        if (pad.size() < static_cast<size_t>(32 * kp)) pad.resize(32 * kp);
        uint16_t* dst = pad.data() + q * 16 * kp;
        std::fill(dst, dst + 16 * kp, uint16_t{0});
        for (int64_t r = 0; r < valid; ++r)
          std::memcpy(dst + r * kp, w + (r0 + r) * ldw, xp.k * 2);
        a[q] = dst;
        lda[q] = kp;
      }
      CompilerBarrier();
      for (int64_t jb = jb0; jb < jb1; jb += 2) {
        const int nb = jb1 - jb >= 2 ? 2 : 1;
        if (jb == jb0) {
          if (na == 2 && nb == 2) TileBlock<2, 2, true>(a, lda, xp, jb, c);
          else if (na == 2) TileBlock<2, 1, true>(a, lda, xp, jb, c);
          else if (nb == 2) TileBlock<1, 2, true>(a, lda, xp, jb, c);
          else TileBlock<1, 1, true>(a, lda, xp, jb, c);
        } else {
          if (na == 2 && nb == 2) TileBlock<2, 2, false>(a, lda, xp, jb, c);
          else if (na == 2) TileBlock<2, 1, false>(a, lda, xp, jb, c);
          else if (nb == 2) TileBlock<1, 2, false>(a, lda, xp, jb, c);
          else TileBlock<1, 1, false>(a, lda, xp, jb, c);
        }
        for (int qa = 0; qa < na; ++qa)
          for (int qb = 0; qb < nb; ++qb) {
            const float* t = c + (2 * qa + qb) * 256;
            const int64_t r0 = n + 16 * qa, vr = std::min<int64_t>(16, rows - r0);
            const int64_t i0 = (jb + qb) * xp.cols, vc = std::min(xp.cols, xp.m - i0);
            for (int64_t j = 0; j < vc; ++j) {
              float* dst = y + (i0 + j) * ldy + r0;
              if (accumulate) {
                for (int64_t r = 0; r < vr; ++r) dst[r] += t[r * xp.cols + j];
              } else {
                for (int64_t r = 0; r < vr; ++r) dst[r] = t[r * xp.cols + j];
              }
            }
          }
      }
    }
  }
  _tile_release();
}

}  // namespace dsinfer::cpu::DSINFER_CPU_ISA::amx

#endif  // AMX
