// DeepSeek-V4's CPU kernels (kernels/cpu/v4_*.h): mHC with Sinkhorn, the KV compressor (CSA's
// overlapping and HCA's plain windows), sink attention, the lightning indexer's top-k, partial
// trailing RoPE and its inverse, sqrtsoftplus / hash routing, clipped SwiGLU, grouped linear.
// Each is checked against a direct double-precision evaluation of its formula or an invariant.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "kernels/cpu/rope.h"
#include "kernels/cpu/v4_attention.h"
#include "kernels/cpu/v4_mhc.h"
#include "kernels/cpu/v4_moe.h"

namespace dsinfer::cpu {
namespace {

std::vector<float> Random(size_t n, uint32_t seed, float lo = -1, float hi = 1) {
  std::mt19937 g(seed);
  std::uniform_real_distribution<float> u(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = u(g);
  return v;
}

double Sig(double x) { return 1 / (1 + std::exp(-x)); }

TEST(V4Mhc, SinkhornIsDoublyStochastic) {
  const int64_t hc = 4;
  std::vector<float> m = Random(hc * hc, 1, 0.05f, 3.0f);
  Sinkhorn(m.data(), hc, 30, 1e-6f);
  for (int64_t j = 0; j < hc; ++j) {
    double row = 0, col = 0;
    for (int64_t k = 0; k < hc; ++k) row += m[j * hc + k], col += m[k * hc + j];
    EXPECT_NEAR(row, 1.0, 1e-4) << j;
    EXPECT_NEAR(col, 1.0, 1e-5) << j;  // columns are normalised last
  }
}

TEST(V4Mhc, SinkhornOneIterationNormalisesColumnsOnly) {
  const int64_t hc = 3;
  std::vector<float> m = Random(hc * hc, 2, 0.1f, 2.0f), ref = m;
  Sinkhorn(m.data(), hc, 1, 0.0f);
  for (int64_t k = 0; k < hc; ++k) {
    double s = 0;
    for (int64_t j = 0; j < hc; ++j) s += ref[j * hc + k];
    for (int64_t j = 0; j < hc; ++j) EXPECT_NEAR(m[j * hc + k], ref[j * hc + k] / s, 1e-6);
  }
}

TEST(V4Mhc, PreMatchesFormulaAndPostMixes) {
  const int64_t hc = 3, D = 5, rows = 2, outs = (2 + hc) * hc;
  std::vector<float> x = Random(rows * hc * D, 3), fn = Random(outs * hc * D, 4, -0.3f, 0.3f);
  std::vector<float> base = Random(outs, 5), scale = {0.7f, 1.3f, 0.9f};
  std::vector<float> collapsed(rows * D), post(rows * hc), comb(rows * hc * hc);
  HcPre({.streams = x.data(), .fn = fn.data(), .base = base.data(), .scale = scale.data(),
         .collapsed = collapsed.data(), .post = post.data(), .comb = comb.data(), .rows = rows,
         .hc = hc, .dim = D, .sinkhorn_iters = 20, .hc_eps = 1e-6f, .norm_eps = 1e-6f});
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x.data() + r * hc * D;
    double ss = 0;
    for (int64_t i = 0; i < hc * D; ++i) ss += xr[i] * xr[i];
    const double inv = 1 / std::sqrt(ss / (hc * D) + 1e-6);
    std::vector<double> mix(outs);
    for (int64_t o = 0; o < outs; ++o)
      for (int64_t i = 0; i < hc * D; ++i) mix[o] += fn[o * hc * D + i] * xr[i] * inv;
    for (int64_t j = 0; j < hc; ++j) {
      EXPECT_NEAR(post[r * hc + j], 2 * Sig(mix[hc + j] * scale[1] + base[hc + j]), 1e-5);
    }
    for (int64_t d = 0; d < D; ++d) {
      double want = 0;
      for (int64_t j = 0; j < hc; ++j)
        want += (Sig(mix[j] * scale[0] + base[j]) + 1e-6) * xr[j * D + d];
      EXPECT_NEAR(collapsed[r * D + d], want, 1e-5);
    }
    for (int64_t j = 0; j < hc; ++j) {
      double col = 0;
      for (int64_t k = 0; k < hc; ++k) col += comb[r * hc * hc + k * hc + j];
      EXPECT_NEAR(col, 1.0, 1e-4);
    }
  }
  // Post: stream'[k] = post[k] · y + Σ_j comb[j][k] · stream[j].
  std::vector<float> y = Random(rows * D, 6), s = x;
  HcPost({.y = y.data(), .post = post.data(), .comb = comb.data(), .streams = s.data(),
          .rows = rows, .hc = hc, .dim = D});
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t k = 0; k < hc; ++k)
      for (int64_t d = 0; d < D; ++d) {
        double want = post[r * hc + k] * y[r * D + d];
        for (int64_t j = 0; j < hc; ++j)
          want += comb[r * hc * hc + j * hc + k] * x[r * hc * D + j * D + d];
        EXPECT_NEAR(s[r * hc * D + k * D + d], want, 1e-5);
      }
}

TEST(V4Mhc, HeadCollapsesWithSigmoidWeights) {
  const int64_t hc = 2, D = 3;
  std::vector<float> x = Random(hc * D, 7), fn(hc * hc * D, 0.0f), base = {0.5f, -1.0f};
  std::vector<float> out(D);
  HcHead({.streams = x.data(), .fn = fn.data(), .base = base.data(), .scale = 1.0f,
          .out = out.data(), .rows = 1, .hc = hc, .dim = D, .hc_eps = 1e-6f, .norm_eps = 1e-6f});
  for (int64_t d = 0; d < D; ++d)
    EXPECT_NEAR(out[d], (Sig(0.5) + 1e-6) * x[d] + (Sig(-1.0) + 1e-6) * x[D + d], 1e-6);
}

TEST(V4Compressor, PlainWindowIsAGatedSoftmaxPerChannel) {
  const int64_t m = 4, d = 3;
  std::vector<float> kv = Random(m * d, 8), gate = Random(m * d, 9), bias = Random(m * d, 10);
  std::vector<float> out(d);
  CompressWindow({.kv = kv.data(), .gate = gate.data(), .prev_kv = nullptr, .prev_gate = nullptr,
                  .position_bias = bias.data(), .rate = m, .dim = d, .overlap = false,
                  .out = out.data()});
  for (int64_t c = 0; c < d; ++c) {
    double den = 0, num = 0;
    for (int64_t i = 0; i < m; ++i) {
      const double e = std::exp(gate[i * d + c] + bias[i * d + c]);
      den += e, num += e * kv[i * d + c];
    }
    EXPECT_NEAR(out[c], num / den, 1e-6);
  }
}

TEST(V4Compressor, OverlapPoolsPreviousFirstHalfWithCurrentSecondHalf) {
  const int64_t m = 2, d = 3, w = 2 * d;
  std::vector<float> kv = Random(m * w, 11), gate = Random(m * w, 12), bias = Random(m * w, 13);
  std::vector<float> pkv = Random(m * w, 14), pgate = Random(m * w, 15), out(d), first(d);
  CompressWindow({.kv = kv.data(), .gate = gate.data(), .prev_kv = pkv.data(),
                  .prev_gate = pgate.data(), .position_bias = bias.data(), .rate = m, .dim = d,
                  .overlap = true, .out = out.data()});
  for (int64_t c = 0; c < d; ++c) {
    double den = 0, num = 0;
    for (int64_t i = 0; i < m; ++i) {
      double e = std::exp(pgate[i * w + c] + bias[i * w + c]);
      den += e, num += e * pkv[i * w + c];
      e = std::exp(gate[i * w + d + c] + bias[i * w + d + c]);
      den += e, num += e * kv[i * w + d + c];
    }
    EXPECT_NEAR(out[c], num / den, 1e-6);
  }
  // The first window has no predecessor: only its own second-half channels.
  CompressWindow({.kv = kv.data(), .gate = gate.data(), .prev_kv = nullptr, .prev_gate = nullptr,
                  .position_bias = bias.data(), .rate = m, .dim = d, .overlap = true,
                  .out = first.data()});
  for (int64_t c = 0; c < d; ++c) {
    double den = 0, num = 0;
    for (int64_t i = 0; i < m; ++i) {
      const double e = std::exp(gate[i * w + d + c] + bias[i * w + d + c]);
      den += e, num += e * kv[i * w + d + c];
    }
    EXPECT_NEAR(first[c], num / den, 1e-6);
  }
}

TEST(V4Attention, SinkTakesMassButAddsNoValue) {
  const int64_t H = 2, D = 4, n = 3;
  std::vector<float> q = Random(H * D, 16), k = Random(n * D, 17), out(H * D);
  std::vector<const float*> keys = {k.data(), k.data() + D, k.data() + 2 * D};
  std::vector<float> sinks = {-1e30f, 0.3f};
  SinkAttention({.q = q.data(), .keys = keys.data(), .n_keys = n, .sinks = sinks.data(),
                 .heads = H, .head_dim = D, .scale = 0.5f, .out = out.data()});
  for (int64_t h = 0; h < H; ++h) {
    std::vector<double> s(n);
    double den = h == 0 ? 0 : std::exp(0.3);
    for (int64_t j = 0; j < n; ++j) {
      double dot = 0;
      for (int64_t c = 0; c < D; ++c) dot += q[h * D + c] * k[j * D + c];
      den += (s[j] = std::exp(0.5 * dot));
    }
    for (int64_t c = 0; c < D; ++c) {
      double want = 0;
      for (int64_t j = 0; j < n; ++j) want += s[j] / den * k[j * D + c];
      EXPECT_NEAR(out[h * D + c], want, 1e-6);
    }
  }
}

TEST(V4Attention, TrailingRopeRotatesOnlyTheRopeSliceAndInverts) {
  const int64_t H = 2, D = 6, R = 4;
  std::vector<float> x = Random(2 * H * D, 18), orig = x;
  std::vector<int32_t> pos = {3, 17};
  std::vector<float> inv = RopeInvFreq({.rope_dim = R, .theta = 10000.0});
  TrailingRope({.x = x.data(), .positions = pos.data(), .inv_freq = inv.data(), .rows = 2,
                .heads = H, .head_dim = D, .rope_dim = R, .row_stride = H * D});
  for (int64_t r = 0; r < 2; ++r)
    for (int64_t h = 0; h < H; ++h) {
      const float* a = orig.data() + r * H * D + h * D;
      const float* b = x.data() + r * H * D + h * D;
      EXPECT_EQ(a[0], b[0]);
      EXPECT_EQ(a[1], b[1]);
      for (int64_t i = 0; i < R / 2; ++i) {
        const double ang = pos[r] * static_cast<double>(inv[i]);
        EXPECT_NEAR(b[2 + 2 * i], a[2 + 2 * i] * std::cos(ang) - a[3 + 2 * i] * std::sin(ang),
                    1e-5);
        EXPECT_NEAR(b[3 + 2 * i], a[3 + 2 * i] * std::cos(ang) + a[2 + 2 * i] * std::sin(ang),
                    1e-5);
      }
    }
  TrailingRope({.x = x.data(), .positions = pos.data(), .inv_freq = inv.data(), .rows = 2,
                .heads = H, .head_dim = D, .rope_dim = R, .row_stride = H * D, .inverse = true});
  for (size_t i = 0; i < x.size(); ++i) EXPECT_NEAR(x[i], orig[i], 1e-5);
}

TEST(V4Indexer, TopkOfReluWeightedScores) {
  const int64_t H = 2, D = 2;
  // Keys chosen so the scores are known: q_0 = (1, 0), q_1 = (0, 1), w = (1, 2).
  const std::vector<float> q = {1, 0, 0, 1}, w = {1, 2};
  const std::vector<float> k = {3, -1,   // 3·1 + relu(-1)·2 = 3
                                1, 1,    // 1 + 2 = 3 (tie: lower index first)
                                -5, 2,   // 0 + 4 = 4
                                0, 0};   // 0
  std::vector<const float*> keys = {k.data(), k.data() + 2, k.data() + 4, k.data() + 6};
  std::vector<int32_t> chosen(3);
  std::vector<float> scores(4);
  const int64_t n = IndexerTopk({.q = q.data(), .w = w.data(), .keys = keys.data(),
                                 .n_valid = 4, .heads = H, .head_dim = D, .topk = 3,
                                 .chosen = chosen.data(), .scores = scores.data()});
  ASSERT_EQ(n, 3);
  EXPECT_EQ(chosen, (std::vector<int32_t>{2, 0, 1}));
  EXPECT_NEAR(scores[2], 4 / std::sqrt(2.0), 1e-6);
  // Fewer valid keys than topk: all of them.
  EXPECT_EQ(IndexerTopk({.q = q.data(), .w = w.data(), .keys = keys.data(), .n_valid = 2,
                         .heads = H, .head_dim = D, .topk = 3, .chosen = chosen.data(),
                         .scores = scores.data()}),
            2);
}

TEST(V4Moe, SqrtSoftplusTopkBiasSelectsOnly) {
  const std::vector<float> logits = {0.5f, -2.0f, 1.5f, 30.0f, 0.0f};
  const std::vector<float> bias = {10.0f, 0, 0, 0, 0};  // expert 0 chosen by its bias
  std::vector<int32_t> ids(2);
  std::vector<float> w(2);
  V4Route({.logits = logits.data(), .bias = bias.data(), .hash_ids = nullptr, .ids = ids.data(),
           .weights = w.data(), .rows = 1, .n_experts = 5, .top_k = 2, .scale = 1.5f});
  EXPECT_EQ(ids, (std::vector<int32_t>{0, 3}));
  const double s0 = std::sqrt(std::log1p(std::exp(0.5))), s3 = std::sqrt(30.0);
  EXPECT_NEAR(w[0], s0 / (s0 + s3) * 1.5, 1e-6);
  EXPECT_NEAR(w[1], s3 / (s0 + s3) * 1.5, 1e-6);
}

TEST(V4Moe, HashRoutingUsesTheTableAndScoresItsExperts) {
  const std::vector<float> logits = {0.1f, 0.2f, 0.3f, 0.4f};
  const std::vector<int32_t> table = {3, 1};
  std::vector<int32_t> ids(2);
  std::vector<float> w(2);
  V4Route({.logits = logits.data(), .bias = nullptr, .hash_ids = table.data(), .ids = ids.data(),
           .weights = w.data(), .rows = 1, .n_experts = 4, .top_k = 2,
           .scoring = V4RouterScoring::kSigmoid, .scale = 2.0f});
  EXPECT_EQ(ids, table);
  EXPECT_NEAR(w[0], Sig(0.4) / (Sig(0.4) + Sig(0.2)) * 2, 1e-6);
}

TEST(V4Moe, ClippedSwiglu) {
  const std::vector<float> gu = {12.0f, -3.0f, 0.5f, 20.0f, -15.0f, 2.0f};  // gate | up
  std::vector<float> out(3);
  ClippedSiluMul(gu.data(), out.data(), 1, 3, 10.0f);
  auto silu = [](double g) { return g / (1 + std::exp(-g)); };
  EXPECT_NEAR(out[0], silu(10.0) * 10.0, 1e-5);   // gate and up clipped
  EXPECT_NEAR(out[1], silu(-3.0) * -10.0, 1e-5);  // up clipped below
  EXPECT_NEAR(out[2], silu(0.5) * 2.0, 1e-6);
  ClippedSiluMul(gu.data(), out.data(), 1, 3, 0.0f);  // no limit
  EXPECT_NEAR(out[0], silu(12.0) * 20.0, 1e-4);
}

TEST(V4Moe, GroupedLinearIsBlockDiagonal) {
  const int64_t G = 3, I = 4, O = 2, rows = 2;
  std::vector<float> x = Random(rows * G * I, 19), w = Random(G * O * I, 20), y(rows * G * O);
  GroupedLinear({.x = x.data(), .w = w.data(), .y = y.data(), .rows = rows, .groups = G,
                 .in_per_group = I, .out_per_group = O, .ldx = G * I, .ldy = G * O});
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t o = 0; o < G * O; ++o) {
      const int64_t g = o / O;
      double want = 0;
      for (int64_t i = 0; i < I; ++i) want += x[r * G * I + g * I + i] * w[o * I + i];
      EXPECT_NEAR(y[r * G * O + o], want, 1e-5);
    }
}

}  // namespace
}  // namespace dsinfer::cpu
