#include "src/core/numeric.h"

namespace dsinfer {

uint8_t F32ToF8E4M3(float f) {
  if (std::isnan(f)) return 0x7f;
  uint8_t sign = std::signbit(f) ? 0x80 : 0;
  float a = std::fabs(f);
  if (a >= 448.0f) return sign | 0x7e;
  // Positive codes 0..0x7e increase monotonically in magnitude: binary-search the bracket.
  int lo = 0, hi = 0x7e;
  while (hi - lo > 1) {
    int mid = (lo + hi) / 2;
    if (F8E4M3ToF32(static_cast<uint8_t>(mid)) <= a) lo = mid; else hi = mid;
  }
  float dlo = a - F8E4M3ToF32(static_cast<uint8_t>(lo));
  float dhi = F8E4M3ToF32(static_cast<uint8_t>(hi)) - a;
  int code = (dlo < dhi || (dlo == dhi && (lo & 1) == 0)) ? lo : hi;
  return sign | static_cast<uint8_t>(code);
}

}  // namespace dsinfer
