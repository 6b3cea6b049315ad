// MTP speculative decoding on the CPU backend: the MTP layer's logits against the float32
// golden of tools/gen_mtp_fixtures.py, greedy output with MTP on identical to MTP off (both
// DeepSeek families, batched, drafts accepted and rejected; one draft per step and k = 2, 3
// chained drafts), the MTP layer's KV cache layer, and the refusals that name why.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>

#include "nlohmann/json.hpp"
#include "src/backend_cpu/cpu_ops.h"
#include "src/engine/batch_generator.h"
#include "src/kv_cache/block_pool.h"
#include "src/model/model_program.h"
#include "src/runner/runner_factory.h"
#include "src/weights/safetensors.h"

namespace dsinfer {
namespace {

const std::string kFixtures = std::string(DSINFER_SOURCE_DIR) + "/tests/fixtures/models/";

std::unique_ptr<ModelRunner> Load(const std::string& name, bool mtp,
                                  Precision p = Precision::kF32, int32_t draft_tokens = 1) {
  auto m = MakeModelRunner({.model_dir = kFixtures + name,
                            .precision = p,
                            .mtp = mtp,
                            .mtp_draft_tokens = draft_tokens,
                            .threads = 2,
                            .num_kv_blocks = 64});
  EXPECT_TRUE(m.ok()) << m.status();
  return m.ok() ? std::move(*m) : nullptr;
}

std::vector<float> Tensor(const SafetensorsFile& f, const std::string& name) {
  const TensorInfo* t = f.Find(name);
  EXPECT_NE(t, nullptr) << name;
  if (t == nullptr) return {};
  std::vector<float> v(t->nbytes / 4);
  std::memcpy(v.data(), t->data, t->nbytes);
  return v;
}

// max |got - want| / max |want|
double RelErr(const std::vector<float>& got, const std::vector<float>& want) {
  EXPECT_EQ(got.size(), want.size());
  double num = 0, den = 0;
  for (size_t i = 0; i < want.size() && i < got.size(); ++i) {
    num = std::max(num, static_cast<double>(std::fabs(got[i] - want[i])));
    den = std::max(den, static_cast<double>(std::fabs(want[i])));
  }
  return num / den;
}

nlohmann::json GoldenJson(const std::string& name) {
  std::ifstream in(kFixtures + name + "/golden_mtp.json");
  EXPECT_TRUE(in.good()) << name;
  return nlohmann::json::parse(in);
}

class MtpFixture : public ::testing::TestWithParam<std::string> {};

TEST_P(MtpFixture, MtpLogitsMatchTheReference) {
  const nlohmann::json j = GoldenJson(GetParam());
  const auto prompt = j["prompt"].get<std::vector<int32_t>>();
  const auto next = j["next_ids"].get<std::vector<int32_t>>();
  auto file = SafetensorsFile::Open(kFixtures + GetParam() + "/golden_mtp.safetensors");
  ASSERT_TRUE(file.ok()) << file.status();
  auto model = Load(GetParam(), /*mtp=*/true);
  ASSERT_NE(model, nullptr);
  BlockPool pool(model->num_kv_blocks());
  BlockTable table;
  ASSERT_TRUE(table.Reserve(pool, static_cast<int64_t>(prompt.size())).ok());
  RunnerSequence in{.tokens = prompt, .block_table = table.blocks(), .all_logits = true,
                    .next_token = next.back()};
  StepResult out;
  ASSERT_TRUE(model->Step({&in, 1}, &out).ok());
  const double main_err = RelErr(out.logits, Tensor(**file, "logits"));
  const double mtp_err = RelErr(out.mtp_logits, Tensor(**file, "mtp_logits"));
  std::printf("[%s] f32 main logits rel err %.3g, MTP logits rel err %.3g\n", GetParam().c_str(),
              main_err, mtp_err);
  EXPECT_LE(main_err, 1e-3);
  EXPECT_LE(mtp_err, 1e-3);
  // The last row paired with another next token is far off: the check can fail.
  BlockTable table2;
  ASSERT_TRUE(table2.Reserve(pool, static_cast<int64_t>(prompt.size())).ok());
  RunnerSequence wrong = in;
  wrong.block_table = table2.blocks();
  wrong.next_token = prompt.back();
  StepResult out2;
  ASSERT_TRUE(model->Step({&wrong, 1}, &out2).ok());
  const size_t V = out.logits.size() / prompt.size();
  const std::vector<float> golden = Tensor(**file, "mtp_logits");
  const std::vector<float> got_last(out2.mtp_logits.end() - V, out2.mtp_logits.end());
  const std::vector<float> want_last(golden.end() - V, golden.end());
  EXPECT_GT(RelErr(got_last, want_last), 1e-2);
}

// Greedy output is the same with MTP on and off, batched, and equals the float32 reference's
// greedy continuation; drafts are both accepted and rejected on the way.
TEST_P(MtpFixture, GreedyWithMtpEqualsWithout) {
  const nlohmann::json j = GoldenJson(GetParam());
  const auto golden_prompt = j["prompt"].get<std::vector<int32_t>>();
  const auto golden_greedy = j["greedy"].get<std::vector<int32_t>>();
  std::vector<GenerationRequest> reqs;
  reqs.push_back({.prompt = golden_prompt,
                  .max_tokens = static_cast<int64_t>(golden_greedy.size()),
                  .stop_at_eos = false});
  for (int b = 0; b < 3; ++b) {
    GenerationRequest r{.max_tokens = 30 + 7 * b, .stop_at_eos = false};
    for (int i = 0; i < 5 + 23 * b; ++i) r.prompt.push_back((131 * (b + 1) + 37 * i) % 500 + 2);
    reqs.push_back(r);
  }
  auto off = Load(GetParam(), false);
  auto on = Load(GetParam(), true);
  ASSERT_TRUE(off && on);
  // Small prefill chunks: the MTP layer sees prompt chunks whose next token is known.
  GenerationOptions opts{.prefill_chunk = 16};
  auto want = GenerateOnRunner(*off, reqs, opts);
  GenerationStats st;
  auto got = GenerateOnRunner(*on, reqs, opts, &st);
  ASSERT_TRUE(want.ok() && got.ok());
  for (size_t r = 0; r < reqs.size(); ++r) {
    EXPECT_EQ((*got)[r].tokens, (*want)[r].tokens) << "request " << r;
    EXPECT_EQ(static_cast<int64_t>((*got)[r].tokens.size()), reqs[r].max_tokens);
  }
  EXPECT_EQ((*want)[0].tokens, golden_greedy);
  std::printf("[%s] drafts %lld, accepted %lld (%.2f)\n", GetParam().c_str(),
              static_cast<long long>(st.draft_tokens), static_cast<long long>(st.accepted_tokens),
              static_cast<double>(st.accepted_tokens) / std::max<int64_t>(1, st.draft_tokens));
  EXPECT_GT(st.accepted_tokens, st.draft_tokens / 2);  // the fixture's MTP layer predicts well
  EXPECT_LT(st.accepted_tokens, st.draft_tokens);      // and rejections happen too
  // Each request one at a time gives the same (batching does not change a sequence).
  for (size_t r = 0; r < reqs.size(); ++r) {
    auto alone = GenerateOnRunner(*on, {&reqs[r], 1}, opts);
    ASSERT_TRUE(alone.ok());
    EXPECT_EQ((*alone)[0].tokens, (*want)[r].tokens) << "request " << r;
  }
}

// Four sampled requests of 20 tokens (temperature 0.8, seeds 100..103) for the reproducibility
// tests.
std::vector<GenerationRequest> SampledRequests(float top_p) {
  std::vector<GenerationRequest> reqs(4);
  for (int b = 0; b < 4; ++b) {
    for (int i = 0; i < 9 + b; ++i) reqs[b].prompt.push_back((17 * b + 29 * i) % 500 + 2);
    reqs[b].max_tokens = 20;
    reqs[b].stop_at_eos = false;
    reqs[b].sampling.temperature = 0.8f;
    reqs[b].sampling.top_p = top_p;
    reqs[b].sampling.seed = 100 + b;
  }
  return reqs;
}

// Sampled generation with MTP keeps every request's length and is reproducible by seed.
TEST_P(MtpFixture, SampledWithMtpIsReproducible) {
  auto on = Load(GetParam(), true);
  ASSERT_NE(on, nullptr);
  const std::vector<GenerationRequest> reqs = SampledRequests(0.95f);
  GenerationStats st;
  auto a = GenerateOnRunner(*on, reqs, {}, &st);
  auto b = GenerateOnRunner(*on, reqs);
  ASSERT_TRUE(a.ok() && b.ok());
  for (size_t r = 0; r < reqs.size(); ++r) {
    EXPECT_EQ((*a)[r].tokens.size(), 20u);
    EXPECT_EQ((*a)[r].tokens, (*b)[r].tokens);
  }
  EXPECT_GT(st.draft_tokens, 0);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, MtpFixture, ::testing::Values("mtp_v2_lite", "mtp_v3_fp8"));

// The chained rounds' MTP logits through the program's ops (f32) against the float32 reference of
// tools/gen_mtp_fixtures.py --chain: round 1 is the prompt's last MTP row paired with the main
// model's greedy token g0 (kMainHidden), rounds 2 and 3 a decode step each at the next position
// pairing the previous round's state with its draft (kMtpHidden). A zero state misses the bar.
TEST_P(MtpFixture, ChainedDraftLogitsMatchTheReference) {
  const std::string dir = kFixtures + GetParam();
  std::ifstream in(dir + "/golden_mtp_chain.json");
  ASSERT_TRUE(in.good());
  const nlohmann::json j = nlohmann::json::parse(in);
  const auto prompt = j["prompt"].get<std::vector<int32_t>>();
  const auto drafts = j["drafts"].get<std::vector<int32_t>>();
  const int32_t g0 = j["g0"].get<int32_t>();
  auto file = SafetensorsFile::Open(dir + "/golden_mtp_chain.safetensors");
  ASSERT_TRUE(file.ok()) << file.status();
  const std::vector<float> golden = Tensor(**file, "chain_logits");
  auto config = LoadModelConfig(dir);
  ASSERT_TRUE(config.ok()) << config.status();
  config->mtp_layers = 1;
  auto store = WeightStore::Open(dir);
  ASSERT_TRUE(store.ok()) << store.status();
  (*store)->SetFp8BlockSize(config->fp8.block_n, config->fp8.block_k);
  std::unique_ptr<BackendOps> ops = MakeCpuOps({.precision = Precision::kF32, .threads = 2});
  const KvCacheSpec spec = ModelKvCacheSpec(*config, ops->kv_dtype());
  ASSERT_TRUE(ops->AllocateKvCache(spec, 4).ok());
  auto program = LoadModelProgram(*config, {}, **store, *ops);
  ASSERT_TRUE(program.ok()) << program.status();
  const StepLimits limits{.vocab_size = config->vocab_size,
                          .max_positions = config->max_position_embeddings,
                          .num_blocks = 4,
                          .block_size = spec.block_size};
  const std::vector<int32_t> table = {0, 1};
  const int64_t P = static_cast<int64_t>(prompt.size()), D = config->hidden_size;
  const int64_t V = config->vocab_size;
  const int K = static_cast<int>(drafts.size());
  // Round 1: the prompt, its last row paired with g0.
  const RunnerSequence seq{.tokens = prompt, .block_table = table};
  auto step = BuildStepInput({&seq, 1}, limits);
  ASSERT_TRUE(step.ok()) << step.status();
  ASSERT_TRUE(ops->BeginStep(*step).ok());
  auto x = (*program)->Layers(*step);
  ASSERT_TRUE(x.ok()) << x.status();
  std::vector<int32_t> next(prompt.begin() + 1, prompt.end());
  next.push_back(g0);
  const std::vector<int32_t> last = {static_cast<int32_t>(P - 1)}, first = {0};
  ::dsinfer::Tensor hidden;
  auto logits = (*program)->MtpLogits(*step, *x, ModelProgram::MtpInput::kMainHidden, next, last,
                                      &hidden);
  ASSERT_TRUE(logits.ok()) << logits.status();
  std::vector<float> got(K * V), state(D);
  ASSERT_TRUE(ops->CopyToHost(*logits, got.data()).ok());
  ASSERT_TRUE(ops->CopyToHost(hidden, state.data()).ok());
  std::vector<StepInput> rounds(K);  // the backend keeps a pointer to the step it began
  std::vector<int32_t> row_token(K);
  for (int r = 1; r < K; ++r) {
    row_token[r] = r == 1 ? g0 : drafts[r - 2];
    const RunnerSequence one{.tokens = {&row_token[r], 1}, .start_pos = P + r - 1,
                             .block_table = table};
    auto st = BuildStepInput({&one, 1}, limits);
    ASSERT_TRUE(st.ok()) << st.status();
    rounds[r] = std::move(*st);
    ASSERT_TRUE(ops->BeginStep(rounds[r]).ok());
    auto h = ops->Scratch(1, D, ElemType::kF32);
    ASSERT_TRUE(h.ok());
    ASSERT_TRUE(ops->CopyFromHost(state.data(), *h).ok());
    const std::vector<int32_t> d = {drafts[r - 1]};
    ::dsinfer::Tensor out;
    auto lr = (*program)->MtpLogits(rounds[r], *h, ModelProgram::MtpInput::kMtpHidden, d, first,
                                    &out);
    ASSERT_TRUE(lr.ok()) << lr.status();
    ASSERT_TRUE(ops->CopyToHost(*lr, got.data() + r * V).ok());
    ASSERT_TRUE(ops->CopyToHost(out, state.data()).ok());
  }
  for (int r = 0; r < K; ++r) {
    const std::vector<float> g(got.begin() + r * V, got.begin() + (r + 1) * V);
    const std::vector<float> w(golden.begin() + r * V, golden.begin() + (r + 1) * V);
    const double err = RelErr(g, w);
    std::printf("[%s] chained round %d MTP logits rel err %.3g\n", GetParam().c_str(), r + 1, err);
    EXPECT_LE(err, 1e-3) << "round " << r + 1;
  }
  // The same round 2 from a zero state: the state matters, and the bar sees it.
  StepInput again = rounds[1];
  ASSERT_TRUE(ops->BeginStep(again).ok());
  auto zero = ops->Scratch(1, D, ElemType::kF32);
  ASSERT_TRUE(zero.ok() && ops->Zero(*zero).ok());
  const std::vector<int32_t> d1 = {drafts[0]};
  auto lz = (*program)->MtpLogits(again, *zero, ModelProgram::MtpInput::kMtpHidden, d1, first,
                                  nullptr);
  ASSERT_TRUE(lz.ok()) << lz.status();
  std::vector<float> z(V);
  ASSERT_TRUE(ops->CopyToHost(*lz, z.data()).ok());
  EXPECT_GT(RelErr(z, std::vector<float>(golden.begin() + V, golden.begin() + 2 * V)), 1e-3);
}

// k = 2, 3 drafts per step (the MTP layer chained on its own state and drafts): greedy output
// identical to MTP off, batched and alone, with drafts accepted at every position and rejected.
class MtpChained : public ::testing::TestWithParam<std::tuple<std::string, int>> {};

TEST_P(MtpChained, GreedyWithKDraftsEqualsWithout) {
  const auto [name, k] = GetParam();
  const nlohmann::json j = GoldenJson(name);
  std::vector<GenerationRequest> reqs;
  reqs.push_back({.prompt = j["prompt"].get<std::vector<int32_t>>(),
                  .max_tokens = static_cast<int64_t>(j["greedy"].size()),
                  .stop_at_eos = false});
  for (int b = 0; b < 3; ++b) {
    GenerationRequest r{.max_tokens = 30 + 7 * b, .stop_at_eos = false};
    for (int i = 0; i < 5 + 23 * b; ++i) r.prompt.push_back((131 * (b + 1) + 37 * i) % 500 + 2);
    reqs.push_back(r);
  }
  auto off = Load(name, false);
  auto on = Load(name, true, Precision::kF32, k);
  ASSERT_TRUE(off && on);
  EXPECT_EQ(on->mtp_draft_tokens(), k);
  GenerationOptions opts{.prefill_chunk = 16};
  auto want = GenerateOnRunner(*off, reqs, opts);
  GenerationStats st;
  auto got = GenerateOnRunner(*on, reqs, opts, &st);
  ASSERT_TRUE(want.ok() && got.ok());
  for (size_t r = 0; r < reqs.size(); ++r) {
    EXPECT_EQ((*got)[r].tokens, (*want)[r].tokens) << "request " << r;
    EXPECT_EQ(static_cast<int64_t>((*got)[r].tokens.size()), reqs[r].max_tokens);
  }
  EXPECT_EQ((*want)[0].tokens, j["greedy"].get<std::vector<int32_t>>());
  std::printf("[%s k=%d] drafts %lld, accepted %lld;", name.c_str(), k,
              static_cast<long long>(st.draft_tokens), static_cast<long long>(st.accepted_tokens));
  for (int p = 0; p < k; ++p) {
    std::printf(" position %d: %lld/%lld", p, static_cast<long long>(st.accepted_at[p]),
                static_cast<long long>(st.drafted_at[p]));
  }
  std::printf("\n");
  EXPECT_LT(st.accepted_tokens, st.draft_tokens);  // rejections happen
  for (int p = 0; p < k; ++p) {
    EXPECT_GT(st.drafted_at[p], 0) << "position " << p;   // k drafts are verified ...
    EXPECT_GT(st.accepted_at[p], 0) << "position " << p;  // ... and accepted at every position
  }
  EXPECT_EQ(st.drafted_at[k], 0);
  for (size_t r = 0; r < reqs.size(); ++r) {
    auto alone = GenerateOnRunner(*on, {&reqs[r], 1}, opts);
    ASSERT_TRUE(alone.ok());
    EXPECT_EQ((*alone)[0].tokens, (*want)[r].tokens) << "request " << r;
  }
}

// Sampled generation with chained drafts keeps every request's length and is reproducible.
TEST_P(MtpChained, SampledWithKDraftsIsReproducible) {
  const auto [name, k] = GetParam();
  auto on = Load(name, true, Precision::kF32, k);
  ASSERT_NE(on, nullptr);
  const std::vector<GenerationRequest> reqs = SampledRequests(1.0f);
  GenerationStats st;
  auto a = GenerateOnRunner(*on, reqs, {}, &st);
  auto b = GenerateOnRunner(*on, reqs);
  ASSERT_TRUE(a.ok() && b.ok());
  for (size_t r = 0; r < reqs.size(); ++r) {
    EXPECT_EQ((*a)[r].tokens.size(), 20u);
    EXPECT_EQ((*a)[r].tokens, (*b)[r].tokens);
  }
  EXPECT_GT(st.drafted_at[k - 1], 0);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, MtpChained,
                         ::testing::Combine(::testing::Values("mtp_v2_lite", "mtp_v3_fp8"),
                                            ::testing::Values(2, 3)),
                         [](const auto& info) {
                           return std::get<0>(info.param) + "_k" +
                                  std::to_string(std::get<1>(info.param));
                         });

TEST(Mtp, DraftTokensOutOfRangeAreRefused) {
  for (int32_t k : {0, kMaxMtpDraftTokens + 1}) {
    auto m = MakeModelRunner({.model_dir = kFixtures + "mtp_v2_lite", .mtp = true,
                              .mtp_draft_tokens = k, .num_kv_blocks = 4});
    ASSERT_FALSE(m.ok()) << k;
    EXPECT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(m.status().message().find("mtp_draft_tokens"), std::string::npos) << m.status();
  }
}

TEST(Mtp, TheMtpLayerHasItsOwnCacheLayer) {
  auto off = Load("mtp_v3_fp8", false);
  auto on = Load("mtp_v3_fp8", true);
  ASSERT_TRUE(off && on);
  EXPECT_EQ(off->kv_cache_spec().num_layers, off->config().num_hidden_layers);
  EXPECT_EQ(on->kv_cache_spec().num_layers, on->config().num_hidden_layers + 1);
  EXPECT_EQ(on->kv_cache_spec().row_width, off->kv_cache_spec().row_width);
  EXPECT_FALSE(off->has_mtp());
  EXPECT_TRUE(on->has_mtp());
  EXPECT_GT(on->weight_bytes(), off->weight_bytes());
}

TEST(Mtp, RefusedWhereThereIsNoMtpLayer) {
  auto none = MakeModelRunner({.model_dir = kFixtures + "v2_lite_bf16", .mtp = true,
                               .num_kv_blocks = 4});
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find("num_nextn_predict_layers"), std::string::npos)
      << none.status();
  auto dense = MakeModelRunner({.model_dir = kFixtures + "qwen2_gqa_f32", .mtp = true,
                                .num_kv_blocks = 4});
  ASSERT_FALSE(dense.ok());
  EXPECT_NE(dense.status().message().find("mtp"), std::string::npos) << dense.status();
}

TEST(Mtp, DraftNeedsAnMtpRunner) {
  auto off = Load("mtp_v2_lite", false);
  ASSERT_NE(off, nullptr);
  BlockPool pool(off->num_kv_blocks());
  BlockTable table;
  ASSERT_TRUE(table.Reserve(pool, 4).ok());
  const std::vector<int32_t> toks = {5, 6};
  RunnerSequence in{.tokens = toks, .start_pos = 2, .block_table = table.blocks(),
                    .sample = true, .num_draft = 1};
  StepResult out;
  EXPECT_EQ(off->Step({&in, 1}, &out).code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace dsinfer
