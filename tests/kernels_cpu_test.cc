// CPU kernels against straightforward loops: the reference every GPU kernel is later held to.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <set>
#include <string>
#include <thread>

#include "kernels/cpu/isa.h"
#include "kernels/cpu/linear.h"
#include "kernels/cpu/mla_attention.h"
#include "kernels/cpu/moe_router.h"
#include "kernels/cpu/rope.h"

namespace dsinfer::cpu {
namespace {

std::vector<float> Random(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

uint16_t Bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}
float FromBf16(uint16_t h) {
  uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// Runs fn once per GEMM ISA this machine has (AVX2 always: the fallback), kernels switched to it.
void ForEachIsa(const std::function<void()>& fn) {
  const CpuIsa before = ActiveCpuIsa();
  for (CpuIsa isa : {CpuIsa::kAvx2, CpuIsa::kAvx512Bf16, CpuIsa::kAmxBf16}) {
    if (!SetActiveCpuIsa(isa)) continue;
    SCOPED_TRACE(CpuIsaName(isa));
    fn();
  }
  SetActiveCpuIsa(before);
}

void TwoThreads(int64_t n, const RangeBody& body) {
  std::thread t([&] { body(n / 2, n); });
  if (n / 2 > 0) body(0, n / 2);
  t.join();
}

// DSINFER_CPU_ISA=avx2 / avx512 (how ctest runs the .avx2 / .avx512 copies of these suites)
// selects that fallback; otherwise the best ISA the machine has is active.
TEST(CpuIsa, EnvironmentSelectsTheKernels) {
  EXPECT_TRUE(CpuIsaAvailable(CpuIsa::kAvx2));
  if (CpuIsaAvailable(CpuIsa::kAmxBf16)) {
    EXPECT_TRUE(CpuIsaAvailable(CpuIsa::kAvx512Bf16));  // AMX runs on top of it
  }
  const char* env = std::getenv("DSINFER_CPU_ISA");
  const std::string want = env != nullptr ? env : "";
  if (want == "avx2") {
    EXPECT_EQ(ActiveCpuIsa(), CpuIsa::kAvx2);
  } else if (want == "avx512" && CpuIsaAvailable(CpuIsa::kAvx512Bf16)) {
    EXPECT_EQ(ActiveCpuIsa(), CpuIsa::kAvx512Bf16);
  } else if (CpuIsaAvailable(CpuIsa::kAmxBf16)) {
    EXPECT_EQ(ActiveCpuIsa(), CpuIsa::kAmxBf16);
  } else if (CpuIsaAvailable(CpuIsa::kAvx512Bf16)) {
    EXPECT_EQ(ActiveCpuIsa(), CpuIsa::kAvx512Bf16);
  }
  std::printf("active GEMM ISA: %s\n", CpuIsaName(ActiveCpuIsa()));
}

TEST(Linear, F32AndBf16MatchNaive) {
  const ParallelFor serial = SerialFor;
  ForEachIsa([&] {
    for (int64_t m : {1, 3, 5, 16, 17, 40}) {
      const int64_t n = 37, k = 75;  // odd sizes: tails in every loop
      auto x = Random(m * k, 1), w = Random(n * k, 2);
      std::vector<uint16_t> wb(n * k);
      for (size_t i = 0; i < wb.size(); ++i) wb[i] = Bf16(w[i]);
      std::vector<float> y(m * n), yb(m * n, 5.0f);
      Linear({.x = x.data(), .w = w.data(), .y = y.data(), .m = m, .n = n, .k = k}, serial);
      Linear(
          {.x = x.data(), .w = wb.data(), .y = yb.data(), .m = m, .n = n, .k = k, .w_bf16 = true},
          serial);
      for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < n; ++j) {
          double ref = 0, refb = 0;
          for (int64_t q = 0; q < k; ++q) {
            ref += static_cast<double>(x[i * k + q]) * w[j * k + q];
            refb += static_cast<double>(FromBf16(Bf16(x[i * k + q]))) * FromBf16(wb[j * k + q]);
          }
          EXPECT_NEAR(y[i * n + j], ref, 1e-3) << m;
          EXPECT_NEAR(yb[i * n + j], refb, 1e-3) << m;
        }
    }
  });
}

// A row's bf16 result is the same alone (decode) as inside a large batch split over threads
// (prefill), bit for bit, and accumulate adds exactly that result: every tile shape adds a dot
// product's terms in the same order (linear_tile.h).
TEST(Linear, Bf16RowsDoNotDependOnTheBatch) {
  ForEachIsa([&] {
    const int64_t m = 23, n = 71, k = 2048 + 45;
    const auto x = Random(m * k, 3), w = Random(n * k, 4, 0.05f);
    std::vector<uint16_t> wb(n * k);
    for (size_t i = 0; i < wb.size(); ++i) wb[i] = Bf16(w[i]);
    std::vector<float> all(m * n);
    Linear({.x = x.data(), .w = wb.data(), .y = all.data(), .m = m, .n = n, .k = k,
            .w_bf16 = true},
           TwoThreads);
    for (int64_t i : {0, 5, 22}) {
      std::vector<float> one(n), acc(n, 0.0f);
      Linear({.x = x.data() + i * k, .w = wb.data(), .y = one.data(), .m = 1, .n = n, .k = k,
              .w_bf16 = true},
             SerialFor);
      EXPECT_EQ(std::memcmp(one.data(), all.data() + i * n, n * 4), 0) << "row " << i;
      Linear({.x = x.data() + i * k, .w = wb.data(), .y = acc.data(), .m = 1, .n = n, .k = k,
              .w_bf16 = true, .accumulate = true},
             TwoThreads);
      EXPECT_EQ(std::memcmp(one.data(), acc.data(), n * 4), 0) << "row " << i;
    }
  });
}

// Every ISA's bf16 GEMM (AMX tiles included) against an f64 sum of the same bf16-rounded
// products. The products are exact in f32, so an f32 sum of k of them in any order is within
// (k - 1) * 2^-24 * sum |x w| of the exact value (recursive summation, Higham 2002, 4.2); the
// bar is that bound with k. Shapes: V2-Lite's k (2048, 1408, 512) with m and n crossing the
// 16-row tiles and the 2 x 2 tile blocks, k tails, and m beyond one L2 pass of AMX tiles.
TEST(Linear, Bf16WithinTheSummationBoundOfK) {
  struct Shape {
    int64_t m, n, k;
  };
  ForEachIsa([&] {
    for (const Shape s : {Shape{1, 33, 2048}, Shape{15, 16, 1408}, Shape{16, 48, 512},
                          Shape{33, 65, 512}, Shape{40, 37, 75}, Shape{300, 34, 2048 + 45}}) {
      SCOPED_TRACE(::testing::Message() << s.m << "x" << s.n << "x" << s.k);
      const auto x = Random(s.m * s.k, 21), w = Random(s.n * s.k, 22, 0.05f);
      std::vector<uint16_t> wb(s.n * s.k);
      for (size_t i = 0; i < wb.size(); ++i) wb[i] = Bf16(w[i]);
      std::vector<float> y(s.m * s.n, 3.0f);
      Linear({.x = x.data(), .w = wb.data(), .y = y.data(), .m = s.m, .n = s.n, .k = s.k,
              .w_bf16 = true},
             TwoThreads);
      int bad = 0;
      for (int64_t i = 0; i < s.m; ++i)
        for (int64_t j = 0; j < s.n; ++j) {
          double ref = 0, mag = 0;
          for (int64_t q = 0; q < s.k; ++q) {
            const double t = static_cast<double>(FromBf16(Bf16(x[i * s.k + q]))) *
                             FromBf16(wb[j * s.k + q]);
            ref += t;
            mag += std::fabs(t);
          }
          const double bound = static_cast<double>(s.k - 1) * 0x1p-24 * mag;
          if (std::fabs(y[i * s.n + j] - ref) > bound && ++bad <= 5)
            ADD_FAILURE() << "y[" << i << "][" << j << "] = " << y[i * s.n + j] << ", f64 " << ref
                          << ", bound " << bound;
        }
    }
  });
}

// Rows of a large batch (several of the AMX schedule's L2 passes, 2 x 2 tile blocks, a partial
// block of 16 rows) equal the same rows alone, bit for bit, whatever the thread split.
TEST(Linear, Bf16LargeBatchRowsEqualSingleRows) {
  ForEachIsa([&] {
    const int64_t m = 300, n = 40, k = 2048;
    const auto x = Random(m * k, 23), w = Random(n * k, 24, 0.05f);
    std::vector<uint16_t> wb(n * k);
    for (size_t i = 0; i < wb.size(); ++i) wb[i] = Bf16(w[i]);
    std::vector<float> all(m * n);
    Linear({.x = x.data(), .w = wb.data(), .y = all.data(), .m = m, .n = n, .k = k,
            .w_bf16 = true},
           TwoThreads);
    for (int64_t i : {0, 15, 16, 31, 255, 256, 299}) {
      std::vector<float> one(n);
      Linear({.x = x.data() + i * k, .w = wb.data(), .y = one.data(), .m = 1, .n = n, .k = k,
              .w_bf16 = true},
             SerialFor);
      EXPECT_EQ(std::memcmp(one.data(), all.data() + i * n, n * 4), 0) << "row " << i;
    }
  });
}

TEST(MoeRouter, DroppedGroupsAreMaskedWithMinusInfinity) {
  // 4 groups of 4 experts, keep 2 groups, pick 4 experts. The bias makes every biased score
  // negative: zero-masking would pick experts of dropped groups (0 > negative); DeepSeek's
  // -inf masking must keep the choice inside the two kept groups.
  const int64_t E = 16, K = 4;
  std::vector<float> logits(E), bias(E, -2.0f);
  for (int64_t e = 0; e < E; ++e) logits[e] = 0.1f * static_cast<float>((e * 7) % 16) - 0.8f;
  bias[1] = bias[2] = -1.0f;   // group 0 strong
  bias[13] = bias[14] = -1.2f; // group 3 second
  std::vector<int32_t> ids(K);
  std::vector<float> w(K);
  MoeRoute({.logits = logits.data(), .bias = bias.data(), .topk_ids = ids.data(),
            .topk_weights = w.data(), .tokens = 1, .n_experts = E, .top_k = K, .n_group = 4,
            .topk_group = 2, .scoring = RouterScoring::kSigmoid,
            .group_score = RouterGroupScore::kTop2Sum, .normalize = true, .scale = 2.5f});
  float sum = 0;
  for (int64_t i = 0; i < K; ++i) {
    EXPECT_TRUE(ids[i] / 4 == 0 || ids[i] / 4 == 3) << "expert " << ids[i];
    sum += w[i];
  }
  // Weights are the unbiased sigmoid scores, normalised, times the routing scale.
  EXPECT_NEAR(sum, 2.5f, 1e-5);
  std::set<int32_t> distinct(ids.begin(), ids.end());
  EXPECT_EQ(distinct.size(), static_cast<size_t>(K));
}

TEST(MoeRouter, SoftmaxGreedyAndV2ScalingRule) {
  const int64_t E = 8, K = 2;
  std::vector<float> logits = {0.1f, 2.0f, -1.0f, 1.5f, 0.0f, 0.3f, -0.2f, 0.9f};
  std::vector<int32_t> ids(K);
  std::vector<float> w(K);
  double z = 0;
  for (float l : logits) z += std::exp(l);
  const float p1 = std::exp(2.0f) / z, p3 = std::exp(1.5f) / z;
  MoeRouterParams p{.logits = logits.data(), .bias = nullptr, .topk_ids = ids.data(),
                    .topk_weights = w.data(), .tokens = 1, .n_experts = E, .top_k = K,
                    .scale = 16.0f};
  MoeRoute(p);  // not normalised: scaled
  EXPECT_EQ(ids[0], 1);
  EXPECT_EQ(ids[1], 3);
  EXPECT_NEAR(w[0], 16 * p1, 1e-5);
  EXPECT_NEAR(w[1], 16 * p3, 1e-5);
  p.normalize = true;
  p.scale_when_normalized = false;  // DeepSeek-V2: normalise or scale, not both
  MoeRoute(p);
  EXPECT_NEAR(w[0], p1 / (p1 + p3), 1e-5);
  p.scale_when_normalized = true;   // DeepSeek-V3: normalise, then scale
  MoeRoute(p);
  EXPECT_NEAR(w[0], 16 * p1 / (p1 + p3), 1e-4);
}

TEST(Rope, YarnFrequenciesAndRotation) {
  YarnParams yp{.rope_dim = 64, .theta = 10000, .yarn = true, .factor = 40,
                .original_max_position = 4096, .beta_fast = 32, .beta_slow = 1};
  auto inv = RopeInvFreq(yp);
  auto plain = RopeInvFreq({.rope_dim = 64, .theta = 10000});
  ASSERT_EQ(inv.size(), 32u);
  // High frequencies are kept, low ones divided by the factor.
  EXPECT_FLOAT_EQ(inv[0], plain[0]);
  EXPECT_NEAR(inv[31], plain[31] / 40, 1e-12);
  for (size_t i = 1; i < inv.size(); ++i) EXPECT_LE(inv[i], inv[i - 1]);
  EXPECT_NEAR(YarnMscale(40, 0.707), 0.1 * 0.707 * std::log(40.0) + 1, 1e-12);
  // Interleaved pairs rotate: norms are preserved, position 0 is identity.
  auto x = Random(2 * 64, 3);
  auto y = x;
  int32_t pos[2] = {0, 1000};
  ApplyRope({.x = y.data(), .positions = pos, .inv_freq = inv.data(), .rows = 2, .heads = 1,
             .rope_dim = 64, .head_stride = 64, .row_stride = 64});
  for (int i = 0; i < 64; ++i) EXPECT_FLOAT_EQ(y[i], x[i]);
  for (int i = 0; i < 32; ++i) {
    float a = x[64 + 2 * i], b = x[64 + 2 * i + 1], c = y[64 + 2 * i], d = y[64 + 2 * i + 1];
    EXPECT_NEAR(a * a + b * b, c * c + d * d, 1e-4);
    float ang = 1000.0f * inv[i];
    EXPECT_NEAR(c, a * std::cos(ang) - b * std::sin(ang), 1e-5);
  }
}

// The absorbed (decode) and expanded (prefill) forms of MLA are the same function.
TEST(MlaAttention, AbsorbedEqualsExpanded) {
  const int64_t H = 3, nope = 8, rope = 4, vd = 6, kvl = 10, width = kvl + rope;
  for (int64_t T : {1, 63, 64, 65, 130}) {
    const int64_t blocks = (T + 63) / 64 + 1;
    auto cache = Random(blocks * 64 * width, 4);
    std::vector<int32_t> table(blocks);
    for (int64_t b = 0; b < blocks; ++b) table[b] = static_cast<int32_t>(blocks - 1 - b);
    auto kv_b = Random(H * (nope + vd) * kvl, 5, 0.3f);
    auto q = Random(H * (nope + rope), 6);  // the last token's query
    const float scale = 0.3f;
    PagedLatentView view{.data = cache.data(), .block_size = 64, .width = width};

    // Expanded: k_nope/v = latent · kv_b^T for every token.
    std::vector<float> rows(T * width), kvx(T * H * (nope + vd), 0.f);
    GatherPagedRows(view, table.data(), T, rows.data());
    for (int64_t t = 0; t < T; ++t)
      for (int64_t r = 0; r < H * (nope + vd); ++r)
        for (int64_t c = 0; c < kvl; ++c) kvx[t * H * (nope + vd) + r] += rows[t * width + c] * kv_b[r * kvl + c];
    std::vector<float> out_exp(H * vd);
    MlaPrefill({.q = q.data(), .kv = kvx.data(), .k_pe = rows.data() + kvl, .ld_kpe = width,
                .out = out_exp.data(), .n_new = 1, .n_total = T, .heads = H, .nope = nope,
                .rope = rope, .v = vd, .softmax_scale = scale},
               SerialFor);

    // Absorbed: q_lat = q_nope · W_UK, attention over latents, then W_UV.
    std::vector<float> q_lat(H * kvl, 0.f), q_pe(H * rope), o_lat(H * kvl), out_abs(H * vd, 0.f);
    for (int64_t h = 0; h < H; ++h) {
      for (int64_t c = 0; c < kvl; ++c)
        for (int64_t d = 0; d < nope; ++d)
          q_lat[h * kvl + c] += q[h * (nope + rope) + d] * kv_b[(h * (nope + vd) + d) * kvl + c];
      for (int64_t r = 0; r < rope; ++r) q_pe[h * rope + r] = q[h * (nope + rope) + nope + r];
    }
    int32_t len = static_cast<int32_t>(T);
    MlaDecode({.q_latent = q_lat.data(), .q_pe = q_pe.data(), .cache = view,
               .block_tables = table.data(), .max_blocks = blocks, .seq_lens = &len,
               .out_latent = o_lat.data(), .batch = 1, .heads = H, .kv_lora = kvl, .rope = rope,
               .softmax_scale = scale},
              SerialFor);
    for (int64_t h = 0; h < H; ++h)
      for (int64_t d = 0; d < vd; ++d)
        for (int64_t c = 0; c < kvl; ++c)
          out_abs[h * vd + d] += o_lat[h * kvl + c] * kv_b[(h * (nope + vd) + nope + d) * kvl + c];
    for (int64_t i = 0; i < H * vd; ++i) EXPECT_NEAR(out_abs[i], out_exp[i], 1e-4) << "T=" << T;
  }
}

// MLA prefill inputs in the kernel's layout and a double-precision reference.
struct PrefillCase {
  int64_t n_new, n_total, heads, nope, rope, v;
  float scale;
  std::vector<float> q, kv, rows;  // rows: [n_total, ld] with k_pe at column 2 (ld = rope + 3)
  int64_t ld() const { return rope + 3; }
  PrefillCase(int64_t n, int64_t T, int64_t H, int64_t no, int64_t ro, int64_t vd, float sc,
              uint32_t seed)
      : n_new(n), n_total(T), heads(H), nope(no), rope(ro), v(vd), scale(sc),
        q(Random(n * H * (no + ro), seed)), kv(Random(T * H * (no + vd), seed + 1)),
        rows(Random(T * (ro + 3), seed + 2)) {}
  MlaPrefillParams Params(float* out) const {
    return {.q = q.data(), .kv = kv.data(), .k_pe = rows.data() + 2, .ld_kpe = ld(),
            .out = out, .n_new = n_new, .n_total = n_total, .heads = heads, .nope = nope,
            .rope = rope, .v = v, .softmax_scale = scale};
  }
  std::vector<double> Reference() const {
    const int64_t qk = nope + rope, kvw = nope + v;
    std::vector<double> out(n_new * heads * v, 0.0);
    for (int64_t i = 0; i < n_new; ++i)
      for (int64_t h = 0; h < heads; ++h) {
        const int64_t n = n_total - n_new + i + 1;
        std::vector<double> s(n);
        double mx = -INFINITY, sum = 0.0;
        for (int64_t t = 0; t < n; ++t) {
          double d = 0.0;
          for (int64_t c = 0; c < nope; ++c)
            d += double{q[(i * heads + h) * qk + c]} * kv[(t * heads + h) * kvw + c];
          for (int64_t c = 0; c < rope; ++c)
            d += double{q[(i * heads + h) * qk + nope + c]} * rows[t * ld() + 2 + c];
          mx = std::max(mx, s[t] = d * scale);
        }
        for (double& x : s) sum += (x = std::exp(x - mx));
        for (int64_t t = 0; t < n; ++t)
          for (int64_t c = 0; c < v; ++c)
            out[(i * heads + h) * v + c] += s[t] / sum * kv[(t * heads + h) * kvw + nope + c];
      }
    return out;
  }
};

// Tiled prefill against double precision: uneven sizes, chunked prefill after cached tokens,
// V2-Lite head shapes and small odd ones. Error relative to the largest |value| of each
// (query, head) output row.
TEST(MlaPrefill, MatchesDoubleReference) {
  struct Shape {
    int64_t n_new, n_total, heads, nope, rope, v;
    float scale;
  };
  for (const Shape& c : {Shape{100, 100, 3, 128, 64, 128, 0.072f},
                         Shape{70, 150, 3, 128, 64, 128, 0.072f},
                         Shape{1, 77, 3, 128, 64, 128, 0.072f},
                         Shape{130, 130, 3, 128, 64, 128, 0.3f},
                         Shape{37, 50, 3, 5, 3, 7, 0.4f}, Shape{3, 3, 1, 1, 1, 1, 1.f},
                         Shape{65, 66, 2, 9, 2, 33, 0.25f}}) {
    const PrefillCase pc(c.n_new, c.n_total, c.heads, c.nope, c.rope, c.v, c.scale, 11);
    std::vector<float> out(c.n_new * c.heads * c.v, NAN);
    MlaPrefill(pc.Params(out.data()), SerialFor);
    const auto ref = pc.Reference();
    double worst = 0.0;
    for (int64_t r = 0; r < c.n_new * c.heads; ++r) {
      double row_max = 1e-30;
      for (int64_t k = 0; k < c.v; ++k) row_max = std::max(row_max, std::abs(ref[r * c.v + k]));
      for (int64_t k = 0; k < c.v; ++k)
        worst = std::max(worst, std::abs(out[r * c.v + k] - ref[r * c.v + k]) / row_max);
    }
    EXPECT_LE(worst, 1e-5) << "n_new=" << c.n_new << " n_total=" << c.n_total
                           << " heads=" << c.heads << " nope=" << c.nope << " v=" << c.v;
  }
}

// The same bits whatever the thread count, the split of the work, and the chunk a query was
// prefilled in (the last rows of a full prefill equal a chunk over the same cached tokens).
TEST(MlaPrefill, BitIdenticalAcrossThreadSplitsAndChunks) {
  const PrefillCase full(203, 203, 3, 128, 64, 128, 0.1f, 21);
  std::vector<float> one(203 * 3 * 128);
  MlaPrefill(full.Params(one.data()), SerialFor);
  for (int parts : {2, 3, 7}) {
    ParallelFor split = [parts](int64_t n, const RangeBody& body) {
      std::vector<std::thread> ts;
      for (int k = 0; k < parts; ++k) {
        const int64_t b = n * k / parts, e = n * (k + 1) / parts;
        if (b < e) ts.emplace_back([&body, b, e] { body(b, e); });
      }
      for (auto& t : ts) t.join();
    };
    std::vector<float> many(one.size());
    MlaPrefill(full.Params(many.data()), split);
    EXPECT_EQ(0, std::memcmp(one.data(), many.data(), one.size() * sizeof(float)))
        << parts << " parts";
  }
  for (int64_t n : {1, 2, 3, 5, 64, 130}) {  // 1-2: no packing (few rows); 3+: tiles
    PrefillCase chunk = full;
    chunk.n_new = n;
    chunk.q.erase(chunk.q.begin(), chunk.q.end() - n * 3 * 192);
    std::vector<float> out(n * 3 * 128);
    MlaPrefill(chunk.Params(out.data()), SerialFor);
    EXPECT_EQ(0, std::memcmp(out.data(), one.data() + (203 - n) * 3 * 128,
                             out.size() * sizeof(float)))
        << "chunk of " << n;
  }
}

}  // namespace
}  // namespace dsinfer::cpu
