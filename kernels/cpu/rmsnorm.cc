#include "kernels/cpu/rmsnorm.h"

#include <cmath>

namespace dsinfer::cpu {

void RmsNorm(const RmsNormParams& p) {
  const int64_t ldx = p.ldx ? p.ldx : p.dim, ldy = p.ldy ? p.ldy : p.dim;
  for (int64_t r = 0; r < p.rows; ++r) {
    const float* x = p.x + r * ldx;
    float* y = p.y + r * ldy;
    double ss = 0.0;
    for (int64_t i = 0; i < p.dim; ++i) ss += static_cast<double>(x[i]) * x[i];
    const float inv = 1.0f / std::sqrt(static_cast<float>(ss / p.dim) + p.eps);
    for (int64_t i = 0; i < p.dim; ++i) y[i] = x[i] * inv * p.w[i];
  }
}

}  // namespace dsinfer::cpu
