// Fidelity of the model program on the CPU backend against golden logits and greedy
// continuations of tiny random checkpoints (tests/fixtures/models, made by
// tools/gen_golden_models.py).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>

#include "nlohmann/json.hpp"
#include "src/engine/batch_generator.h"
#include "src/kv_cache/block_pool.h"
#include "src/runner/runner_factory.h"
#include "src/weights/safetensors.h"

namespace dsinfer {
namespace {

const std::string kFixtures = std::string(DSINFER_SOURCE_DIR) + "/tests/fixtures/models/";

struct Golden {
  std::vector<std::vector<int32_t>> prompts;
  std::vector<std::vector<int32_t>> greedy;
  std::vector<std::vector<float>> logits;  // [prompt][len * vocab]
  int64_t index_topk = 0;  // DeepSeek Sparse Attention fixtures: keys each query attends to
};

Golden LoadGolden(const std::string& name) {
  Golden g;
  std::ifstream in(kFixtures + name + "/golden.json");
  EXPECT_TRUE(in.good()) << name;
  nlohmann::json j = nlohmann::json::parse(in);
  g.prompts = j["prompts"].get<std::vector<std::vector<int32_t>>>();
  g.greedy = j["greedy"].get<std::vector<std::vector<int32_t>>>();
  if (j.contains("index")) g.index_topk = j["index"]["index_topk"].get<int64_t>();
  auto file = SafetensorsFile::Open(kFixtures + name + "/golden.safetensors");
  EXPECT_TRUE(file.ok()) << file.status();
  for (size_t i = 0; i < g.prompts.size(); ++i) {
    const TensorInfo* t = (*file)->Find("logits." + std::to_string(i));
    EXPECT_NE(t, nullptr);
    std::vector<float> v(t->nbytes / 4);
    std::memcpy(v.data(), t->data, t->nbytes);
    g.logits.push_back(std::move(v));
  }
  return g;
}

// max |got - want| / max |want|
double RelErr(const std::vector<float>& got, const std::vector<float>& want) {
  double num = 0, den = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    num = std::max(num, static_cast<double>(std::fabs(got[i] - want[i])));
    den = std::max(den, static_cast<double>(std::fabs(want[i])));
  }
  return num / den;
}

// The CPU runner of a fixture; 64 KV blocks hold every test's requests together.
std::unique_ptr<ModelRunner> Load(const std::string& name, Precision p, bool keep_fp8 = true) {
  auto m = MakeModelRunner({.model_dir = kFixtures + name,
                            .precision = p,
                            .keep_fp8 = keep_fp8,
                            .threads = 2,
                            .num_kv_blocks = 64});
  EXPECT_TRUE(m.ok()) << m.status();
  return m.ok() ? std::move(*m) : nullptr;
}

std::vector<float> PromptLogits(ModelRunner& model, const std::vector<int32_t>& prompt) {
  const int64_t n = static_cast<int64_t>(prompt.size());
  BlockPool pool(model.num_kv_blocks());
  BlockTable table;
  EXPECT_TRUE(table.Reserve(pool, n).ok());
  RunnerSequence in{.tokens = prompt, .block_table = table.blocks(), .all_logits = true};
  StepResult out;
  absl::Status st = model.Step({&in, 1}, &out);
  EXPECT_TRUE(st.ok()) << st;
  return out.logits;
}

absl::StatusOr<std::vector<GenerationResult>> GenerateBatch(
    ModelRunner& model, absl::Span<const GenerationRequest> reqs,
    const GenerationOptions& options = {}) {
  return GenerateOnRunner(model, reqs, options);
}

class GoldenModelTest : public ::testing::TestWithParam<std::string> {};

TEST_P(GoldenModelTest, F32LogitsMatch) {
  Golden g = LoadGolden(GetParam());
  auto model = Load(GetParam(), Precision::kF32);
  ASSERT_NE(model, nullptr);
  for (size_t i = 0; i < g.prompts.size(); ++i) {
    double err = RelErr(PromptLogits(*model, g.prompts[i]), g.logits[i]);
    EXPECT_LE(err, 1e-3) << "prompt " << i;
    std::printf("[%s] f32 prompt %zu (len %zu): rel err %.3g\n", GetParam().c_str(), i,
                g.prompts[i].size(), err);
  }
}

TEST_P(GoldenModelTest, Bf16LogitsMatch) {
  Golden g = LoadGolden(GetParam());
  auto model = Load(GetParam(), Precision::kBF16);
  ASSERT_NE(model, nullptr);
  for (size_t i = 0; i < g.prompts.size(); ++i) {
    // A sparse-attention prompt longer than index_topk selects keys by a discontinuous top-k:
    // bf16 rounding legitimately picks other keys where index scores are close (DeepSeek's
    // bf16 reference would too), so past index_topk positions only the f32 run is held to the
    // f32 golden; the positions before (every key attended) keep the bf16 bar.
    if (g.index_topk > 0 && static_cast<int64_t>(g.prompts[i].size()) > g.index_topk) {
      const size_t n = static_cast<size_t>(g.index_topk) * (g.logits[i].size() / g.prompts[i].size());
      std::vector<float> got = PromptLogits(*model, g.prompts[i]);
      got.resize(n);
      const double err = RelErr(got, {g.logits[i].begin(), g.logits[i].begin() + n});
      EXPECT_LE(err, 3e-2) << "prompt " << i << ", its first " << g.index_topk << " positions";
      std::printf("[%s] bf16 prompt %zu, first %lld positions: rel err %.3g\n", GetParam().c_str(),
                  i, static_cast<long long>(g.index_topk), err);
      continue;
    }
    double err = RelErr(PromptLogits(*model, g.prompts[i]), g.logits[i]);
    EXPECT_LE(err, 3e-2) << "prompt " << i;
    std::printf("[%s] bf16 prompt %zu: rel err %.3g\n", GetParam().c_str(), i, err);
  }
}

GenerationRequest Greedy(const std::vector<int32_t>& prompt, int64_t n) {
  GenerationRequest r;
  r.prompt = prompt;
  r.max_tokens = n;
  r.stop_at_eos = false;
  return r;
}

// Prefill then absorbed-form decode through the paged cache must continue exactly as the
// golden greedy decoding (at least 12 tokens).
TEST_P(GoldenModelTest, F32GreedyMatches) {
  Golden g = LoadGolden(GetParam());
  auto model = Load(GetParam(), Precision::kF32);
  ASSERT_NE(model, nullptr);
  for (size_t i = 0; i < g.prompts.size(); ++i) {
    ASSERT_GE(g.greedy[i].size(), 12u);
    GenerationRequest r = Greedy(g.prompts[i], static_cast<int64_t>(g.greedy[i].size()));
    auto out = GenerateBatch(*model, {&r, 1});
    ASSERT_TRUE(out.ok()) << out.status();
    EXPECT_EQ((*out)[0].tokens, g.greedy[i]) << "prompt " << i;
  }
}

// A sequence's output must not depend on what it is batched with: all prompts prefilled in
// one step and decoded together give the same tokens as each alone.
TEST_P(GoldenModelTest, BatchedGreedyEqualsAlone) {
  Golden g = LoadGolden(GetParam());
  auto model = Load(GetParam(), Precision::kF32);
  ASSERT_NE(model, nullptr);
  std::vector<GenerationRequest> reqs;
  for (const auto& p : g.prompts) reqs.push_back(Greedy(p, 16));
  // Different lengths in one batch, plus a duplicate that finishes early.
  reqs.push_back(Greedy(g.prompts.back(), 5));
  auto together = GenerateBatch(*model, reqs, {.batch_prefill = true});
  ASSERT_TRUE(together.ok()) << together.status();
  for (size_t i = 0; i < reqs.size(); ++i) {
    auto alone = GenerateBatch(*model, {&reqs[i], 1});
    ASSERT_TRUE(alone.ok());
    EXPECT_EQ((*together)[i].tokens, (*alone)[0].tokens) << "request " << i;
  }
}

// Chunked prefill (the prompt fed in pieces that attend to earlier paged blocks) gives the
// same continuation as a single prefill.
TEST_P(GoldenModelTest, ChunkedPrefillMatches) {
  Golden g = LoadGolden(GetParam());
  auto model = Load(GetParam(), Precision::kF32);
  ASSERT_NE(model, nullptr);
  const auto& prompt = g.prompts.back();
  GenerationRequest r = Greedy(prompt, 12);
  auto whole = GenerateBatch(*model, {&r, 1});
  auto chunked = GenerateBatch(*model, {&r, 1}, {.prefill_chunk = 17});
  ASSERT_TRUE(whole.ok() && chunked.ok());
  EXPECT_EQ((*whole)[0].tokens, (*chunked)[0].tokens);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, GoldenModelTest,
                         ::testing::Values("v2_lite_bf16", "v3_fp8", "v3_fp4", "v2_group_f16", "v32_fp8",
                                           "qwen2_gqa_f32", "llama_gqa_bf16", "llama_bias_mqa_f32",
                                           "v4_tiny"));

TEST(ModelErrors, BadInputIsAnError) {
  auto model = Load("v2_lite_bf16", Precision::kF32);
  ASSERT_NE(model, nullptr);
  BlockPool pool(2);
  BlockTable table;
  ASSERT_TRUE(table.Reserve(pool, 70).ok());
  StepResult out;
  std::vector<int32_t> bad_token = {5, 100000};
  RunnerSequence in{.tokens = bad_token, .block_table = table.blocks()};
  absl::Status st = model->Step({&in, 1}, &out);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("token id 100000 outside the vocabulary"), std::string::npos) << st;
  std::vector<int32_t> long_prompt(200, 3);
  in = {.tokens = long_prompt, .block_table = table.blocks()};
  st = model->Step({&in, 1}, &out);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("too few for 200 tokens"), std::string::npos) << st;
  EXPECT_FALSE(MakeModelRunner({.model_dir = "/nonexistent/model", .num_kv_blocks = 1}).ok());
}

}  // namespace
}  // namespace dsinfer
