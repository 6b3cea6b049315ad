// End to end on the GPU: the one model program on the CUDA backend against the CPU backend.
// - Fixtures (tests/fixtures/models, small latent widths: generic attention kernel in f32):
//   logits within 3e-2 relative (max |got - want| / max |want|) of the CPU f32 backend and of
//   the golden HF logits; greedy continuations identical to the CPU bf16 backend (16 tokens);
//   batched prefill/decode and chunked prefill identical to the CPU bf16 backend. The same for
//   the families of issue 15: deepseek_v32 (indexer + sparse MLA) and qwen2 / llama (GQA).
// - Synthetic models with DeepSeek's real latent layout (kv_lora 512, rope 64: tensor-core
//   attention kernel, bf16 query/probabilities): prompt and decode-step logits within 3e-2 of the
//   CPU f32 backend, batch of mixed lengths included.
// Without a GPU only NoDeviceIsAClearError runs (it checks the error path).
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "src/backend_cuda/cuda_ops.h"
#include "src/engine/batch_generator.h"
#include "src/kv_cache/block_pool.h"
#include "src/runner/runner_factory.h"
#include "src/weights/fp8_block.h"
#include "src/weights/safetensors.h"
#include "src/weights/safetensors_writer.h"
#include "tests/gpu/gpu_test_util.h"

namespace dsinfer {
namespace {

const std::string kFixtures = std::string(DSINFER_SOURCE_DIR) + "/tests/fixtures/models/";

using gpu_test::MaxRelErr;

struct Golden {
  std::vector<std::vector<int32_t>> prompts;
  std::vector<std::vector<float>> logits;
};

Golden LoadGolden(const std::string& name) {
  Golden g;
  std::ifstream in(kFixtures + name + "/golden.json");
  nlohmann::json j = nlohmann::json::parse(in);
  g.prompts = j["prompts"].get<std::vector<std::vector<int32_t>>>();
  auto file = SafetensorsFile::Open(kFixtures + name + "/golden.safetensors");
  EXPECT_TRUE(file.ok()) << file.status();
  for (size_t i = 0; i < g.prompts.size(); ++i) {
    const TensorInfo* t = (*file)->Find("logits." + std::to_string(i));
    std::vector<float> v(t->nbytes / 4);
    std::memcpy(v.data(), t->data, t->nbytes);
    g.logits.push_back(std::move(v));
  }
  return g;
}

std::unique_ptr<ModelRunner> Gpu(const std::string& dir, CudaRunnerOptions o = {},
                                 bool keep_fp8 = true) {
  // Small KV cache and workspaces: tests create several runners.
  if (o.max_batched_tokens == CudaRunnerOptions{}.max_batched_tokens) o.max_batched_tokens = 512;
  auto r = MakeModelRunner({.model_dir = dir, .backend = "cuda", .precision = Precision::kBF16,
                            .keep_fp8 = keep_fp8, .num_kv_blocks = 256, .cuda = o});
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? std::move(*r) : nullptr;
}

// The CPU reference. For a checkpoint with FP8 weights, by default the twin of the GPU's FP8
// path: FP8 activations (DeepSeek's gemm_impl = "fp8"), which the GPU runs where it keeps
// weights FP8 (the dequantised model is compared with fp8_activations = false).
bool Fp8Checkpoint(const std::string& dir) {
  auto c = LoadModelConfig(dir);
  return c.ok() && c->fp8.enabled;
}

std::unique_ptr<ModelRunner> Cpu(const std::string& dir, Precision p, bool fp8_twin = true) {
  auto r = MakeModelRunner({.model_dir = dir, .precision = p,
                            .fp8_activations = fp8_twin && Fp8Checkpoint(dir),
                            .num_kv_blocks = 64});
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? std::move(*r) : nullptr;
}

// Logits of every listed sequence's new tokens (all_logits), in order.
std::vector<float> StepLogits(ModelRunner& r, std::vector<RunnerSequence> seqs) {
  for (RunnerSequence& s : seqs) s.all_logits = true;
  StepResult out;
  const absl::Status st = r.Step(seqs, &out);
  EXPECT_TRUE(st.ok()) << st;
  return out.logits;
}

std::vector<float> PromptLogits(ModelRunner& r, const std::vector<int32_t>& prompt) {
  const int64_t n = static_cast<int64_t>(prompt.size());
  BlockPool pool(r.num_kv_blocks());
  BlockTable table;
  EXPECT_TRUE(table.Reserve(pool, n).ok());
  return StepLogits(r, {{.tokens = prompt, .block_table = table.blocks()}});
}

GenerationRequest Greedy(const std::vector<int32_t>& prompt, int64_t n) {
  GenerationRequest r;
  r.prompt = prompt;
  r.max_tokens = n;
  r.stop_at_eos = false;
  return r;
}

TEST(CudaRunner, NoDeviceIsAClearError) {
  if (gpu_test::HasCudaDevice()) GTEST_SKIP() << "a CUDA device is present";
  auto ex = MakeModelRunner(
      {.model_dir = kFixtures + "v2_lite_bf16", .backend = "cuda", .num_kv_blocks = 4});
  ASSERT_FALSE(ex.ok());
  EXPECT_EQ(ex.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(ex.status().message().find("no CUDA device"), std::string::npos) << ex.status();
}

class CudaFixtureTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override { SKIP_WITHOUT_CUDA(); }
  std::string dir() const { return kFixtures + GetParam(); }
};

// The dequantised model (every checkpoint's weights in bf16) against the CPU f32 backend and
// the golden logits; and, for an FP8 checkpoint, FP8 kept on the GPU against its CPU twin.
TEST_P(CudaFixtureTest, LogitsMatchCpuF32AndGolden) {
  const Golden g = LoadGolden(GetParam());
  auto cpu = Cpu(dir(), Precision::kF32, /*fp8_twin=*/false);
  auto gpu = Gpu(dir(), {}, /*keep_fp8=*/false);
  CudaRunnerOptions split;
  split.attention_split_tokens = 64;  // split-KV and the combine kernel on every prompt
  auto gpu_split = Gpu(dir(), split, false);
  const bool fp8 = Fp8Checkpoint(dir());
  auto twin = fp8 ? Cpu(dir(), Precision::kF32) : nullptr;
  auto twin_bf16 = fp8 ? Cpu(dir(), Precision::kBF16) : nullptr;
  auto gpu_fp8 = fp8 ? Gpu(dir()) : nullptr;
  ASSERT_TRUE(cpu && gpu && gpu_split && (!fp8 || (twin && twin_bf16 && gpu_fp8)));
  for (size_t i = 0; i < g.prompts.size(); ++i) {
    const auto want = PromptLogits(*cpu, g.prompts[i]);
    const auto got = PromptLogits(*gpu, g.prompts[i]);
    const double err = MaxRelErr(got, want), err_golden = MaxRelErr(got, g.logits[i]);
    const double err_split = MaxRelErr(PromptLogits(*gpu_split, g.prompts[i]), want);
    EXPECT_LE(err, 3e-2) << "prompt " << i;
    EXPECT_LE(err_golden, 3e-2) << "prompt " << i;
    EXPECT_LE(err_split, 3e-2) << "prompt " << i;
    std::printf("[%s] prompt %zu (len %zu): rel err vs CPU f32 %.3g, vs golden %.3g, split %.3g\n",
                GetParam().c_str(), i, g.prompts[i].size(), err, err_golden, err_split);
    if (fp8) {
      // FP8 activations round every GEMM input to 3 mantissa bits, so the last bf16 bit of an
      // input can move a code by a whole step: the CPU twin itself moves that far between its
      // f32 and bf16 runs on this tiny random model (0.05-0.3). The GPU (bf16 inputs) must stay
      // within that sensitivity of its bf16 twin; a kernel bug moves logits far more. Greedy
      // tokens are held to the twin exactly (GreedyMatchesCpuBf16).
      const auto t32 = PromptLogits(*twin, g.prompts[i]);
      const auto t16 = PromptLogits(*twin_bf16, g.prompts[i]);
      const double e = MaxRelErr(PromptLogits(*gpu_fp8, g.prompts[i]), t16);
      const double base = MaxRelErr(t16, t32);
      EXPECT_LE(e, 1.5 * base + 3e-2) << "FP8 kept, prompt " << i;
      std::printf("[%s] prompt %zu: FP8 kept vs its CPU bf16 twin: rel err %.3g (twin bf16 vs "
                  "f32: %.3g)\n",
                  GetParam().c_str(), i, e, base);
    }
  }
}

TEST_P(CudaFixtureTest, GreedyMatchesCpuBf16) {
  const Golden g = LoadGolden(GetParam());
  auto cpu = Cpu(dir(), Precision::kBF16);
  auto gpu = Gpu(dir());
  ASSERT_TRUE(cpu && gpu);
  for (size_t i = 0; i < g.prompts.size(); ++i) {
    GenerationRequest r = Greedy(g.prompts[i], 16);
    auto want = GenerateOnRunner(*cpu, {&r, 1});
    auto got = GenerateOnRunner(*gpu, {&r, 1});
    ASSERT_TRUE(want.ok() && got.ok()) << want.status() << got.status();
    ASSERT_EQ((*got)[0].tokens.size(), 16u);
    ASSERT_EQ((*want)[0].tokens.size(), 16u);
    // The GPU sums in another order than the CPU (cuBLAS tiles, tensor-core MMAs), so bf16
    // roundings differ and a near tie between the top two logits can flip late in a greedy run,
    // after which the runs legitimately diverge. The project's bar is 12+ identical tokens.
    constexpr size_t kMustMatch = 12;
    const std::vector<int32_t> got12((*got)[0].tokens.begin(),
                                     (*got)[0].tokens.begin() + kMustMatch);
    const std::vector<int32_t> want12((*want)[0].tokens.begin(),
                                      (*want)[0].tokens.begin() + kMustMatch);
    EXPECT_EQ(got12, want12) << "prompt " << i;
  }
}

// All prompts prefilled in one step and decoded together (plus a duplicate that stops early), and
// a chunked prefill: the same tokens as the CPU bf16 backend in the same schedule.
TEST_P(CudaFixtureTest, BatchedAndChunkedMatchCpuBf16) {
  const Golden g = LoadGolden(GetParam());
  auto cpu = Cpu(dir(), Precision::kBF16);
  auto gpu = Gpu(dir());
  ASSERT_TRUE(cpu && gpu);
  std::vector<GenerationRequest> reqs;
  for (const auto& p : g.prompts) reqs.push_back(Greedy(p, 14));
  reqs.push_back(Greedy(g.prompts.back(), 5));
  auto want = GenerateOnRunner(*cpu, reqs, {.batch_prefill = true});
  auto got = GenerateOnRunner(*gpu, reqs, {.batch_prefill = true});
  ASSERT_TRUE(want.ok() && got.ok());
  for (size_t i = 0; i < reqs.size(); ++i)
    EXPECT_EQ((*got)[i].tokens, (*want)[i].tokens) << "request " << i;

  GenerationRequest r = Greedy(g.prompts.back(), 12);
  auto want_c = GenerateOnRunner(*cpu, {&r, 1}, {.prefill_chunk = 17});
  auto got_c = GenerateOnRunner(*gpu, {&r, 1}, {.prefill_chunk = 17});
  ASSERT_TRUE(want_c.ok() && got_c.ok());
  EXPECT_EQ((*got_c)[0].tokens, (*want_c)[0].tokens);
}

TEST_P(CudaFixtureTest, ExpertLoadAndBadInput) {
  auto gpu = Gpu(dir());
  ASSERT_TRUE(gpu);
  const ModelConfig& c = gpu->config();
  const std::vector<int32_t> prompt = {3, 5, 7, 11, 13, 17, 19};
  PromptLogits(*gpu, prompt);
  const ExpertLoad& load = gpu->expert_load();
  // (Dense families route nothing and keep no counters.)
  for (int64_t l = 0; c.n_routed_experts > 0 && l < c.num_hidden_layers; ++l) {
    int64_t sum = 0;
    for (int64_t n : load.tokens[l]) sum += n;
    EXPECT_EQ(sum, c.IsMoeLayer(l) ? 7 * c.num_experts_per_tok : 0) << "layer " << l;
  }
  BlockPool pool(gpu->num_kv_blocks());
  BlockTable table;
  ASSERT_TRUE(table.Reserve(pool, 70).ok());
  StepResult out;
  std::vector<int32_t> bad_token = {5, 100000};
  RunnerSequence in{.tokens = bad_token, .block_table = table.blocks()};
  EXPECT_EQ(gpu->Step({&in, 1}, &out).code(), absl::StatusCode::kInvalidArgument);
  std::vector<int32_t> too_long(200, 3);
  in = {.tokens = too_long, .block_table = table.blocks()};
  EXPECT_EQ(gpu->Step({&in, 1}, &out).code(), absl::StatusCode::kInvalidArgument);
}

// Decode steps replayed from CUDA graphs (one per batch size, the plan changing every step) give
// the logits of eager execution.
TEST_P(CudaFixtureTest, GraphReplayMatchesEager) {
  CudaRunnerOptions eager_opts;
  eager_opts.cuda_graphs = false;
  auto graphs = Gpu(dir());
  auto eager = Gpu(dir(), eager_opts);
  ASSERT_TRUE(graphs && eager);
  // Batch sizes 1 and 2 captured before any request (as the server does at start-up).
  ASSERT_TRUE(graphs->WarmUp(2).ok());
  const Golden g = LoadGolden(GetParam());
  const int S = static_cast<int>(g.prompts.size());
  const int64_t V = graphs->config().vocab_size;
  BlockPool pool_g(graphs->num_kv_blocks()), pool_e(eager->num_kv_blocks());
  std::vector<BlockTable> tg(S), te(S);
  std::vector<int64_t> pos(S);
  std::vector<float> lg, le;
  for (int i = 0; i < S; ++i) {
    const int64_t n = static_cast<int64_t>(g.prompts[i].size());
    ASSERT_TRUE(tg[i].Reserve(pool_g, n + 40).ok() && te[i].Reserve(pool_e, n + 40).ok());
    lg = StepLogits(*graphs, {{.tokens = g.prompts[i], .block_table = tg[i].blocks()}});
    le = StepLogits(*eager, {{.tokens = g.prompts[i], .block_table = te[i].blocks()}});
    ASSERT_FALSE(lg.empty() || le.empty());
    pos[i] = n;
  }
  for (int step = 0; step < 40; ++step) {
    // Batches of 3, 2 and 1 sequences (sequence 0 always in): graphs are captured, then
    // replayed with other plans.
    std::vector<int32_t> next(S);
    std::vector<RunnerSequence> a, b;
    for (int i = 0; i < S; ++i) {
      if (i > 0 && ((step + i) % 4 == 3 || step % 5 == 4)) continue;
      next[i] = static_cast<int32_t>((step * 13 + i * 5 + 2) % V);
      const auto tok = absl::MakeConstSpan(&next[i], 1);
      a.push_back({.tokens = tok, .start_pos = pos[i], .block_table = tg[i].blocks()});
      b.push_back({.tokens = tok, .start_pos = pos[i], .block_table = te[i].blocks()});
      ++pos[i];
    }
    lg = StepLogits(*graphs, a);
    le = StepLogits(*eager, b);
    EXPECT_LE(MaxRelErr(lg, le), 1e-6) << "step " << step;
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, CudaFixtureTest,
                         ::testing::Values("v2_lite_bf16", "v3_fp8", "v2_group_f16"));
// DeepSeek-V3.2 (indexer and sparse MLA: prompts of 70 tokens select 24 of their keys) and the
// dense distills' GQA families (qwen2 with q/k/v biases, llama with llama3 rope scaling).
INSTANTIATE_TEST_SUITE_P(Families, CudaFixtureTest,
                         ::testing::Values("v32_fp8", "qwen2_gqa_f32", "llama_gqa_bf16"));

// ---- Synthetic models with the 512 + 64 latent layout. ----

struct SyntheticSpec {
  const char* name;
  bool v3;  // V3 style (q-LoRA, sigmoid noaux_tc routing) else V2-Lite style
  int64_t heads;
  bool fp8 = false;  // layer projections stored FP8 e4m3 with 128x128 block scales (V3's release)
};
std::ostream& operator<<(std::ostream& os, const SyntheticSpec& s) { return os << s.name; }

// Writes config.json and model.safetensors (bf16 matrices, f32 norms) into dir.
void WriteSynthetic(const SyntheticSpec& s, const std::string& dir) {
  const int64_t V = 512, D = 256, I = 512, MI = 64, L = 2, H = s.heads, E = 16, K = 4;
  const int64_t kvl = 512, rope = 64, nope = 128, vd = 128, qk = nope + rope, ql = 192;
  std::ifstream in(kFixtures + "v2_lite_bf16/config.json");
  nlohmann::json cfg = nlohmann::json::parse(in);
  cfg["hidden_size"] = D;
  cfg["intermediate_size"] = I;
  cfg["moe_intermediate_size"] = MI;
  cfg["num_hidden_layers"] = L;
  cfg["num_attention_heads"] = H;
  cfg["num_key_value_heads"] = H;
  cfg["kv_lora_rank"] = kvl;
  cfg["qk_rope_head_dim"] = rope;
  cfg["qk_nope_head_dim"] = nope;
  cfg["v_head_dim"] = vd;
  cfg["n_routed_experts"] = E;
  cfg["num_experts_per_tok"] = K;
  cfg["n_shared_experts"] = 1;
  cfg["vocab_size"] = V;
  cfg["max_position_embeddings"] = 16384;
  cfg["rope_scaling"]["original_max_position_embeddings"] = 4096;
  cfg["rope_scaling"]["factor"] = 4;
  if (s.v3) {
    cfg["model_type"] = "deepseek_v3";
    cfg["architectures"] = {"DeepseekV3ForCausalLM"};
    cfg["q_lora_rank"] = ql;
    cfg["scoring_func"] = "sigmoid";
    cfg["topk_method"] = "noaux_tc";
    cfg["n_group"] = 4;
    cfg["topk_group"] = 2;
    cfg["norm_topk_prob"] = true;
    cfg["routed_scaling_factor"] = 2.5;
  }
  if (s.fp8) {
    cfg["quantization_config"] = {{"activation_scheme", "dynamic"}, {"fmt", "e4m3"},
                                  {"quant_method", "fp8"}, {"weight_block_size", {128, 128}}};
  }
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/config.json") << cfg.dump(2);

  std::mt19937_64 rng(s.v3 ? 7 : 5);
  std::vector<TensorToWrite> ts;
  auto mat = [&](const std::string& name, int64_t rows, int64_t cols, float a) {
    std::uniform_real_distribution<float> d(-a, a);
    std::vector<float> v(rows * cols);
    for (float& x : v) x = d(rng);
    ts.push_back({name, DType::kBF16, {rows, cols}, Bf16Bytes(v)});
  };
  auto lin = [&](const std::string& name, int64_t out, int64_t in_dim) {
    const float a = std::sqrt(3.0f / static_cast<float>(in_dim));
    const bool proj = name.rfind("model.layers.", 0) == 0 &&
                      name.find("_proj") != std::string::npos;
    if (!s.fp8 || !proj) return mat(name, out, in_dim, a);
    std::uniform_real_distribution<float> d(-a, a);
    std::vector<float> v(out * in_dim);
    for (float& x : v) x = d(rng);
    Fp8BlockQuantized q = QuantizeFp8Blockwise(v.data(), out, in_dim);
    ts.push_back({name, DType::kF8E4M3, {out, in_dim}, q.codes});
    const std::string scale = name.substr(0, name.size() - std::string(".weight").size()) +
                              ".weight_scale_inv";
    ts.push_back({scale, DType::kF32, {q.scale_rows, q.scale_cols}, F32Bytes(q.scale_inv)});
  };
  auto vec = [&](const std::string& name, int64_t n, float center, float a) {
    std::uniform_real_distribution<float> d(center - a, center + a);
    std::vector<float> v(n);
    for (float& x : v) x = d(rng);
    ts.push_back({name, DType::kF32, {n}, F32Bytes(v)});
  };
  auto mlp = [&](const std::string& p, int64_t inter) {
    lin(p + "gate_proj.weight", inter, D);
    lin(p + "up_proj.weight", inter, D);
    lin(p + "down_proj.weight", D, inter);
  };
  mat("model.embed_tokens.weight", V, D, 1.0f);
  for (int64_t l = 0; l < L; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    vec(p + "input_layernorm.weight", D, 1.0f, 0.1f);
    vec(p + "post_attention_layernorm.weight", D, 1.0f, 0.1f);
    const std::string a = p + "self_attn.";
    if (s.v3) {
      lin(a + "q_a_proj.weight", ql, D);
      vec(a + "q_a_layernorm.weight", ql, 1.0f, 0.1f);
      lin(a + "q_b_proj.weight", H * qk, ql);
    } else {
      lin(a + "q_proj.weight", H * qk, D);
    }
    lin(a + "kv_a_proj_with_mqa.weight", kvl + rope, D);
    vec(a + "kv_a_layernorm.weight", kvl, 1.0f, 0.1f);
    lin(a + "kv_b_proj.weight", H * (nope + vd), kvl);
    lin(a + "o_proj.weight", D, H * vd);
    if (l == 0) {
      mlp(p + "mlp.", I);
    } else {
      lin(p + "mlp.gate.weight", E, D);
      if (s.v3) vec(p + "mlp.gate.e_score_correction_bias", E, 0.0f, 0.05f);
      for (int64_t e = 0; e < E; ++e) mlp(p + "mlp.experts." + std::to_string(e) + ".", MI);
      mlp(p + "mlp.shared_experts.", MI);
    }
  }
  vec("model.norm.weight", D, 1.0f, 0.1f);
  lin("lm_head.weight", V, D);
  const absl::Status st = WriteSafetensors(dir + "/model.safetensors", ts);
  ASSERT_TRUE(st.ok()) << st;
}

class CudaSyntheticTest : public ::testing::TestWithParam<SyntheticSpec> {};

// A prompt, then decode steps of a batch of three sequences of different lengths: every step's
// logits within 3e-2 of the CPU f32 backend fed the same tokens.
TEST_P(CudaSyntheticTest, TensorCorePathMatchesCpuF32) {
  SKIP_WITHOUT_CUDA();
  const SyntheticSpec& s = GetParam();
  const std::string dir =
      (std::filesystem::temp_directory_path() /
       (std::string("dsinfer_gpu_") + s.name + "_" + std::to_string(::getpid())))
          .string();
  WriteSynthetic(s, dir);
  auto cpu = Cpu(dir, Precision::kF32);
  auto gpu = Gpu(dir);
  CudaRunnerOptions eager_opts;
  eager_opts.cuda_graphs = false;
  auto eager = Gpu(dir, eager_opts);
  ASSERT_TRUE(cpu && gpu && eager);
  const int64_t V = 512;
  const std::vector<int64_t> lens = {150, 70, 301};
  const int S = static_cast<int>(lens.size());
  BlockPool gpool(gpu->num_kv_blocks()), epool(eager->num_kv_blocks()), cpool(64);
  std::vector<BlockTable> gt(S), et(S), ct(S);
  std::vector<std::vector<int32_t>> toks(S);
  for (int i = 0; i < S; ++i) {
    for (int64_t t = 0; t < lens[i]; ++t)
      toks[i].push_back(static_cast<int32_t>((t * 97 + 13 * i + 5) % V));
    ASSERT_TRUE(gt[i].Reserve(gpool, lens[i] + 4).ok());
    ASSERT_TRUE(et[i].Reserve(epool, lens[i] + 4).ok());
    ASSERT_TRUE(ct[i].Reserve(cpool, lens[i] + 4).ok());
  }
  // Prefill each sequence (all logits), compare row by row. The bf16 recipe (the GPU's and the
  // CPU bf16 backend's) moves a few isolated prompt rows well past 3e-2 of f32: a near tie in the
  // last layer's expert routing flips for that token only (measured on the CPU bf16 backend on
  // these very prompts: v2lite_h16 rows up to 0.08, v3_h64 len 301 one row at 0.54, every other
  // row < 1e-2). So the bar is per row: nearly every row within 3e-2, and no more outlier rows
  // than a flip per ~20 tokens allows; an attention bug (causal limit, row order, combine) moves
  // most rows. The CPU bf16 backend's own numbers are printed as the baseline.
  auto cpu_bf16 = Cpu(dir, Precision::kBF16);
  ASSERT_TRUE(cpu_bf16);
  BlockPool bpool(64);
  std::vector<BlockTable> bt(S);
  for (int i = 0; i < S; ++i) ASSERT_TRUE(bt[i].Reserve(bpool, lens[i] + 4).ok());
  auto row_errs = [&](const std::vector<float>& got, const std::vector<float>& want, int64_t rows) {
    std::vector<double> e(static_cast<size_t>(rows), INFINITY);
    if (got.size() != want.size() || static_cast<int64_t>(want.size()) != rows * V) return e;
    for (int64_t r = 0; r < rows; ++r)
      e[r] = MaxRelErr(std::vector<float>(got.begin() + r * V, got.begin() + (r + 1) * V),
                       std::vector<float>(want.begin() + r * V, want.begin() + (r + 1) * V));
    return e;
  };
  for (int i = 0; i < S; ++i) {
    const std::vector<float> want =
        StepLogits(*cpu, {{.tokens = toks[i], .block_table = ct[i].blocks()}});
    const std::vector<float> want_bf16 =
        StepLogits(*cpu_bf16, {{.tokens = toks[i], .block_table = bt[i].blocks()}});
    const std::vector<float> got =
        StepLogits(*gpu, {{.tokens = toks[i], .block_table = gt[i].blocks()}});
    ASSERT_FALSE(StepLogits(*eager, {{.tokens = toks[i], .block_table = et[i].blocks()}}).empty());
    if (s.fp8) {
      // FP8 activations (see LogitsMatchCpuF32AndGolden): the GPU against its bf16 twin, within
      // the twin's own f32-vs-bf16 sensitivity, row by row.
      std::vector<double> eg = row_errs(got, want_bf16, lens[i]);
      std::vector<double> eb = row_errs(want_bf16, want, lens[i]);
      std::sort(eg.begin(), eg.end());
      std::sort(eb.begin(), eb.end());
      const double mg = eg[eg.size() / 2], mb = eb[eb.size() / 2];
      EXPECT_LE(mg, 1.5 * mb + 1e-2) << "prefill " << i << ": median row";
      EXPECT_LE(eg.back(), 1.5 * eb.back() + 3e-2) << "prefill " << i << ": worst row";
      std::printf("[%s] prefill %d (len %ld): vs CPU bf16 twin: median row %.3g, worst %.3g; "
                  "twin bf16 vs f32: median %.3g, worst %.3g\n",
                  s.name, i, lens[i], mg, eg.back(), mb, eb.back());
      continue;
    }
    const std::vector<double> e = row_errs(got, want, lens[i]);
    const std::vector<double> eb = row_errs(want_bf16, want, lens[i]);
    const int64_t bad = std::count_if(e.begin(), e.end(), [](double x) { return !(x <= 3e-2); });
    const int64_t bad_bf16 =
        std::count_if(eb.begin(), eb.end(), [](double x) { return !(x <= 3e-2); });
    std::vector<double> sorted = e;
    std::sort(sorted.begin(), sorted.end());
    const double median = sorted[sorted.size() / 2];
    const int64_t allowed = std::max<int64_t>(3, lens[i] / 20);
    EXPECT_LE(bad, allowed) << "prefill " << i << ": rows over 3e-2 of CPU f32";
    EXPECT_LE(median, 1e-2) << "prefill " << i;
    std::printf(
        "[%s] prefill %d (len %ld): rel err %.3g (median row %.3g, %ld rows > 3e-2); CPU bf16 "
        "baseline %.3g (%ld rows > 3e-2); vs CPU bf16 %.3g\n",
        s.name, i, lens[i], MaxRelErr(got, want), median, bad, MaxRelErr(want_bf16, want),
        bad_bf16, MaxRelErr(got, want_bf16));
  }
  // Three batched decode steps (the first captures a CUDA graph, the others replay it).
  for (int step = 0; step < 3; ++step) {
    std::vector<int32_t> next(S);
    std::vector<RunnerSequence> gin, ein, cin, bin;
    for (int i = 0; i < S; ++i) {
      next[i] = static_cast<int32_t>((step * 31 + i * 7 + 1) % V);
      const int64_t pos = lens[i] + step;
      const auto tok = absl::MakeConstSpan(&next[i], 1);
      gin.push_back({.tokens = tok, .start_pos = pos, .block_table = gt[i].blocks()});
      ein.push_back({.tokens = tok, .start_pos = pos, .block_table = et[i].blocks()});
      cin.push_back({.tokens = tok, .start_pos = pos, .block_table = ct[i].blocks()});
      bin.push_back({.tokens = tok, .start_pos = pos, .block_table = bt[i].blocks()});
    }
    const std::vector<float> want = StepLogits(*cpu, cin);
    const std::vector<float> want_bf16 = StepLogits(*cpu_bf16, bin);
    const std::vector<float> got = StepLogits(*gpu, gin);
    const std::vector<float> got_eager = StepLogits(*eager, ein);
    const double err = MaxRelErr(got, want);
    if (s.fp8) {
      const double e = MaxRelErr(got, want_bf16), base = MaxRelErr(want_bf16, want);
      EXPECT_LE(e, 1.5 * base + 3e-2) << "decode step " << step;
      std::printf("[%s] decode step %d: vs CPU bf16 twin %.3g (twin bf16 vs f32 %.3g)\n", s.name,
                  step, e, base);
    } else {
      EXPECT_LE(err, 3e-2) << "decode step " << step;
    }
    EXPECT_LE(MaxRelErr(got, got_eager), 1e-6) << "graph replay vs eager, step " << step;
    std::printf("[%s] decode step %d (batch %d): rel err %.3g\n", s.name, step, S, err);
  }
  std::filesystem::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(Models, CudaSyntheticTest,
                         ::testing::Values(SyntheticSpec{"v2lite_h16", false, 16},
                                           SyntheticSpec{"v3_h64", true, 64},
                                           // FP8 weights kept FP8 on the GPU (act-quant GEMMs).
                                           SyntheticSpec{"v3_fp8_h64", true, 64, true}));

// Sampling runs where the logits are: the GPU's token for a row equals the CPU twin's choice
// over the same logits and draw (exact for top_k <= 1024), and its logprobs match the CPU twin.
TEST(CudaRunner, SamplingAndLogprobsOnTheGpuMatchTheCpuTwin) {
  SKIP_WITHOUT_CUDA();
  auto gpu = Gpu(kFixtures + "v2_lite_bf16");
  ASSERT_TRUE(gpu);
  const int64_t V = gpu->config().vocab_size;
  const std::vector<int32_t> prompt = {3, 14, 15, 92, 65, 35, 89};
  for (double u : {0.02, 0.5, 0.97}) {
    BlockPool pool(gpu->num_kv_blocks());
    BlockTable table;
    ASSERT_TRUE(table.Reserve(pool, static_cast<int64_t>(prompt.size())).ok());
    const std::vector<int32_t> seen = {14, 92};
    const std::vector<int32_t> counts = {1, 0};
    SamplingRow row{.temperature = 0.7f, .top_k = 40, .top_p = 0.95f,
                    .repetition_penalty = 1.3f, .frequency_penalty = 0.5f, .uniform = u,
                    .penalty_tokens = seen, .penalty_counts = counts};
    RunnerSequence in{.tokens = prompt, .block_table = table.blocks(), .sample = true,
                      .sampling = row, .logprobs = 5, .all_logits = true};
    StepResult out;
    ASSERT_TRUE(gpu->Step({&in, 1}, &out).ok());
    std::vector<float> last(out.logits.end() - V, out.logits.end());
    std::vector<float> copy = last;
    std::vector<std::pair<float, int32_t>> scratch;
    EXPECT_EQ(out.seqs[0].token, SampleRow(row, absl::MakeSpan(copy), &scratch)) << u;
    double mx = *std::max_element(last.begin(), last.end()), sum = 0;
    for (float x : last) sum += std::exp(static_cast<double>(x) - mx);
    const double want = last[out.seqs[0].token] - (mx + std::log(sum));
    EXPECT_NEAR(out.seqs[0].logprob, want, 1e-4);
    ASSERT_EQ(out.seqs[0].top.size(), 5u);
    EXPECT_EQ(out.seqs[0].top[0].token,
              static_cast<int32_t>(std::max_element(last.begin(), last.end()) - last.begin()));
  }
}

// The same program sharded: tp 2 and tp 2 / ep 2 with the ranks sharing this one GPU (Gloo
// collectives, host-staged) against one rank, through the CLI as users run it.
struct CliResult {
  int code;
  std::string out, err;
};

CliResult RunCli(const std::string& args) {
  const std::string err_file =
      (std::filesystem::temp_directory_path() / absl::StrCat("dsinfer_gpu_cli_", getpid()))
          .string();
  FILE* p = popen(absl::StrCat(DSINFER_CLI, " ", args, " 2>", err_file).c_str(), "r");
  CliResult r;
  char buf[65536];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) r.out.append(buf, n);
  const int status = pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::ifstream e(err_file);
  r.err.assign(std::istreambuf_iterator<char>(e), {});
  std::filesystem::remove(err_file);
  return r;
}

class CudaShardedTest : public ::testing::TestWithParam<std::string> {};

TEST_P(CudaShardedTest, RanksSharingOneGpuMatchOneRank) {
  SKIP_WITHOUT_CUDA();
  setenv("DSINFER_WORKER_BINARY", DSINFER_CLI, 1);
  // The fixture's tensor-parallel slices do not start on 128-row FP8 blocks, so sharded ranks
  // would mix FP8 and dequantised GEMMs: the FP8 checkpoint is compared dequantised.
  const std::string model = kFixtures + GetParam() +
                            (GetParam() == "v3_fp8" ? " --dequantize-fp8" : "");
  auto logits = [&](const std::string& layout) {
    CliResult r = RunCli(absl::StrCat("logits --device cuda --model ", model,
                                      " --ids 1,17,300,42,5,99,250,7,63,128,2 ", layout));
    EXPECT_EQ(r.code, 0) << layout << ": " << r.err;
    return r.code == 0 ? nlohmann::json::parse(r.out)["logits"].get<std::vector<std::vector<float>>>()
                       : std::vector<std::vector<float>>{};
  };
  auto greedy = [&](const std::string& layout) {
    CliResult r = RunCli(absl::StrCat("generate --device cuda --model ", model,
                                      " --ids 3,14,15,92,65 --max-tokens 12 --ignore-eos ", layout));
    EXPECT_EQ(r.code, 0) << layout << ": " << r.err;
    return r.code == 0 ? nlohmann::json::parse(r.out)["ids"].get<std::vector<int32_t>>()
                       : std::vector<int32_t>{};
  };
  const auto want = logits("");
  ASSERT_FALSE(want.empty());
  const auto want_ids = greedy("");
  ASSERT_EQ(want_ids.size(), 12u);
  for (const std::string layout : {"--tp 2", "--tp 2 --ep 2"}) {
    const auto got = logits(layout);
    ASSERT_EQ(got.size(), want.size()) << layout;
    std::vector<float> a, b;
    for (size_t r = 0; r < got.size(); ++r) {
      a.insert(a.end(), got[r].begin(), got[r].end());
      b.insert(b.end(), want[r].begin(), want[r].end());
    }
    const double err = MaxRelErr(a, b);
    std::printf("[%s] %s vs one rank: rel err %.3g\n", GetParam().c_str(), layout.c_str(), err);
    EXPECT_LE(err, 3e-2) << layout;
    EXPECT_EQ(greedy(layout), want_ids) << layout;
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, CudaShardedTest, ::testing::Values("v2_lite_bf16", "v3_fp8"));

}  // namespace
}  // namespace dsinfer
