// Speculative sampling keeps the target distribution: chi-square of the verified tokens against
// p on a small vocabulary (fixed seeds), with wrong rules shown to fail the same bar.
#include <gtest/gtest.h>

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

}  // namespace
}  // namespace dsinfer
