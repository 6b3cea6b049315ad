// The inner loops the CPU attention kernels share (mla_attention.cc, gqa_attention.cc):
// dot products, axpy and the row softmax, vectorised with OpenMP SIMD.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace dsinfer::cpu::attention_math {

inline float Dot(const float* a, const float* b, int64_t n) {
  float s = 0.f;
#pragma omp simd reduction(+ : s)
  for (int64_t i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

inline void Axpy(float a, const float* x, float* y, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

// In-place softmax over s[0, n) in f32 with the max subtracted (sum in double).
inline void Softmax(float* s, int64_t n) {
  float mx = -INFINITY;
  for (int64_t i = 0; i < n; ++i) mx = std::max(mx, s[i]);
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += (s[i] = std::exp(s[i] - mx));
  const float inv = static_cast<float>(1.0 / sum);
  for (int64_t i = 0; i < n; ++i) s[i] *= inv;
}

}  // namespace dsinfer::cpu::attention_math
