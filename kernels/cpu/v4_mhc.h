// DeepSeek-V4's manifold-constrained hyper-connections (mHC; V4 paper §2.2, Xie et al. 2026):
// the residual is hc streams of width D per token. Before a block, a one-layer perceptron over
// the RMS-normed (unweighted) concatenated streams gives pre [hc], post [hc] and comb [hc, hc];
// comb is projected onto doubly-stochastic matrices by Sinkhorn-Knopp. The block reads
// Σ_j pre[j]·stream[j]; afterwards stream'[k] = post[k]·y + Σ_j comb[j][k]·stream[j].
// The final hyper-head collapses the streams with its own sigmoid weights before the last norm.
#pragma once

#include <cstdint>

namespace dsinfer::cpu {

struct HcPreParams {
  const float* streams;  // [rows, hc * dim] (stream j at columns [j * dim, (j + 1) * dim))
  const float* fn;       // [(2 + hc) * hc, hc * dim] the projection (rows: pre | post | comb)
  const float* base;     // [(2 + hc) * hc]
  const float* scale;    // [3]: pre, post, comb
  float* collapsed;      // [rows, dim] out: Σ_j pre[j] · stream[j]
  float* post;           // [rows, hc] out: 2 · sigmoid(...)
  float* comb;           // [rows, hc * hc] out: comb[j * hc + k], doubly stochastic (rows j)
  int64_t rows, hc, dim;
  int64_t sinkhorn_iters;
  float hc_eps;    // added to pre and comb, and to every Sinkhorn denominator
  float norm_eps;  // the unweighted RMSNorm's eps (rms_norm_eps)
};

void HcPre(const HcPreParams& p);

// Sinkhorn-Knopp on one [hc, hc] matrix m (row j, column k at m[j * hc + k]), as DeepSeek's
// hc_split_sinkhorn: columns normalised first, then iters - 1 rounds of rows then columns, each
// denominator + eps.
void Sinkhorn(float* m, int64_t hc, int64_t iters, float eps);

struct HcPostParams {
  const float* y;      // [rows, dim] the block's output
  const float* post;   // [rows, hc]
  const float* comb;   // [rows, hc * hc]
  float* streams;      // [rows, hc * dim] in: the block's input streams; out: the mixed streams
  int64_t rows, hc, dim;
};

void HcPost(const HcPostParams& p);

struct HcHeadParams {
  const float* streams;  // [rows, hc * dim]
  const float* fn;       // [hc, hc * dim]
  const float* base;     // [hc]
  float scale;           // hc_scale[0]
  float* out;            // [rows, dim]: Σ_j (sigmoid(fn·norm(x) · scale + base)[j] + eps) · x_j
  int64_t rows, hc, dim;
  float hc_eps, norm_eps;
};

void HcHead(const HcHeadParams& p);

}  // namespace dsinfer::cpu
