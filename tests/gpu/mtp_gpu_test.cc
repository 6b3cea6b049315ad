// MTP speculative decoding on the CUDA backend against the CPU backend (label gpu; skips without
// a device): the MTP layer's logits (bf16, FP8 dequantised) within 3e-2 of the float32 golden of
// tools/gen_mtp_fixtures.py; greedy output with MTP on (k = 1 and 3 drafts, batched) identical
// to the CUDA and the CPU bf16 backends with MTP off, with drafts accepted.
#include <cstring>
#include <fstream>

#include "nlohmann/json.hpp"
#include "src/engine/batch_generator.h"
#include "src/kv_cache/block_pool.h"
#include "src/runner/runner_factory.h"
#include "src/weights/safetensors.h"
#include "tests/gpu/gpu_test_util.h"

namespace dsinfer {
namespace {

const std::string kFixtures = std::string(DSINFER_SOURCE_DIR) + "/tests/fixtures/models/";

std::unique_ptr<ModelRunner> Runner(const std::string& name, const std::string& backend,
                                    bool mtp, int32_t k = 1, bool keep_fp8 = true) {
  RunnerOptions o{.model_dir = kFixtures + name,
                  .backend = backend,
                  .precision = Precision::kBF16,
                  .keep_fp8 = keep_fp8,
                  .mtp = mtp,
                  .mtp_draft_tokens = k,
                  // The CPU twin of the GPU's FP8 path where weights stay FP8 (cuda_runner_test).
                  .fp8_activations = backend == "cpu" && keep_fp8 && name == "mtp_v3_fp8",
                  .num_kv_blocks = 64};
  if (backend == "cuda") o.cuda.max_batched_tokens = 512;
  auto r = MakeModelRunner(o);
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? std::move(*r) : nullptr;
}

class MtpGpu : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override { SKIP_WITHOUT_CUDA(); }
};

TEST_P(MtpGpu, MtpLogitsMatchTheGolden) {
  std::ifstream in(kFixtures + GetParam() + "/golden_mtp.json");
  const nlohmann::json j = nlohmann::json::parse(in);
  const auto prompt = j["prompt"].get<std::vector<int32_t>>();
  const auto next = j["next_ids"].get<std::vector<int32_t>>();
  auto file = SafetensorsFile::Open(kFixtures + GetParam() + "/golden_mtp.safetensors");
  ASSERT_TRUE(file.ok()) << file.status();
  const TensorInfo* t = (*file)->Find("mtp_logits");
  ASSERT_NE(t, nullptr);
  std::vector<float> want(t->nbytes / 4);
  std::memcpy(want.data(), t->data, t->nbytes);
  auto gpu = Runner(GetParam(), "cuda", true, 1, /*keep_fp8=*/false);
  ASSERT_NE(gpu, nullptr);
  BlockPool pool(gpu->num_kv_blocks());
  BlockTable table;
  ASSERT_TRUE(table.Reserve(pool, static_cast<int64_t>(prompt.size())).ok());
  RunnerSequence seq{.tokens = prompt, .block_table = table.blocks(), .all_logits = true,
                     .next_token = next.back()};
  StepResult out;
  ASSERT_TRUE(gpu->Step({&seq, 1}, &out).ok());
  const double err = gpu_test::MaxRelErr(out.mtp_logits, want);
  std::printf("[%s] cuda bf16 MTP logits rel err %.3g\n", GetParam().c_str(), err);
  EXPECT_LE(err, 3e-2);
}

TEST_P(MtpGpu, GreedyWithMtpEqualsWithoutAndTheCpu) {
  std::ifstream in(kFixtures + GetParam() + "/golden_mtp.json");
  const nlohmann::json j = nlohmann::json::parse(in);
  std::vector<GenerationRequest> reqs;
  reqs.push_back({.prompt = j["prompt"].get<std::vector<int32_t>>(), .max_tokens = 24,
                  .stop_at_eos = false});
  for (int b = 0; b < 3; ++b) {
    GenerationRequest r{.max_tokens = 20 + 5 * b, .stop_at_eos = false};
    for (int i = 0; i < 5 + 17 * b; ++i) r.prompt.push_back((131 * (b + 1) + 37 * i) % 500 + 2);
    reqs.push_back(r);
  }
  GenerationOptions opts{.prefill_chunk = 16};
  auto cpu = Runner(GetParam(), "cpu", false);
  auto gpu_off = Runner(GetParam(), "cuda", false);
  ASSERT_TRUE(cpu && gpu_off);
  auto want = GenerateOnRunner(*cpu, reqs, opts);
  auto off = GenerateOnRunner(*gpu_off, reqs, opts);
  ASSERT_TRUE(want.ok() && off.ok());
  gpu_off.reset();
  for (int32_t k : {1, 3}) {
    auto gpu = Runner(GetParam(), "cuda", true, k);
    ASSERT_NE(gpu, nullptr);
    GenerationStats st;
    auto got = GenerateOnRunner(*gpu, reqs, opts, &st);
    ASSERT_TRUE(got.ok()) << got.status();
    for (size_t r = 0; r < reqs.size(); ++r) {
      EXPECT_EQ((*got)[r].tokens, (*off)[r].tokens) << "k " << k << " request " << r;
      EXPECT_EQ((*got)[r].tokens, (*want)[r].tokens) << "k " << k << " request " << r;
    }
    std::printf("[%s k=%d] cuda drafts %lld, accepted %lld\n", GetParam().c_str(), k,
                static_cast<long long>(st.draft_tokens),
                static_cast<long long>(st.accepted_tokens));
    EXPECT_GT(st.accepted_tokens, 0) << "k " << k;
    EXPECT_GT(st.drafted_at[k - 1], 0) << "k " << k;
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, MtpGpu, ::testing::Values("mtp_v2_lite", "mtp_v3_fp8"));

}  // namespace
}  // namespace dsinfer
