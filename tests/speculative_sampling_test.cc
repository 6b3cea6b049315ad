// Speculative sampling keeps the target distribution: chi-square of the verified tokens against
// p on a small vocabulary (fixed seeds), with wrong rules shown to fail the same bar; for k > 1
// chained greedy drafts, the joint law of two generated tokens against a Markov chain target.
#include <gtest/gtest.h>

#include <array>
#include <functional>
#include <random>
#include <vector>

#include "src/sampling/speculative.h"

namespace dsinfer {
namespace {

constexpr int kTrials = 200000;
// Chi-square critical value for 5 degrees of freedom at p = 0.001.
constexpr double kChi2Bar = 20.52;

const std::vector<float> kP = {0.30f, 0.05f, 0.20f, 0.15f, 0.25f, 0.05f};  // target
const std::vector<float> kQ = {0.10f, 0.40f, 0.20f, 0.05f, 0.05f, 0.20f};  // draft

using Rule = std::function<int32_t(int32_t draft, double u1, double u2)>;

int32_t Draw(const std::vector<float>& dist, double u) {
  double acc = 0;
  for (size_t i = 0; i < dist.size(); ++i) {
    acc += dist[i];
    if (u < acc) return static_cast<int32_t>(i);
  }
  return static_cast<int32_t>(dist.size()) - 1;
}

// Draft from q, verify with `rule`, many times; chi-square of the outcomes against p.
double Chi2(const std::vector<float>& q, const Rule& rule, uint64_t seed,
            double* accept_rate = nullptr) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::vector<int64_t> counts(kP.size(), 0);
  int64_t accepted = 0;
  for (int t = 0; t < kTrials; ++t) {
    const int32_t draft = Draw(q, u(rng));
    const double u1 = u(rng), u2 = u(rng);
    const int32_t token = rule(draft, u1, u2);
    accepted += token == draft;
    ++counts[token];
  }
  if (accept_rate != nullptr) *accept_rate = static_cast<double>(accepted) / kTrials;
  double chi2 = 0;
  for (size_t i = 0; i < kP.size(); ++i) {
    const double expected = kP[i] * kTrials;
    chi2 += (counts[i] - expected) * (counts[i] - expected) / expected;
  }
  return chi2;
}

Rule Verified(const std::vector<float>& q) {
  return [q](int32_t d, double u1, double u2) { return VerifyDraft(kP, q, d, u1, u2).token; };
}

TEST(SpeculativeSampling, KeepsTheTargetDistribution) {
  for (uint64_t seed : {1, 2, 3}) {
    double rate = 0;
    EXPECT_LT(Chi2(kQ, Verified(kQ), seed, &rate), kChi2Bar) << "seed " << seed;
    // Acceptance is sum_x min(p(x), q(x)) (Leviathan et al., section 3.1) = 0.50 here (a
    // rejected draft has q > p, so the residual never gives it back: token == draft iff accepted).
    EXPECT_NEAR(rate, 0.50, 0.01);
  }
}

// A greedy draft (q one-hot at d), as the MTP drafts: accepted with probability p(d).
TEST(SpeculativeSampling, OneHotDraftKeepsTheTargetAndAcceptsWithPd) {
  for (int32_t d = 0; d < static_cast<int32_t>(kP.size()); ++d) {
    std::vector<float> onehot(kP.size(), 0.f);
    onehot[d] = 1.f;
    double rate = 0;
    EXPECT_LT(Chi2(onehot, Verified(onehot), 7 + d, &rate), kChi2Bar) << "draft " << d;
    EXPECT_NEAR(rate, kP[d], 0.005) << "draft " << d;
    // The runner's form: one draw x ~ p, accepted iff x == d, else x: the same law.
    const Rule one_draw = [](int32_t draft, double u1, double) { return Draw(kP, u1); };
    EXPECT_LT(Chi2(onehot, one_draw, 11 + d), kChi2Bar) << "draft " << d;
  }
}

// The bar is one that wrong rules fail: accepting every draft (the output is q), and
// resampling from p instead of the residual after a rejection (p's mass counted twice).
TEST(SpeculativeSampling, WrongRulesFailTheBar) {
  const Rule always = [](int32_t d, double, double) { return d; };
  EXPECT_GT(Chi2(kQ, always, 1), 100 * kChi2Bar);
  const Rule from_p = [](int32_t d, double u1, double u2) {
    return u1 < std::min(1.0, double{kP[d]} / kQ[d]) ? d : Draw(kP, u2);
  };
  EXPECT_GT(Chi2(kQ, from_p, 1), 10 * kChi2Bar);
  // Accepting with min(1, q / p) (the ratio upside down).
  const Rule inverted = [](int32_t d, double u1, double u2) {
    return u1 < std::min(1.0, double{kQ[d]} / kP[d]) ? d : VerifyDraft(kP, kQ, d, 1.0, u2).token;
  };
  EXPECT_GT(Chi2(kQ, inverted, 1), 10 * kChi2Bar);
}

// k > 1: a Markov chain over 6 tokens is the target (row t: p(. | last token t)); the drafts are
// a greedy draft model chained on its own output (d_1 = g(last), d_{j+1} = g(d_j)), as the MTP
// layer drafts; g is right for some tokens and wrong for others. Steps of k drafts verified by
// AcceptGreedyDrafts (row j sampled after d_j) generate two tokens after token 0; their joint
// law must be p(t1 | 0) p(t2 | t1): chi-square with 35 degrees of freedom.
const std::array<std::vector<float>, 6> kChain = {{{0.30f, 0.05f, 0.20f, 0.15f, 0.25f, 0.05f},
                                                   {0.10f, 0.40f, 0.20f, 0.05f, 0.05f, 0.20f},
                                                   {0.05f, 0.10f, 0.50f, 0.10f, 0.05f, 0.20f},
                                                   {0.25f, 0.25f, 0.10f, 0.10f, 0.20f, 0.10f},
                                                   {0.05f, 0.05f, 0.05f, 0.60f, 0.15f, 0.10f},
                                                   {0.20f, 0.10f, 0.10f, 0.10f, 0.10f, 0.40f}}};
constexpr std::array<int32_t, 6> kGreedyDraft = {0, 1, 2, 4, 3, 0};
// Chi-square critical value for 35 degrees of freedom at p = 0.001.
constexpr double kChi2Bar35 = 66.62;

using StepRule = std::function<std::vector<int32_t>(absl::Span<const int32_t> drafts,
                                                    absl::Span<const int32_t> samples)>;

// Returns the chi-square; accepted_at[j]: how often draft j + 1 was accepted (the first step).
double ChainChi2(int k, const StepRule& rule, uint64_t seed,
                 std::vector<double>* accepted_at = nullptr) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::vector<int64_t> counts(36, 0), accepted(k, 0);
  for (int t = 0; t < kTrials; ++t) {
    std::vector<int32_t> out;
    int32_t last = 0;
    for (bool first = true; out.size() < 2; first = false) {
      std::vector<int32_t> drafts(k), samples(k + 1);
      for (int j = 0; j < k; ++j) drafts[j] = kGreedyDraft[j == 0 ? last : drafts[j - 1]];
      for (int j = 0; j <= k; ++j) samples[j] = Draw(kChain[j == 0 ? last : drafts[j - 1]], u(rng));
      const std::vector<int32_t> produced = rule(drafts, samples);
      if (first) {
        for (size_t j = 0; j + 1 < produced.size(); ++j) ++accepted[j];
      }
      out.insert(out.end(), produced.begin(), produced.end());
      last = out.back();
    }
    ++counts[out[0] * 6 + out[1]];
  }
  if (accepted_at != nullptr) {
    accepted_at->clear();
    for (int j = 0; j < k; ++j) accepted_at->push_back(static_cast<double>(accepted[j]) / kTrials);
  }
  double chi2 = 0;
  for (int a = 0; a < 6; ++a) {
    for (int b = 0; b < 6; ++b) {
      const double expected = double{kChain[0][a]} * kChain[a][b] * kTrials;
      chi2 += (counts[a * 6 + b] - expected) * (counts[a * 6 + b] - expected) / expected;
    }
  }
  return chi2;
}

TEST(SpeculativeSampling, ChainedGreedyDraftsKeepTheTarget) {
  const StepRule rule = [](absl::Span<const int32_t> d, absl::Span<const int32_t> x) {
    return AcceptGreedyDrafts(d, x);
  };
  for (int k : {1, 2, 3}) {
    for (uint64_t seed : {21, 22}) {
      std::vector<double> at;
      EXPECT_LT(ChainChi2(k, rule, seed, &at), kChi2Bar35) << "k " << k << " seed " << seed;
      // Draft 1 from token 0 is g(0) = 0, accepted with p(0 | 0) = 0.30; draft 2 (0 again)
      // needs both: 0.09; draft 3: 0.027. Deeper drafts are verified, not only the first.
      const double want[3] = {0.30, 0.09, 0.027};
      for (int j = 0; j < k; ++j) EXPECT_NEAR(at[j], want[j], 0.005) << "k " << k << " draft " << j;
    }
  }
}

// Wrong multi-draft rules fail the same bar: taking every row's sample whatever the drafts (a
// row after a rejected draft was sampled in a context the sequence does not have), and taking
// a sample that matched the draft past a rejection (verification must stop at the first miss).
TEST(SpeculativeSampling, WrongChainRulesFailTheBar) {
  const StepRule every_row = [](absl::Span<const int32_t>, absl::Span<const int32_t> x) {
    return std::vector<int32_t>(x.begin(), x.end());
  };
  EXPECT_GT(ChainChi2(2, every_row, 21), 10 * kChi2Bar35);
  const StepRule past_miss = [](absl::Span<const int32_t> d, absl::Span<const int32_t> x) {
    std::vector<int32_t> out = {x[0]};
    for (size_t j = 0; j < d.size(); ++j) {
      if (x[j] == d[j]) out.push_back(x[j + 1]);
    }
    return out;
  };
  EXPECT_GT(ChainChi2(3, past_miss, 21), 10 * kChi2Bar35);
}

TEST(SpeculativeSampling, AcceptGreedyDraftsStopsAtTheFirstMiss) {
  const std::vector<int32_t> d = {4, 5, 6};
  EXPECT_EQ(AcceptGreedyDrafts(d, std::vector<int32_t>{1, 9, 9, 9}), (std::vector<int32_t>{1}));
  EXPECT_EQ(AcceptGreedyDrafts(d, std::vector<int32_t>{4, 2, 9, 9}),
            (std::vector<int32_t>{4, 2}));
  EXPECT_EQ(AcceptGreedyDrafts(d, std::vector<int32_t>{4, 5, 7, 9}),
            (std::vector<int32_t>{4, 5, 7}));
  EXPECT_EQ(AcceptGreedyDrafts(d, std::vector<int32_t>{4, 5, 6, 8}),
            (std::vector<int32_t>{4, 5, 6, 8}));
}

}  // namespace
}  // namespace dsinfer
