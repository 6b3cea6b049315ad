// FP8 E4M3 as DeepSeek-V3 stores it (OCP "e4m3fn": bias 7, no infinities, S.1111.111 is NaN,
// largest finite 448) <-> f32. Shared by the FP8 kernels and the checkpoint loader and writer
// (src/weights/fp8_block.cc), so that every producer and consumer agrees on every code.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <limits>

namespace dsinfer::cpu {

inline constexpr float kE4M3Max = 448.0f;
inline constexpr uint8_t kE4M3MaxCode = 0x7e;  // +448
inline constexpr uint8_t kE4M3NaN = 0x7f;

// Exact decode without a table: the 7 magnitude bits placed at f32 bit 20 read as
// 2^(e - 127) * (1 + m / 8) (or the denormal m * 2^-129 when e == 0), and multiplying by 2^120
// rebases the exponent to E4M3's bias of 7. Needs denormals honoured (no -ffast-math / DAZ).
inline float E4M3ToF32(uint8_t b) {
  const uint32_t mag = b & 0x7fu;
  const uint32_t bits = mag << 20;
  float f;
  std::memcpy(&f, &bits, 4);
  f *= 0x1p120f;
  f = mag == 0x7fu ? std::numeric_limits<float>::quiet_NaN() : f;
  return (b & 0x80u) ? -f : f;
}

// The 256 decoded values, built once.
inline const std::array<float, 256>& E4M3Table() {
  static const std::array<float, 256> table = [] {
    std::array<float, 256> t{};
    for (int i = 0; i < 256; ++i) t[i] = E4M3ToF32(static_cast<uint8_t>(i));
    return t;
  }();
  return table;
}

// Round to nearest even, saturating at ±448 (infinities too); NaN -> 0x7f. The sign of zero
// is kept (-0.0 -> 0x80), as a hardware cvt.rn.satfinite.e4m3 conversion does.
inline uint8_t F32ToE4M3(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  const uint8_t sign = static_cast<uint8_t>((u >> 24) & 0x80u);
  u &= 0x7fffffffu;
  if (u > 0x7f800000u) return kE4M3NaN;
  if (u >= 0x43e00000u) return sign | kE4M3MaxCode;  // >= 448
  if (u >= 0x3c800000u) {                            // >= 2^-6: a normal E4M3 value
    // Round the 23-bit mantissa to 3 bits (ties to even); a carry bumps the exponent, and
    // values below 448 round to at most 448 (code 0x7e). Rebias 127 -> 7: subtract 120 << 3.
    const uint32_t r = (u + 0x7ffffu + ((u >> 20) & 1u)) >> 20;
    return sign | static_cast<uint8_t>(r - (120u << 3));
  }
  // Denormal range: m * 2^-9, m = round_even(|f| * 2^9) in [0, 8] (8 is the smallest normal,
  // code 0x08). Adding 2^23 rounds to an integer, ties to even, in the default rounding mode.
  float a;
  std::memcpy(&a, &u, 4);
  const float r = a * 0x1p9f + 0x1p23f;
  uint32_t rb;
  std::memcpy(&rb, &r, 4);
  return sign | static_cast<uint8_t>(rb - 0x4b000000u);
}

}  // namespace dsinfer::cpu
