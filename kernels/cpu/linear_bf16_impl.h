// cpu::Linear on bf16 weights, compiled once per ISA (included by gemm_avx2.cc and
// gemm_avx512.cc with DSINFER_CPU_ISA naming the namespace). Internal to kernels/cpu.
#pragma once

#include <algorithm>
#include <vector>

#include "kernels/cpu/linear.h"
#include "kernels/cpu/linear_amx.h"
#include "kernels/cpu/linear_tile.h"

namespace dsinfer::cpu::DSINFER_CPU_ISA {

// bf16 weights x f32 activations (rounded to bf16), f32 accumulation. Weight rows are split
// across threads; activations are walked in chunks that stay in L2 while a thread's weight rows
// stream past, so weights are read from memory once per chunk (once in decode).
inline void GemmBf16Impl(const LinearParams& p, const ParallelFor& pfor) {
  const int64_t ldx = p.ldx ? p.ldx : p.k, ldy = p.ldy ? p.ldy : p.n;
  std::vector<uint16_t> xb(static_cast<size_t>(p.m * p.k));
  for (int64_t i = 0; i < p.m; ++i)
    for (int64_t j = 0; j < p.k; ++j) xb[i * p.k + j] = tile::ToBf16(p.x[i * ldx + j]);
  const uint16_t* w = static_cast<const uint16_t*>(p.w);
  const int64_t chunk = std::max<int64_t>(4, (256 * 1024 / 2) / std::max<int64_t>(1, p.k) / 4 * 4);
  const int64_t pairs = (p.n + 1) / 2;
  pfor(pairs, [&](int64_t p0, int64_t p1) {
    const int64_t n0 = 2 * p0, n1 = std::min(p.n, 2 * p1);
    for (int64_t i0 = 0; i0 < p.m; i0 += chunk) {
      const int64_t i1 = std::min(p.m, i0 + chunk);
      tile::DotRows(w + n0 * p.k, p.k, n1 - n0, xb.data(), p.k, i0, i1, p.k, p.y + n0, ldy,
                    p.accumulate);
    }
  });
}

#if defined(DSINFER_AMX_TILES)
// The AMX schedule (linear_amx.h), for every m: activations packed once, then blocks of 16
// weight rows split across threads (so no output's order depends on the split).
inline void GemmBf16AmxImpl(const LinearParams& p, const ParallelFor& pfor) {
  const int64_t ldx = p.ldx ? p.ldx : p.k, ldy = p.ldy ? p.ldy : p.n;
  amx::PackedX xp;
  amx::PackX(p.x, ldx, p.m, p.k, pfor, &xp);
  const uint16_t* w = static_cast<const uint16_t*>(p.w);
  pfor((p.n + 15) / 16, [&](int64_t b0, int64_t b1) {
    const int64_t n0 = 16 * b0, n1 = std::min(p.n, 16 * b1);
    amx::DotRows(w + n0 * p.k, p.k, n1 - n0, xp, p.y + n0, ldy, p.accumulate);
  });
}
#endif

}  // namespace dsinfer::cpu::DSINFER_CPU_ISA
