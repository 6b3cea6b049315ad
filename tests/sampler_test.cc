#include <gtest/gtest.h>

#include <map>
#include <set>

#include "src/sampling/sampler.h"

namespace dsinfer {
namespace {

std::vector<float> Logits() { return {1.0f, 3.0f, 2.0f, 0.5f, 2.9f}; }

TEST(Sampler, GreedyPicksArgmax) {
  Sampler s({}, {});
  auto l = Logits();
  EXPECT_EQ(s.Sample(absl::MakeSpan(l)), 1);
}

// A vanishing temperature is argmax, never NaN probabilities (1 / 1e-45 overflows to inf).
TEST(Sampler, TinyTemperatureIsGreedy) {
  for (float t : {1e-45f, 1e-30f, 1e-7f}) {
    for (uint64_t seed = 0; seed < 20; ++seed) {
      SamplingParams p;
      p.temperature = t;
      p.seed = seed;
      Sampler s(p, {});
      auto l = Logits();
      ASSERT_EQ(s.Sample(absl::MakeSpan(l)), 1) << "temperature " << t << " seed " << seed;
    }
  }
  // Just above the threshold sampling is real (and still picks the clear maximum).
  SamplingParams p;
  p.temperature = 1e-4f;
  p.seed = 3;
  Sampler s(p, {});
  auto l = Logits();
  EXPECT_EQ(s.Sample(absl::MakeSpan(l)), 1);
}

TEST(Sampler, SameSeedSameOutput) {
  SamplingParams p{.temperature = 1.0f, .seed = 42};
  std::vector<int32_t> a, b;
  Sampler s1(p, {}), s2(p, {});
  for (int i = 0; i < 50; ++i) {
    auto l1 = Logits(), l2 = Logits();
    a.push_back(s1.Sample(absl::MakeSpan(l1)));
    b.push_back(s2.Sample(absl::MakeSpan(l2)));
  }
  EXPECT_EQ(a, b);
  EXPECT_GT(std::set<int32_t>(a.begin(), a.end()).size(), 1u);  // really sampling
}

TEST(Sampler, TopKOneTopPAndMinPFilter) {
  SamplingParams k1{.temperature = 1.5f, .top_k = 1, .seed = 1};
  Sampler s(k1, {});
  for (int i = 0; i < 20; ++i) {
    auto l = Logits();
    EXPECT_EQ(s.Sample(absl::MakeSpan(l)), 1);
  }
  // top_p small: only the best token survives.
  Sampler sp({.temperature = 1.0f, .top_p = 0.1f, .seed = 3}, {});
  for (int i = 0; i < 20; ++i) {
    auto l = Logits();
    EXPECT_EQ(sp.Sample(absl::MakeSpan(l)), 1);
  }
  // min_p 0.8: tokens 1 (p ∝ e^3) and 4 (e^2.9 ≈ 0.905 of it) survive, nothing else.
  Sampler sm({.temperature = 1.0f, .min_p = 0.8f, .seed = 5}, {});
  std::map<int32_t, int> seen;
  for (int i = 0; i < 200; ++i) {
    auto l = Logits();
    ++seen[sm.Sample(absl::MakeSpan(l))];
  }
  EXPECT_EQ(seen.size(), 2u);
  EXPECT_TRUE(seen.count(1) && seen.count(4));
}

TEST(Sampler, PenaltiesChangeTheChoice) {
  // Repetition penalty over the prompt: token 1 (logit 3 -> 3/2) loses to token 4 (2.9).
  Sampler rep({.repetition_penalty = 2.0f}, std::vector<int32_t>{1});
  auto l = Logits();
  EXPECT_EQ(rep.Sample(absl::MakeSpan(l)), 4);
  // Presence penalty applies to output tokens only: second pick avoids the first.
  Sampler pres({.presence_penalty = 0.5f}, {});
  auto l1 = Logits();
  EXPECT_EQ(pres.Sample(absl::MakeSpan(l1)), 1);
  auto l2 = Logits();
  EXPECT_EQ(pres.Sample(absl::MakeSpan(l2)), 4);
  // Frequency penalty grows with the count.
  Sampler freq({.frequency_penalty = 0.06f}, {});
  std::vector<int32_t> picks;
  for (int i = 0; i < 3; ++i) {
    auto li = Logits();
    picks.push_back(freq.Sample(absl::MakeSpan(li)));
  }
  EXPECT_EQ(picks, (std::vector<int32_t>{1, 1, 4}));
}

TEST(Sampler, StopTokensAndValidation) {
  Sampler s({.stop_token_ids = {7, 9}}, {});
  EXPECT_TRUE(s.IsStop(9));
  EXPECT_FALSE(s.IsStop(1));
  EXPECT_FALSE(ValidateSamplingParams({.temperature = -1}).ok());
  EXPECT_FALSE(ValidateSamplingParams({.top_p = 0}).ok());
  EXPECT_FALSE(ValidateSamplingParams({.top_k = -2}).ok());
  EXPECT_FALSE(ValidateSamplingParams({.min_p = 1.5f}).ok());
  EXPECT_FALSE(ValidateSamplingParams({.repetition_penalty = 0}).ok());
  EXPECT_FALSE(ValidateSamplingParams({.presence_penalty = 3}).ok());
  absl::Status st = ValidateSamplingParams({.top_p = 2});
  EXPECT_NE(st.message().find("top_p"), std::string::npos);
  EXPECT_TRUE(ValidateSamplingParams({.temperature = 0.7f, .top_k = 40, .top_p = 0.9f}).ok());
}

}  // namespace
}  // namespace dsinfer
