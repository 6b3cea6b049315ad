// GPU sampling against src/sampling's Sampler given the same uniform draw (the Sampler's first
// std::uniform_real_distribution<double> draw from mt19937_64(seed)): identical tokens for greedy
// and for temperature / top-k / top-p / min-p with repetition, frequency and presence penalties
// whenever the candidate set is exact (top_k <= 1024 or a small vocabulary).
#include <map>
#include <random>

#include "kernels/cuda/sampling.h"
#include "src/sampling/sampler.h"
#include "tests/gpu/gpu_test_util.h"

namespace dsinfer {
namespace {

using gpu_test::DeviceArray;

struct SampleCase {
  const char* name;
  int64_t vocab;
  SamplingParams params;
};
std::ostream& operator<<(std::ostream& os, const SampleCase& c) { return os << c.name; }

SamplingParams Params(float t, int32_t k, float p, float min_p, float rep = 1.f, float freq = 0.f,
                      float pres = 0.f) {
  SamplingParams s;
  s.temperature = t;
  s.top_k = k;
  s.top_p = p;
  s.min_p = min_p;
  s.repetition_penalty = rep;
  s.frequency_penalty = freq;
  s.presence_penalty = pres;
  return s;
}

class SamplingGpuTest : public ::testing::TestWithParam<SampleCase> {};

TEST_P(SamplingGpuTest, SameTokenAsCpuSampler) {
  SKIP_WITHOUT_CUDA();
  const SampleCase& c = GetParam();
  const int64_t V = c.vocab, rows = 24;
  std::vector<float> all_logits;
  std::vector<cuda::SampleRowParams> rp;
  std::vector<int32_t> offsets = {0}, ptok, pcount, want;
  for (int64_t r = 0; r < rows; ++r) {
    std::mt19937_64 rng(1000 + r);
    std::normal_distribution<float> nd(0.f, 3.f);
    std::vector<float> logits(V);
    for (auto& l : logits) l = nd(rng);
    if (r % 5 == 0) logits[r % V] = logits[(r + 7) % V];  // ties
    std::vector<int32_t> prompt;
    for (int i = 0; i < 20; ++i) prompt.push_back(static_cast<int32_t>((r * 131 + i * 17) % V));
    SamplingParams sp = c.params;
    sp.seed = 77 + r;
    Sampler cpu(sp, prompt);
    // A few earlier outputs to give the frequency / presence penalties counts.
    std::mt19937_64 draws(*sp.seed);
    std::uniform_real_distribution<double> ud(0.0, 1.0);
    std::map<int32_t, int32_t> out_counts;
    for (int step = 0; step < 3; ++step) {
      std::vector<float> prev(V);
      for (auto& l : prev) l = nd(rng);
      const int32_t t = cpu.Sample(absl::MakeSpan(prev));
      ++out_counts[t];
      if (sp.temperature > 0) ud(draws);
    }
    const double u = sp.temperature > 0 ? ud(draws) : 0.0;
    std::vector<float> copy = logits;
    want.push_back(cpu.Sample(absl::MakeSpan(copy)));
    // Penalty CSR: distinct prompt and output tokens with their output counts.
    std::map<int32_t, int32_t> seen;
    for (int32_t t : prompt) seen[t] += 0;
    for (const auto& [t, n] : out_counts) seen[t] += n;
    for (const auto& [t, n] : seen) {
      ptok.push_back(t);
      pcount.push_back(n);
    }
    offsets.push_back(static_cast<int32_t>(ptok.size()));
    all_logits.insert(all_logits.end(), logits.begin(), logits.end());
    rp.push_back({.temperature = sp.temperature,
                  .top_k = sp.top_k,
                  .top_p = sp.top_p,
                  .min_p = sp.min_p,
                  .repetition_penalty = sp.repetition_penalty,
                  .frequency_penalty = sp.frequency_penalty,
                  .presence_penalty = sp.presence_penalty,
                  .uniform = u});
  }
  DeviceArray<float> dl(all_logits);
  DeviceArray<cuda::SampleRowParams> drp(rp);
  DeviceArray<int32_t> doff(offsets), dtok(ptok), dcnt(pcount), dout(rows);
  CUDA_OK(cuda::SampleTokens({.logits = dl.get(),
                              .rows = rows,
                              .vocab = V,
                              .ld = V,
                              .row_params = drp.get(),
                              .penalty_offsets = doff.get(),
                              .penalty_tokens = dtok.get(),
                              .penalty_counts = dcnt.get(),
                              .out_tokens = dout.get()},
                             nullptr));
  EXPECT_EQ(dout.ToHost(), want);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, SamplingGpuTest,
    ::testing::Values(
        SampleCase{"greedy", 32000, Params(0.f, 0, 1.f, 0.f)},
        SampleCase{"greedy_penalties", 5000, Params(0.f, 0, 1.f, 0.f, 1.3f, 0.5f, 0.4f)},
        SampleCase{"top_k", 32000, Params(0.8f, 50, 1.f, 0.f)},
        SampleCase{"top_k_top_p_min_p", 129280, Params(1.1f, 1000, 0.9f, 0.02f, 1.1f, 0.3f, 0.2f)},
        SampleCase{"small_vocab_top_p", 512, Params(0.7f, 0, 0.8f, 0.f)},
        SampleCase{"small_vocab_all", 1000, Params(1.0f, 0, 1.f, 0.1f, 1.2f)},
        SampleCase{"top_k_1", 3000, Params(2.0f, 1, 1.f, 0.f)}));

// Whole-vocabulary sampling (no top-k, no top-p): picks a token min-p allows, and follows the
// distribution (the most likely token most often).
TEST(SamplingGpu, FullVocabularyPath) {
  SKIP_WITHOUT_CUDA();
  const int64_t V = 50000, rows = 256;
  std::vector<float> logits(V, -5.f);
  logits[123] = 5.f;
  logits[40000] = 4.f;
  std::vector<float> all;
  std::vector<cuda::SampleRowParams> rp;
  for (int64_t r = 0; r < rows; ++r) {
    all.insert(all.end(), logits.begin(), logits.end());
    rp.push_back({.temperature = 1.f, .min_p = 0.05f, .uniform = (r + 0.5) / rows});
  }
  DeviceArray<float> dl(all);
  DeviceArray<cuda::SampleRowParams> drp(rp);
  DeviceArray<int32_t> dout(rows);
  CUDA_OK(cuda::SampleTokens({.logits = dl.get(),
                              .rows = rows,
                              .vocab = V,
                              .ld = V,
                              .row_params = drp.get(),
                              .out_tokens = dout.get()},
                             nullptr));
  int a = 0, b = 0;
  for (int32_t t : dout.ToHost()) {
    ASSERT_TRUE(t == 123 || t == 40000) << t;  // min-p drops the -5 logits
    (t == 123 ? a : b)++;
  }
  // p(123) = e / (e + 1) = 0.731
  EXPECT_NEAR(static_cast<double>(a) / rows, 0.731, 0.02);
}

}  // namespace
}  // namespace dsinfer
