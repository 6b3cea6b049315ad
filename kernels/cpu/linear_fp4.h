// Linear layers on FP4 E2M1 weights with E8M0 scales per 32 inputs (DeepSeek-V4 routed experts,
// kernels/cpu/fp4.h), without dequantising the whole tensor: y[m, n] (+)= x[m, k] · W^T with
//   W[i][j] = e2m1(code(i, j)) * 2^(scale[i][j / 32] - 127).
// Every W value is exact in f32 and in bf16 (an E2M1 value times a power of two), so:
//   round_bf16 = false: x in f32, f32 accumulation — equal to cpu::Linear (f32) on the
//     dequantised matrix up to summation order;
//   round_bf16 = true: x rounded to bf16 (nearest even), f32 accumulation — bit-identical to
//     cpu::Linear(w_bf16) on the dequantised matrix (the same tile::DotTile lanes and order:
//     AVX512-BF16 vdpbf16ps where the active ISA has it, AVX2 FMA otherwise; vdpbf16ps reads
//     subnormal weights, those under scale 2^-127, as zero).
// Each thread decodes a tile of its weight rows into scratch (a 16-entry table per byte nibble:
// pshufb on AVX2, vpermw on AVX512-BF16) and runs the register-tiled dot kernel on it; threads
// split the weight rows (n). Any m, n; k even; scale values must not be 0xFF (NaN; the loader
// refuses them).
#pragma once

#include <cstdint>

#include "kernels/cpu/parallel.h"

namespace dsinfer::cpu {

struct Fp4LinearParams {
  const float* x = nullptr;      // [m, k] row stride ldx (>= k)
  const uint8_t* w = nullptr;    // [n, k / 2] packed E2M1 codes (low nibble first), row stride ldw bytes
  const uint8_t* scale = nullptr;  // [n, ceil(k / 32)] E8M0, row stride ld_scale
  float* y = nullptr;            // [m, n] row stride ldy (>= n)
  int64_t m = 0, n = 0, k = 0;   // k even
  int64_t ldx = 0;       // 0 means k
  int64_t ldw = 0;       // 0 means k / 2
  int64_t ld_scale = 0;  // 0 means ceil(k / 32)
  int64_t ldy = 0;       // 0 means n
  bool round_bf16 = false;
  bool accumulate = false;  // y += x·W^T instead of y = x·W^T
};

// Runs on the active CPU ISA (kernels/cpu/isa.h).
void LinearFp4(const Fp4LinearParams& p, const ParallelFor& pfor);

// The definition, scalar and serial: each output the double-precision sum over j of
// x[i][j] (bf16-rounded when round_bf16) * W[o][j], rounded to f32 (added to y[i][o] in f32
// when accumulate). The kernels are held to it in tests (kernels_fp4_test).
void LinearFp4Ref(const Fp4LinearParams& p);

}  // namespace dsinfer::cpu
