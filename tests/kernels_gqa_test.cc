// CPU kernels of the dense families: grouped-query attention over a paged [K | V] cache, RoPE in
// HF's rotate_half layout, Llama-3.1 rope frequencies. Checked against naive float64 math.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "kernels/cpu/gqa_attention.h"
#include "kernels/cpu/rope.h"

namespace dsinfer::cpu {
namespace {

std::vector<float> Random(size_t n, uint32_t seed) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0.f, 1.f);
  std::vector<float> v(n);
  for (float& x : v) x = d(g);
  return v;
}

// Two sequences in one call: a prefill chunk of A (positions 60..69, crossing a block edge,
// blocks out of order) and one decode token of B. Each query must equal dense causal attention
// with kv head h / (heads / kv_heads).
TEST(GqaAttention, PagedEqualsNaiveRepeatKv) {
  const int64_t H = 6, KV = 2, hd = 8, bs = 64, width = 2 * KV * hd, blocks = 5;
  const int64_t TA = 70, TB = 5;
  std::vector<float> cache = Random(blocks * bs * width, 1);
  const std::vector<int32_t> table_a = {3, 1}, table_b = {4};
  const PagedKvView view{.data = cache.data(), .block_size = bs, .width = width};
  // Queries: A's positions 60..69, then B's position 4.
  std::vector<int32_t> pos;
  std::vector<const int32_t*> tables;
  for (int32_t p = 60; p < TA; ++p) {
    pos.push_back(p);
    tables.push_back(table_a.data());
  }
  pos.push_back(TB - 1);
  tables.push_back(table_b.data());
  const int64_t n = static_cast<int64_t>(pos.size());
  const std::vector<float> q = Random(n * H * hd, 2);
  std::vector<float> out(n * H * hd, -1.f);
  GqaAttention({.q = q.data(), .ld_q = H * hd, .cache = view, .block_tables = tables.data(),
                .positions = pos.data(), .out = out.data(), .ld_out = H * hd, .n = n,
                .heads = H, .kv_heads = KV, .head_dim = hd, .softmax_scale = 0.35f},
               SerialFor);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t h = 0; h < H; ++h) {
      const int64_t g = h / (H / KV), keys = pos[i] + 1;
      std::vector<double> s(keys);
      double mx = -1e300, sum = 0;
      for (int64_t t = 0; t < keys; ++t) {
        const float* k = view.Row(tables[i], t) + g * hd;
        double d = 0;
        for (int64_t j = 0; j < hd; ++j) d += double(q[(i * H + h) * hd + j]) * k[j];
        s[t] = d * 0.35;
        mx = std::max(mx, s[t]);
      }
      for (double& x : s) sum += (x = std::exp(x - mx));
      for (int64_t j = 0; j < hd; ++j) {
        double o = 0;
        for (int64_t t = 0; t < keys; ++t) o += s[t] / sum * view.Row(tables[i], t)[KV * hd + g * hd + j];
        EXPECT_NEAR(out[(i * H + h) * hd + j], o, 1e-5) << "query " << i << " head " << h;
      }
    }
  }
}

TEST(Rope, HalfSplitIsRotateHalf) {
  const int64_t heads = 3, dim = 8, half = dim / 2;
  std::vector<float> x = Random(2 * heads * dim, 3);
  const std::vector<float> x0 = x;
  const std::vector<int32_t> pos = {0, 37};
  const std::vector<float> inv = RopeInvFreq({.rope_dim = dim, .theta = 10000.0});
  ApplyRope({.x = x.data(), .positions = pos.data(), .inv_freq = inv.data(), .rows = 2,
             .heads = heads, .rope_dim = dim, .head_stride = dim, .row_stride = heads * dim,
             .half_split = true});
  for (int64_t r = 0; r < 2; ++r)
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t i = 0; i < dim; ++i) {
        // HF: x * cos(emb) + rotate_half(x) * sin(emb), emb = cat(freqs, freqs).
        const double a = double(pos[r]) * inv[i % half];
        const float* v = x0.data() + (r * heads + h) * dim;
        const double rot = i < half ? -v[i + half] : v[i - half];
        EXPECT_NEAR(x[(r * heads + h) * dim + i], v[i] * std::cos(a) + rot * std::sin(a), 1e-5);
      }
}

// Llama-3.1's three bands: short wavelengths kept, long ones divided by factor, the ones between
// blended (strictly between the two).
TEST(Rope, Llama3Bands) {
  const Llama3RopeParams p{.rope_dim = 40, .theta = 500000.0, .factor = 8.0,
                           .low_freq_factor = 1.0, .high_freq_factor = 4.0,
                           .original_max_position = 64};
  const std::vector<float> base = RopeInvFreq({.rope_dim = 40, .theta = 500000.0});
  const std::vector<float> inv = Llama3InvFreq(p);
  int kept = 0, scaled = 0, blended = 0;
  for (size_t i = 0; i < inv.size(); ++i) {
    const double wavelen = 2 * M_PI / base[i];
    if (wavelen < 64.0 / 4) {
      EXPECT_EQ(inv[i], base[i]);
      ++kept;
    } else if (wavelen > 64.0 / 1) {
      EXPECT_FLOAT_EQ(inv[i], base[i] / 8.0f);
      ++scaled;
    } else {
      EXPECT_LT(inv[i], base[i]);
      EXPECT_GT(inv[i], base[i] / 8.0f);
      ++blended;
    }
  }
  EXPECT_GT(kept, 0);
  EXPECT_GT(scaled, 0);
  EXPECT_GT(blended, 0);
}

}  // namespace
}  // namespace dsinfer::cpu
