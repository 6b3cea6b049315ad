// Scalar number formats found in checkpoints: bf16, f16, FP8 E4M3 (OCP "e4m3fn"), packed FP4
// E2M1 and E8M0 block scales (DeepSeek-V4 experts), raw bytes.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

namespace dsinfer {

// kF4E2M1x2 is one byte holding two E2M1 codes (low nibble first): a tensor of it has its last
// dimension counted in bytes (safetensors' "F4" counts values; the reader halves it). kU8 / kI8
// are raw bytes (checkpoints store packed FP4 and E8M0 scales in them too). kI32 / kI64: integer
// tables (DeepSeek-V4's tid2eid), read as exact floats (|v| < 2^24).
enum class DType : uint8_t { kF32, kBF16, kF16, kF8E4M3, kF4E2M1x2, kF8E8M0, kU8, kI8, kI32, kI64 };

inline int DTypeSize(DType t) {
  switch (t) {
    case DType::kF32: return 4;
    case DType::kBF16: return 2;
    case DType::kF16: return 2;
    case DType::kF8E4M3: return 1;
    case DType::kF4E2M1x2: return 1;
    case DType::kF8E8M0: return 1;
    case DType::kU8: return 1;
    case DType::kI8: return 1;
    case DType::kI32: return 4;
    case DType::kI64: return 8;
  }
  return 0;
}

inline const char* DTypeName(DType t) {
  switch (t) {
    case DType::kF32: return "F32";
    case DType::kBF16: return "BF16";
    case DType::kF16: return "F16";
    case DType::kF8E4M3: return "F8_E4M3";
    case DType::kF4E2M1x2: return "F4";
    case DType::kF8E8M0: return "F8_E8M0";
    case DType::kU8: return "U8";
    case DType::kI8: return "I8";
    case DType::kI32: return "I32";
    case DType::kI64: return "I64";
  }
  return "?";
}

inline float Bf16ToF32(uint16_t h) {
  uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// Round to nearest even, NaN stays NaN.
inline uint16_t F32ToBf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

inline float RoundToBf16(float f) { return Bf16ToF32(F32ToBf16(f)); }

inline float F16ToF32(uint16_t h) {
  uint32_t sign = (h >> 15) & 1u, exp = (h >> 10) & 0x1fu, man = h & 0x3ffu;
  float v;
  if (exp == 0) {
    v = std::ldexp(static_cast<float>(man), -24);
  } else if (exp == 31) {
    v = man ? NAN : INFINITY;
  } else {
    v = std::ldexp(static_cast<float>(man | 0x400u), static_cast<int>(exp) - 25);
  }
  return sign ? -v : v;
}

// FP8 E4M3 (finite-only variant used by DeepSeek-V3: bias 7, max 448, S.1111.111 is NaN).
inline float F8E4M3ToF32(uint8_t b) {
  uint32_t sign = b >> 7, exp = (b >> 3) & 0xfu, man = b & 0x7u;
  float v;
  if (exp == 15 && man == 7) {
    v = NAN;
  } else if (exp == 0) {
    v = std::ldexp(static_cast<float>(man), -9);
  } else {
    v = std::ldexp(static_cast<float>(man | 0x8u), static_cast<int>(exp) - 10);
  }
  return sign ? -v : v;
}

// Nearest-even quantisation to E4M3 with saturation at ±448 (used by the model writer).
uint8_t F32ToF8E4M3(float f);

}  // namespace dsinfer
