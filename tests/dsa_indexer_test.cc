// The CPU twin of DeepSeek-V3.2's lightning indexer (kernels/cpu/dsa_indexer.h) against direct
// formulas: Hadamard rotation, act_quant's FP8 blocks (plain and ue8m0 scales), half-split RoPE,
// fp8_index scores and the top-k selection.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <cmath>
#include <random>
#include <vector>

#include "kernels/cpu/dsa_indexer.h"
#include "kernels/cpu/fp8.h"
#include "kernels/cpu/rope.h"

namespace dsinfer::cpu {
namespace {

std::vector<float> Random(int64_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = d(g);
  return v;
}

TEST(DsaIndexer, HadamardIsTheScaledSylvesterMatrix) {
  const int64_t n = 128;
  std::vector<float> x = Random(n, 1), y = x;
  HadamardTransform(y.data(), n, static_cast<float>(1 / std::sqrt(128.0)));
  for (int64_t i = 0; i < n; ++i) {
    double want = 0;
    for (int64_t j = 0; j < n; ++j)
      want += (std::popcount(static_cast<uint64_t>(i & j)) % 2 ? -1.0 : 1.0) * x[j];
    EXPECT_NEAR(y[i], want / std::sqrt(128.0), 1e-5) << i;
  }
  // Orthonormal: applied twice it is the identity.
  HadamardTransform(y.data(), n, static_cast<float>(1 / std::sqrt(128.0)));
  for (int64_t i = 0; i < n; ++i) EXPECT_NEAR(y[i], x[i], 1e-5);
}

TEST(DsaIndexer, QuantizeBlockScales) {
  std::vector<float> x = Random(128, 2);
  x[7] = 336.0f;  // amax 336 = 0.75 * 448
  std::vector<uint8_t> codes(128);
  const float plain = QuantizeIndexBlock(x.data(), 128, false, codes.data());
  EXPECT_FLOAT_EQ(plain, 336.0f * (1.0f / 448.0f));
  EXPECT_EQ(E4M3ToF32(codes[7]), 448.0f);  // the amax maps to the largest code
  const float pow2 = QuantizeIndexBlock(x.data(), 128, true, codes.data());
  EXPECT_EQ(pow2, 1.0f);  // 2^ceil(log2(0.75))
  for (int64_t j = 0; j < 128; ++j) {
    EXPECT_EQ(codes[j], F32ToE4M3(x[j])) << j;  // scale 1: the codes are e4m3(x)
  }
  std::vector<float> tiny(128, 0.0f);
  EXPECT_FLOAT_EQ(QuantizeIndexBlock(tiny.data(), 128, false, codes.data()), 1e-4f / 448.0f);
  EXPECT_EQ(QuantizeIndexBlock(tiny.data(), 128, true, codes.data()), std::ldexp(1.0f, -22));
}

// The half-split layout is the interleaved rotation of the de-interleaved vector.
TEST(DsaIndexer, RopeHalfMatchesInterleavedRopeOfPermutedPairs) {
  const int64_t r = 16;
  const std::vector<float> inv = RopeInvFreq({.rope_dim = r, .theta = 10000.0});
  std::vector<float> x = Random(r, 3), half = x, inter(r);
  for (int64_t i = 0; i < r / 2; ++i) {
    inter[2 * i] = x[i];
    inter[2 * i + 1] = x[i + r / 2];
  }
  const int32_t pos = 37;
  RopeHalfRow(half.data(), pos, inv.data(), r, 1.0f);
  ApplyRope({.x = inter.data(), .positions = &pos, .inv_freq = inv.data(), .rows = 1, .heads = 1,
             .rope_dim = r, .head_stride = r, .row_stride = r});
  for (int64_t i = 0; i < r / 2; ++i) {
    EXPECT_NEAR(half[i], inter[2 * i], 1e-6);
    EXPECT_NEAR(half[i + r / 2], inter[2 * i + 1], 1e-6);
  }
}

TEST(DsaIndexer, ScoresFollowFp8IndexAndTopKPicksTheBest) {
  const int64_t D = 128, H = 3, T = 40, bs = 16;
  // Keys in a paged cache of 4 blocks, the sequence's table out of order.
  std::vector<uint8_t> cache(4 * bs * IndexKeyRowBytes(D));
  const std::vector<int32_t> table = {2, 0, 3};
  const PagedIndexView view{.data = cache.data(), .block_size = bs, .dim = D};
  std::vector<std::vector<float>> keys(T);
  std::vector<float> k_scale(T);
  for (int64_t t = 0; t < T; ++t) {
    keys[t] = Random(D, 100 + t);
    uint8_t* row = view.Row(table.data(), t);
    k_scale[t] = QuantizeIndexBlock(keys[t].data(), D, true, row);
    std::memcpy(row + D, &k_scale[t], 4);
  }
  std::vector<uint8_t> q(H * D);
  std::vector<float> w = {0.7f, -0.2f, 1.1f};
  for (int64_t h = 0; h < H; ++h) {
    std::vector<float> qh = Random(D, 7 + h);
    QuantizeIndexBlock(qh.data(), D, false, q.data() + h * D);
  }
  std::vector<float> scores(T);
  IndexScores({.q_codes = q.data(), .head_weights = w.data(), .keys = view,
               .block_table = table.data(), .n_keys = T, .heads = H, .scores = scores.data()});
  for (int64_t t = 0; t < T; ++t) {
    const uint8_t* row = view.Row(table.data(), t);
    double want = 0;
    for (int64_t h = 0; h < H; ++h) {
      double dot = 0;
      for (int64_t d = 0; d < D; ++d) dot += E4M3ToF32(q[h * D + d]) * E4M3ToF32(row[d]);
      want += std::max(dot, 0.0) * w[h];
    }
    EXPECT_NEAR(scores[t], want * k_scale[t], 1e-4 * (std::fabs(want * k_scale[t]) + 1)) << t;
  }
  std::vector<int32_t> top(8);
  ASSERT_EQ(TopKPositions(scores.data(), T, 8, top.data()), 8);
  for (int64_t i = 1; i < 8; ++i) EXPECT_LT(top[i - 1], top[i]);  // ascending positions
  float worst_in = INFINITY;
  for (int32_t t : top) worst_in = std::min(worst_in, scores[t]);
  for (int64_t t = 0; t < T; ++t) {
    if (std::find(top.begin(), top.end(), t) == top.end()) EXPECT_LE(scores[t], worst_in) << t;
  }
}

TEST(DsaIndexer, TopKTiesGoToLowerPositionsAndShortContextsKeepAll) {
  const std::vector<float> s = {1, 3, 3, 0, 3, 2};
  std::vector<int32_t> out(6);
  ASSERT_EQ(TopKPositions(s.data(), 6, 2, out.data()), 2);
  EXPECT_EQ(out[0], 1);
  EXPECT_EQ(out[1], 2);
  ASSERT_EQ(TopKPositions(s.data(), 3, 5, out.data()), 3);
  EXPECT_EQ(out[0], 0);
  EXPECT_EQ(out[2], 2);
}

}  // namespace
}  // namespace dsinfer::cpu
