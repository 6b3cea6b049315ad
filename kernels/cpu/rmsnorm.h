// RMSNorm: y = x / sqrt(mean(x^2) + eps) * w, over the last dimension, in f32.
#pragma once

#include <cstdint>

namespace dsinfer::cpu {

struct RmsNormParams {
  const float* x;     // [rows, dim], row stride ldx (0 = dim)
  const float* w;     // [dim]
  float* y;           // [rows, dim], row stride ldy (0 = dim); may alias x when strides match
  int64_t rows, dim;
  float eps;
  int64_t ldx = 0, ldy = 0;
};

void RmsNorm(const RmsNormParams& p);

}  // namespace dsinfer::cpu
