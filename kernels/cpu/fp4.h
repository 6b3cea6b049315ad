// FP4 E2M1 weights with E8M0 block scales, as DeepSeek-V4 stores routed experts (and OCP MX
// formats define them): two E2M1 codes per byte along the input dimension, the low nibble first
// (element 2j in bits 0-3 of byte j); one E8M0 scale (2^(e - 127), 0xFF = NaN) per
// kFp4BlockK consecutive inputs of a row. Shared by the FP4 kernels and the checkpoint loader
// (src/weights), so every reader agrees on every code.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

namespace dsinfer::cpu {

inline constexpr int64_t kFp4BlockK = 32;   // inputs per E8M0 scale
inline constexpr uint8_t kE8M0NaN = 0xff;

// E2M1: sign, 2 exponent bits (bias 1), 1 mantissa bit; no infinities or NaN.
inline constexpr float kE2M1Values[16] = {0.0f,  0.5f,  1.0f,  1.5f,  2.0f,  3.0f,  4.0f,  6.0f,
                                          -0.0f, -0.5f, -1.0f, -1.5f, -2.0f, -3.0f, -4.0f, -6.0f};

inline float E2M1ToF32(uint8_t nibble) { return kE2M1Values[nibble & 0xf]; }

// 2^(e - 127) exactly (e = 0 is the f32 subnormal 2^-127); NaN for 0xFF.
inline float E8M0ToF32(uint8_t e) {
  if (e == kE8M0NaN) return std::numeric_limits<float>::quiet_NaN();
  const uint32_t bits = e == 0 ? 0x00400000u : static_cast<uint32_t>(e) << 23;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// Element j of a packed row.
inline uint8_t Fp4Code(const uint8_t* packed_row, int64_t j) {
  const uint8_t b = packed_row[j >> 1];
  return (j & 1) ? static_cast<uint8_t>(b >> 4) : static_cast<uint8_t>(b & 0xf);
}

// Columns [0, cols) of one packed row with its scales [ceil(cols / kFp4BlockK)] into f32,
// exactly (E2M1 values times a power of two).
inline void DequantFp4Row(const uint8_t* packed_row, const uint8_t* scales, int64_t cols,
                          float* out) {
  for (int64_t j = 0; j < cols; ++j)
    out[j] = E2M1ToF32(Fp4Code(packed_row, j)) * E8M0ToF32(scales[j / kFp4BlockK]);
}

// The nearest E2M1 code of v (ties to even mantissa, saturating at +-6): the quantiser of
// tests and fixture writers.
inline uint8_t F32ToE2M1(float v) {
  const uint8_t sign = std::signbit(v) ? 8 : 0;
  const float a = std::fabs(v);
  // Midpoints between consecutive magnitudes 0, .5, 1, 1.5, 2, 3, 4, 6; at a tie the even
  // code (mantissa bit 0) wins.
  static constexpr float kMid[7] = {0.25f, 0.75f, 1.25f, 1.75f, 2.5f, 3.5f, 5.0f};
  uint8_t c = 0;
  while (c < 7 && (a > kMid[c] || (a == kMid[c] && (c & 1)))) ++c;
  return static_cast<uint8_t>(sign | c);
}

}  // namespace dsinfer::cpu
