#include "kernels/cpu/v4_mhc.h"

#include <cmath>
#include <vector>

namespace dsinfer::cpu {
namespace {

float Sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }

// mix[o] = Σ_i fn[o, i] · x[i] / rms(x), x of width n (the unweighted RMSNorm then the linear).
void NormedProject(const float* x, int64_t n, const float* fn, int64_t outs, float eps,
                   float* mix) {
  double ss = 0;
  for (int64_t i = 0; i < n; ++i) ss += static_cast<double>(x[i]) * x[i];
  const float r = 1.0f / std::sqrt(static_cast<float>(ss / n) + eps);
  for (int64_t o = 0; o < outs; ++o) {
    const float* w = fn + o * n;
    float acc = 0;
    for (int64_t i = 0; i < n; ++i) acc += w[i] * (x[i] * r);
    mix[o] = acc;
  }
}

}  // namespace

void Sinkhorn(float* m, int64_t hc, int64_t iters, float eps) {
  auto cols = [&] {
    for (int64_t k = 0; k < hc; ++k) {
      float s = 0;
      for (int64_t j = 0; j < hc; ++j) s += m[j * hc + k];
      for (int64_t j = 0; j < hc; ++j) m[j * hc + k] /= s + eps;
    }
  };
  auto rows = [&] {
    for (int64_t j = 0; j < hc; ++j) {
      float s = 0;
      for (int64_t k = 0; k < hc; ++k) s += m[j * hc + k];
      for (int64_t k = 0; k < hc; ++k) m[j * hc + k] /= s + eps;
    }
  };
  cols();
  for (int64_t t = 1; t < iters; ++t) {
    rows();
    cols();
  }
}

void HcPre(const HcPreParams& p) {
  const int64_t hc = p.hc, D = p.dim, outs = (2 + hc) * hc;
  std::vector<float> mix(outs);
  for (int64_t r = 0; r < p.rows; ++r) {
    const float* x = p.streams + r * hc * D;
    NormedProject(x, hc * D, p.fn, outs, p.norm_eps, mix.data());
    float pre[64];
    for (int64_t j = 0; j < hc; ++j) {
      pre[j] = Sigmoid(mix[j] * p.scale[0] + p.base[j]) + p.hc_eps;
      p.post[r * hc + j] = 2.0f * Sigmoid(mix[hc + j] * p.scale[1] + p.base[hc + j]);
    }
    float* comb = p.comb + r * hc * hc;
    // comb: a row-wise softmax of the logits, + eps, then Sinkhorn.
    for (int64_t j = 0; j < hc; ++j) {
      const float* l = mix.data() + 2 * hc + j * hc;
      const float* b = p.base + 2 * hc + j * hc;
      float mx = -INFINITY;
      for (int64_t k = 0; k < hc; ++k) mx = std::fmax(mx, l[k] * p.scale[2] + b[k]);
      float s = 0;
      for (int64_t k = 0; k < hc; ++k) {
        comb[j * hc + k] = std::exp(l[k] * p.scale[2] + b[k] - mx);
        s += comb[j * hc + k];
      }
      for (int64_t k = 0; k < hc; ++k) comb[j * hc + k] = comb[j * hc + k] / s + p.hc_eps;
    }
    Sinkhorn(comb, hc, p.sinkhorn_iters, p.hc_eps);
    float* out = p.collapsed + r * D;
    for (int64_t d = 0; d < D; ++d) {
      float acc = 0;
      for (int64_t j = 0; j < hc; ++j) acc += pre[j] * x[j * D + d];
      out[d] = acc;
    }
  }
}

void HcPost(const HcPostParams& p) {
  const int64_t hc = p.hc, D = p.dim;
  std::vector<float> in(hc * D);
  for (int64_t r = 0; r < p.rows; ++r) {
    float* s = p.streams + r * hc * D;
    const float* comb = p.comb + r * hc * hc;
    const float* y = p.y + r * D;
    for (int64_t i = 0; i < hc * D; ++i) in[i] = s[i];
    for (int64_t k = 0; k < hc; ++k) {
      const float post = p.post[r * hc + k];
      for (int64_t d = 0; d < D; ++d) {
        float acc = post * y[d];
        for (int64_t j = 0; j < hc; ++j) acc += comb[j * hc + k] * in[j * D + d];
        s[k * D + d] = acc;
      }
    }
  }
}

void HcHead(const HcHeadParams& p) {
  const int64_t hc = p.hc, D = p.dim;
  std::vector<float> mix(hc);
  for (int64_t r = 0; r < p.rows; ++r) {
    const float* x = p.streams + r * hc * D;
    NormedProject(x, hc * D, p.fn, hc, p.norm_eps, mix.data());
    for (int64_t j = 0; j < hc; ++j) mix[j] = Sigmoid(mix[j] * p.scale + p.base[j]) + p.hc_eps;
    float* out = p.out + r * D;
    for (int64_t d = 0; d < D; ++d) {
      float acc = 0;
      for (int64_t j = 0; j < hc; ++j) acc += mix[j] * x[j * D + d];
      out[d] = acc;
    }
  }
}

}  // namespace dsinfer::cpu
