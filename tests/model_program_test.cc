// The one model program's contracts on the CPU backend: FP8 weights kept as FP8 give the same
// model as dequantising them at load, the scratch bound the CUDA backend reserves holds, the
// runner reports one KvCacheSpec, and sampling parameters reach the backend's sampling op.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <functional>
#include <fstream>
#include <unistd.h>

#include "nlohmann/json.hpp"

#include "src/engine/batch_generator.h"
#include "src/kv_cache/block_pool.h"
#include "src/model/deepseek_program.h"
#include "src/model/program_runner.h"
#include "src/model/deepseek_weights.h"
#include "src/runner/runner_factory.h"

namespace dsinfer {
namespace {

const std::string kFixtures = std::string(DSINFER_SOURCE_DIR) + "/tests/fixtures/models/";

std::unique_ptr<ModelRunner> Load(const std::string& name, Precision p, bool keep_fp8 = true) {
  auto m = MakeModelRunner({.model_dir = kFixtures + name,
                            .precision = p,
                            .keep_fp8 = keep_fp8,
                            .threads = 2,
                            .num_kv_blocks = 16});
  EXPECT_TRUE(m.ok()) << m.status();
  return m.ok() ? std::move(*m) : nullptr;
}

std::vector<float> Logits(ModelRunner& r, const std::vector<int32_t>& prompt) {
  BlockPool pool(r.num_kv_blocks());
  BlockTable table;
  EXPECT_TRUE(table.Reserve(pool, static_cast<int64_t>(prompt.size())).ok());
  RunnerSequence in{.tokens = prompt, .block_table = table.blocks(), .all_logits = true};
  StepResult out;
  EXPECT_TRUE(r.Step({&in, 1}, &out).ok());
  return out.logits;
}

double RelErr(const std::vector<float>& got, const std::vector<float>& want) {
  double num = 0, den = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    num = std::max(num, static_cast<double>(std::fabs(got[i] - want[i])));
    den = std::max(den, static_cast<double>(std::fabs(want[i])));
  }
  return num / den;
}

std::vector<int32_t> Prompt(int n) {
  std::vector<int32_t> p;
  for (int i = 0; i < n; ++i) p.push_back((37 * i + 11) % 500 + 1);
  return p;
}

// v3_fp8 has FP8 weights whose sizes are not multiples of 128 (partial edge blocks) and fused
// projections whose parts start off the block grid: kept FP8, they are the same model.
TEST(Fp8Kept, SameModelAsDequantisedAtLoad) {
  auto kept = Load("v3_fp8", Precision::kF32, true);
  auto deq = Load("v3_fp8", Precision::kF32, false);
  ASSERT_TRUE(kept && deq);
  auto* k = dynamic_cast<ProgramRunner*>(kept.get());
  auto* d = dynamic_cast<ProgramRunner*>(deq.get());
  ASSERT_TRUE(k && d);
  EXPECT_GT(k->fp8_weight_bytes(), 0);
  EXPECT_EQ(d->fp8_weight_bytes(), 0);
  EXPECT_LT(k->weight_bytes(), d->weight_bytes());
  const auto prompt = Prompt(40);
  const double err = RelErr(Logits(*kept, prompt), Logits(*deq, prompt));
  std::printf("f32 FP8 kept vs dequantised: rel err %.3g\n", err);
  EXPECT_LE(err, 1e-5);
}

TEST(Fp8Kept, Bf16GreedyMatchesDequantisedAtLoad) {
  auto kept = Load("v3_fp8", Precision::kBF16, true);
  auto deq = Load("v3_fp8", Precision::kBF16, false);
  ASSERT_TRUE(kept && deq);
  const auto prompt = Prompt(20);
  const double err = RelErr(Logits(*kept, prompt), Logits(*deq, prompt));
  std::printf("bf16 FP8 kept vs dequantised: rel err %.3g\n", err);
  EXPECT_LE(err, 3e-2);
  GenerationRequest r{.prompt = prompt, .max_tokens = 12, .stop_at_eos = false};
  auto a = GenerateOnRunner(*kept, {&r, 1});
  auto b = GenerateOnRunner(*deq, {&r, 1});
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ((*a)[0].tokens, (*b)[0].tokens);
}

// The bound the CUDA backend reserves its scratch arena with covers what the program takes.
TEST(ScratchBound, CoversPrefillAndDecode) {
  for (const char* name : {"v2_lite_bf16", "v3_fp8", "v2_group_f16", "v32_fp8", "qwen2_gqa_f32",
                           "llama_gqa_bf16"}) {
    auto r = Load(name, Precision::kBF16);
    ASSERT_NE(r, nullptr);
    auto* pr = dynamic_cast<ProgramRunner*>(r.get());
    std::vector<GenerationRequest> reqs;
    for (int n : {70, 9, 1}) reqs.push_back({.prompt = Prompt(n), .max_tokens = 4, .stop_at_eos = false});
    ASSERT_TRUE(GenerateOnRunner(*r, reqs, {.batch_prefill = true}).ok());
    EXPECT_GT(pr->scratch_peak(), 0);
    // 80 tokens in the largest step (70 + 9 + 1), 3 logit rows.
    EXPECT_LE(pr->scratch_peak(), pr->ScratchBound(80, 3)) << name;
    // The logits path of `dsinfer logits` (every row of a 40-token prompt).
    Logits(*r, Prompt(40));
    EXPECT_LE(pr->scratch_peak(), pr->ScratchBound(80, 40)) << name;
  }
}

// Every sizing path takes bytes from the runner's KvCacheSpec: MLA's latent row.
TEST(KvCacheSpecOfRunner, IsTheLatentRow) {
  auto r = Load("v3_fp8", Precision::kF32);
  ASSERT_NE(r, nullptr);
  const ModelConfig& c = r->config();
  const KvCacheSpec& s = r->kv_cache_spec();
  EXPECT_EQ(s.num_layers, c.num_hidden_layers);
  EXPECT_EQ(s.row_width, c.kv_lora_rank + c.qk_rope_head_dim);
  EXPECT_EQ(s.dtype, KvDType::kF32);  // the CPU backend keeps its cache in f32
  const KvCacheSpec gpu = MlaKvCacheSpec(c, KvDType::kBF16);
  EXPECT_EQ(gpu.bytes_per_token(), c.num_hidden_layers * (c.kv_lora_rank + c.qk_rope_head_dim) * 2);
}

// DeepSeek-V3.2 adds its FP8 index keys as the second per-layer component: 128 e4m3 codes and
// one f32 scale per token and layer, counted in every byte size the sizing paths read.
TEST(KvCacheSpecOfRunner, V32AddsTheIndexKeys) {
  auto r = Load("v32_fp8", Precision::kF32);
  ASSERT_NE(r, nullptr);
  const ModelConfig& c = r->config();
  const KvCacheSpec& s = r->kv_cache_spec();
  EXPECT_EQ(s.row_width, c.kv_lora_rank + c.qk_rope_head_dim);
  EXPECT_EQ(s.index_row_bytes, 128 + 4);
  EXPECT_EQ(s.bytes_per_token(),
            c.num_hidden_layers * ((c.kv_lora_rank + c.qk_rope_head_dim) * 4 + 132));
  EXPECT_EQ(s.bytes_per_block(), s.bytes_per_token() * kKvBlockSize);
}

// A copy of the v32_fp8 fixture (weights linked) whose config.json `edit` changes.
std::string V32Variant(const std::string& tag, const std::function<void(nlohmann::json&)>& edit) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("dsinfer_v32_" + tag + "_" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  fs::create_symlink(kFixtures + "v32_fp8/model.safetensors", dir / "model.safetensors");
  std::ifstream in(kFixtures + "v32_fp8/config.json");
  nlohmann::json c = nlohmann::json::parse(in);
  edit(c);
  std::ofstream(dir / "config.json") << c.dump();
  return dir.string();
}

// Sparse attention is MLA restricted to the indexer's choice: with index_topk at least the
// context it is V3's dense MLA on the same weights (the indexer's tensors unused), and with the
// fixture's index_topk (24) the 70-token prompt's logits really differ from dense ones.
TEST(SparseAttention, FullTopKIsDenseMlaAndSmallTopKSelects) {
  const std::string wide = V32Variant("wide", [](nlohmann::json& c) { c["index_topk"] = 4096; });
  const std::string dense = V32Variant("dense", [](nlohmann::json& c) {
    c["model_type"] = "deepseek_v3";
    for (const char* k : {"index_topk", "index_n_heads", "index_head_dim"}) c.erase(k);
  });
  auto open = [](const std::string& dir) {
    auto m = MakeModelRunner({.model_dir = dir, .precision = Precision::kF32, .threads = 2,
                              .num_kv_blocks = 4});
    EXPECT_TRUE(m.ok()) << m.status();
    return m.ok() ? std::move(*m) : nullptr;
  };
  auto w = open(wide), d = open(dense), s = open(kFixtures + "v32_fp8");
  ASSERT_TRUE(w && d && s);
  const auto prompt = Prompt(70);
  const std::vector<float> dense_logits = Logits(*d, prompt);
  EXPECT_LE(RelErr(Logits(*w, prompt), dense_logits), 1e-5);
  EXPECT_GE(RelErr(Logits(*s, prompt), dense_logits), 1e-2);
  std::filesystem::remove_all(wide);
  std::filesystem::remove_all(dense);
}

// Sampling parameters reach the backend: the same row sampled on the runner and by SampleRow
// over the logits the runner returns gives the same token; logprobs are a log-softmax.
TEST(RunnerSampling, ParametersReachTheBackend) {
  auto r = Load("v2_lite_bf16", Precision::kF32);
  ASSERT_NE(r, nullptr);
  const auto prompt = Prompt(9);
  const std::vector<float> logits = Logits(*r, prompt);
  const int64_t V = r->config().vocab_size;
  std::vector<float> last(logits.end() - V, logits.end());
  for (double u : {0.01, 0.37, 0.93}) {
    SamplingRow row{.temperature = 0.8f, .top_k = 20, .top_p = 0.9f, .uniform = u};
    std::vector<std::pair<float, int32_t>> scratch;
    std::vector<float> copy = last;
    const int32_t want = SampleRow(row, absl::MakeSpan(copy), &scratch);
    BlockPool pool(r->num_kv_blocks());
    BlockTable table;
    ASSERT_TRUE(table.Reserve(pool, static_cast<int64_t>(prompt.size())).ok());
    RunnerSequence in{.tokens = prompt, .block_table = table.blocks(), .sample = true,
                      .sampling = row, .logprobs = 3};
    StepResult out;
    ASSERT_TRUE(r->Step({&in, 1}, &out).ok());
    EXPECT_EQ(out.seqs[0].token, want) << u;
    ASSERT_EQ(out.seqs[0].top.size(), 3u);
    double total = 0;
    for (int64_t i = 0; i < V; ++i) total += std::exp(static_cast<double>(last[i]) - last[want]);
    EXPECT_NEAR(out.seqs[0].logprob, -std::log(total), 1e-4);
    EXPECT_GE(out.seqs[0].top[0].logprob, out.seqs[0].top[1].logprob);
  }
}

// A vocabulary limit (the tokenizer's size) keeps ids past it from being sampled or listed,
// even where the most likely id lies past it; full logits stay whole.
TEST(RunnerSampling, SampledVocabularyLimit) {
  auto r = Load("v2_lite_bf16", Precision::kF32);
  ASSERT_NE(r, nullptr);
  const auto prompt = Prompt(9);
  const std::vector<float> logits = Logits(*r, prompt);
  const int64_t V = r->config().vocab_size;
  std::vector<float> last(logits.end() - V, logits.end());
  const int64_t best = std::max_element(last.begin(), last.end()) - last.begin();
  ASSERT_GT(best, 0);
  const int64_t limit = best;  // the unrestricted greedy choice lies past the limit
  const int64_t want = std::max_element(last.begin(), last.begin() + limit) - last.begin();
  r->LimitSampledVocabulary(limit);
  double total = 0;
  for (int64_t i = 0; i < limit; ++i) total += std::exp(static_cast<double>(last[i]) - last[want]);
  for (float temperature : {0.0f, 1.0f}) {
    BlockPool pool(r->num_kv_blocks());
    BlockTable table;
    ASSERT_TRUE(table.Reserve(pool, static_cast<int64_t>(prompt.size())).ok());
    RunnerSequence in{.tokens = prompt, .block_table = table.blocks(), .sample = true,
                      .sampling = {.temperature = temperature, .uniform = 0.999},
                      .logprobs = 5, .all_logits = true};
    StepResult out;
    ASSERT_TRUE(r->Step({&in, 1}, &out).ok());
    EXPECT_LT(out.seqs[0].token, limit) << temperature;
    if (temperature == 0.0f) {
      EXPECT_EQ(out.seqs[0].token, want);
      EXPECT_NEAR(out.seqs[0].logprob, -std::log(total), 1e-4);  // normalised over the limit
    }
    for (const TokenLogprob& t : out.seqs[0].top) EXPECT_LT(t.token, limit);
    ASSERT_EQ(static_cast<int64_t>(out.logits.size()), static_cast<int64_t>(prompt.size()) * V);
    EXPECT_EQ(out.logits.back(), last.back());
  }
}

}  // namespace
}  // namespace dsinfer

namespace dsinfer {
namespace {

// The weight bytes a rank holds, from the schema alone (what `dsinfer plan` budgets), against
// the checkpoint's actual tensors: one rank holds every tensor of the layers the program runs.
TEST(StoredBytes, MatchTheCheckpointFiles) {
  const std::string dir = kFixtures + "v3_fp8";
  auto config = LoadModelConfig(dir);
  ASSERT_TRUE(config.ok());
  auto store = WeightStore::Open(dir);
  ASSERT_TRUE(store.ok());
  (*store)->SetFp8BlockSize(config->fp8.block_n, config->fp8.block_k);
  int64_t files = 0;
  for (const std::string& name : (*store)->Names()) {
    // MTP layers (index >= num_hidden_layers) are not part of the program.
    if (name.rfind("model.layers.", 0) == 0 &&
        std::stoll(name.substr(13)) >= config->num_hidden_layers)
      continue;
    files += static_cast<int64_t>((*(*store)->Get(name))->nbytes);
  }
  auto from_store = DeepseekStoredBytes(*config, {}, store->get());
  auto from_config = DeepseekStoredBytes(*config, {}, nullptr);
  ASSERT_TRUE(from_store.ok() && from_config.ok());
  EXPECT_EQ(*from_store, files);
  EXPECT_EQ(*from_config, files);  // the release format the planner assumes
  // Sharded: every rank holds less than one rank does; together (replicated parts counted on
  // each) at least all of it.
  for (const auto& [tp, ep] : {std::pair{2, 1}, std::pair{2, 2}, std::pair{4, 2}}) {
    int64_t sum = 0;
    for (int r = 0; r < tp; ++r) {
      auto b = DeepseekStoredBytes(*config, {.rank = r, .tp = tp, .ep = ep}, store->get());
      ASSERT_TRUE(b.ok()) << b.status();
      EXPECT_LT(*b, files) << tp << "/" << ep << " rank " << r;
      sum += *b;
    }
    EXPECT_GE(sum, files) << tp << "/" << ep;
  }
}

}  // namespace
}  // namespace dsinfer

namespace dsinfer {
namespace {

// The CPU twin of the GPU's FP8 GEMMs at the model level: FP8 activations (per-row 1x128
// blocks) against the exact f32 model. Prints how far DeepSeek's gemm_impl = "fp8" moves the
// logits of a tiny random checkpoint.
TEST(Fp8Activations, TwinOfTheGpuPath) {
  for (Precision p : {Precision::kF32, Precision::kBF16}) {
    auto act = MakeModelRunner({.model_dir = kFixtures + "v3_fp8", .precision = p,
                                .fp8_activations = true, .threads = 2, .num_kv_blocks = 16});
    auto ref = MakeModelRunner({.model_dir = kFixtures + "v3_fp8", .precision = Precision::kF32,
                                .threads = 2, .num_kv_blocks = 16});
    ASSERT_TRUE(act.ok() && ref.ok());
    for (int n : {1, 9, 40}) {
      const double err = RelErr(Logits(**act, Prompt(n)), Logits(**ref, Prompt(n)));
      std::printf("%s fp8 activations, %d tokens: rel err vs f32 %.3g\n", PrecisionName(p), n, err);
      EXPECT_GT(err, 0);
    }
  }
}

}  // namespace
}  // namespace dsinfer
