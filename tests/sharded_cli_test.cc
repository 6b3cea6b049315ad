// The model sharded over local rank processes (--tp / --ep) gives the single-rank result: f32
// logits within 1e-5 (relative to the largest logit) and the same greedy tokens, for both
// DeepSeek families (MTP included), DeepSeek-V4 and the dense distills; bad layouts are refused
// by name; a rank that dies makes the leader fail fast.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "src/distributed/sharded_runner.h"
#include "src/runner/runner_factory.h"
#include "src/kv_cache/block_pool.h"

namespace dsinfer {
namespace {

namespace fs = std::filesystem;
const std::string kFixtures = std::string(DSINFER_SOURCE_DIR) + "/tests/fixtures/models/";

struct Result {
  int code;
  std::string out, err;
};

Result RunCli(const std::string& args) {
  const fs::path err_file =
      fs::temp_directory_path() / absl::StrCat("dsinfer_sharded_err_", getpid());
  FILE* p = popen(absl::StrCat(DSINFER_CLI, " ", args, " 2>", err_file.string()).c_str(), "r");
  Result r;
  char buf[65536];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) r.out.append(buf, n);
  const int status = pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::ifstream e(err_file);
  r.err.assign(std::istreambuf_iterator<char>(e), {});
  fs::remove(err_file);
  return r;
}

std::vector<std::vector<float>> Logits(const std::string& model, const std::string& layout) {
  std::string ids = "1,17,300,42,5,99,250,7,63,128,2";
  // Sparse attention: longer than the fixture's index_topk (24), so every rank's indexer selects.
  if (model == "v32_fp8")
    for (int i = 0; i < 30; ++i) absl::StrAppend(&ids, ",", (37 * i + 11) % 500 + 2);
  // V4: past the sliding window (12) and the CSA layers' top-k (3 entries of 4 tokens each).
  if (model == "v4_tiny")
    for (int i = 0; i < 30; ++i) absl::StrAppend(&ids, ",", (53 * i + 29) % 500 + 2);
  Result r = RunCli(absl::StrCat("logits --model ", kFixtures, model, " --ids ", ids,
                                 " --threads 1 ", layout));
  EXPECT_EQ(r.code, 0) << layout << ": " << r.err;
  if (r.code != 0) return {};
  return nlohmann::json::parse(r.out)["logits"].get<std::vector<std::vector<float>>>();
}

std::vector<int32_t> Greedy(const std::string& model, const std::string& layout) {
  Result r = RunCli(absl::StrCat("generate --model ", kFixtures, model,
                                 " --ids 3,14,15,92,65 --max-tokens 12 --ignore-eos --dtype f32 "
                                 "--threads 1 ",
                                 layout));
  EXPECT_EQ(r.code, 0) << layout << ": " << r.err;
  if (r.code != 0) return {};
  return nlohmann::json::parse(r.out)["ids"].get<std::vector<int32_t>>();
}

// Logits within 1e-5 of one rank's (relative to its largest) and the same greedy tokens.
void ExpectLayoutsMatchOneRank(const std::string& model, const std::vector<std::string>& layouts) {
  const auto want = Logits(model, "");
  ASSERT_FALSE(want.empty());
  float scale = 0;
  for (const auto& row : want)
    for (float v : row) scale = std::max(scale, std::fabs(v));
  const auto want_ids = Greedy(model, "");
  ASSERT_EQ(want_ids.size(), 12u);
  for (const std::string& layout : layouts) {
    const auto got = Logits(model, layout);
    ASSERT_EQ(got.size(), want.size()) << layout;
    float err = 0;
    for (size_t r = 0; r < got.size(); ++r) {
      ASSERT_EQ(got[r].size(), want[r].size());
      for (size_t i = 0; i < got[r].size(); ++i)
        err = std::max(err, std::fabs(got[r][i] - want[r][i]));
    }
    EXPECT_LE(err / scale, 1e-5) << model << " " << layout;
    EXPECT_EQ(Greedy(model, layout), want_ids) << model << " " << layout;
  }
}

// MTP with the MTP layer sharded like the main layers (its MoE over ep ranks): every rank samples
// the same tokens from the gathered logits and drafts the same (k = 1 and 2), so greedy output
// equals one rank's with MTP, and MTP off.
TEST(ShardedMtp, GreedyMatchesOneRank) {
  for (const std::string model : {"mtp_v3_fp8", "mtp_v2_lite"}) {
    const auto off = Greedy(model, "");
    ASSERT_EQ(off.size(), 12u);
    for (const std::string k : {"1", "2"}) {
      const std::string mtp = " --mtp --mtp-draft-tokens " + k;
      for (const std::string layout : {"", "--tp 2", "--tp 2 --ep 2"}) {
        Result r = RunCli(absl::StrCat("generate --model ", kFixtures, model,
                                       " --ids 3,14,15,92,65 --max-tokens 12 --ignore-eos "
                                       "--dtype f32 --threads 1 ",
                                       layout, mtp));
        ASSERT_EQ(r.code, 0) << model << " " << layout << mtp << ": " << r.err;
        const nlohmann::json j = nlohmann::json::parse(r.out);
        EXPECT_EQ(j["ids"].get<std::vector<int32_t>>(), off) << model << " " << layout << mtp;
        EXPECT_GT(j["mtp"]["accepted_tokens"].get<int64_t>(), 0) << model << " " << layout << mtp;
      }
    }
  }
}

class Layouts : public testing::TestWithParam<std::string> {};

TEST_P(Layouts, MatchOneRank) {
  ExpectLayoutsMatchOneRank(GetParam(),
                            {"--tp 2", "--tp 2 --ep 2", "--tp 4 --ep 4", "--tp 4 --ep 2"});
}

INSTANTIATE_TEST_SUITE_P(BothFamilies, Layouts,
                         testing::Values("v2_lite_bf16", "v3_fp8", "v32_fp8"));

// The R1 distills' families: heads and KV heads split (qwen2 6:2 at tp 2), KV heads replicated
// where tp exceeds them (llama 8:2 at tp 4, 4:1 with q/k/v and o biases at tp 2 and 4).
TEST(DenseLayouts, MatchOneRank) {
  ExpectLayoutsMatchOneRank("qwen2_gqa_f32", {"--tp 2"});
  ExpectLayoutsMatchOneRank("llama_gqa_bf16", {"--tp 2", "--tp 4"});
  ExpectLayoutsMatchOneRank("llama_bias_mqa_f32", {"--tp 2", "--tp 4"});
}

TEST(DenseLayouts, BadLayoutsAreRefusedByName) {
  Result r = RunCli("logits --model " + kFixtures + "qwen2_gqa_f32 --ids 1,2 --tp 3");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("num_key_value_heads (2) and tp (3): one must divide the other"),
            std::string::npos)
      << r.err;
  r = RunCli("logits --model " + kFixtures + "qwen2_gqa_f32 --ids 1,2 --tp 4");
  EXPECT_NE(r.err.find("num_attention_heads (6) is not divisible by tp (4)"), std::string::npos)
      << r.err;
  r = RunCli("logits --model " + kFixtures + "llama_gqa_bf16 --ids 1,2 --tp 2 --ep 2");
  EXPECT_NE(r.err.find("ep (2): model_type llama has no routed experts"), std::string::npos)
      << r.err;
}

// DeepSeek-V4 (v4_tiny: 4 heads in 2 output groups, 6 routed experts, hash-routed and top-k
// layers, FP8 attention and FP4 experts): heads, output groups, the shared expert and every
// routed expert's intermediate dim split at tp 2; experts in 2 groups of 3 at tp 2 x ep 2.
// Greedy: 12 decode steps over the replicated window / compressed / indexer cache.
TEST(V4Layouts, MatchOneRank) { ExpectLayoutsMatchOneRank("v4_tiny", {"--tp 2", "--tp 2 --ep 2"}); }

TEST(V4Layouts, BadLayoutsAreRefusedByName) {
  const std::string model = "logits --model " + kFixtures + "v4_tiny --ids 1,2 ";
  Result r = RunCli(model + "--tp 3");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("num_attention_heads (4) is not divisible by tp (3)"), std::string::npos)
      << r.err;
  r = RunCli(model + "--tp 4 --ep 2");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("o_groups (2) is not divisible by tp (4)"), std::string::npos) << r.err;
}

TEST(ShardedCli, BadLayoutsAreRefusedByName) {
  Result r = RunCli("logits --model " + kFixtures + "v3_fp8 --ids 1,2 --tp 3");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("num_attention_heads (4) is not divisible by tp (3)"), std::string::npos)
      << r.err;
  r = RunCli("logits --model " + kFixtures + "v3_fp8 --ids 1,2 --tp 4 --ep 3");
  EXPECT_NE(r.err.find("--ep must divide --tp"), std::string::npos) << r.err;
  r = RunCli("worker --model " + kFixtures + "v3_fp8 --tp 2 --rank 1 --rendezvous nowhere:x");
  EXPECT_NE(r.err.find("neither file:DIR nor grpc:HOST:PORT"), std::string::npos) << r.err;
}

// The leader notices a killed rank within a heartbeat and refuses steps at once after that.
TEST(ShardedRun, ARankThatDiesMakesTheLeaderUnavailableFast) {
  setenv("DSINFER_WORKER_BINARY", DSINFER_CLI, 1);
  const std::string dir = kFixtures + "v2_lite_bf16";
  auto made = MakeModelRunner({.model_dir = dir,
                                .precision = Precision::kF32,
                                .threads = 1,
                                .parallel = {.tp = 2, .ep = 2, .timeout_s = 5},
                                .num_kv_blocks = 4});
  ASSERT_TRUE(made.ok()) << made.status();
  auto* ex = dynamic_cast<ShardedRunner*>(made->get());
  ASSERT_NE(ex, nullptr);
  const std::vector<int32_t> tokens = {1, 2, 3}, table = {0};
  RunnerSequence in{.tokens = tokens, .start_pos = 0, .block_table = table, .sample = true};
  StepResult out;
  ASSERT_TRUE(ex->Step({&in, 1}, &out).ok());
  EXPECT_EQ(ex->tensor_parallel_size(), 2);
  EXPECT_TRUE(ex->Health().ok());
  const auto pids = ex->local_rank_pids();
  ASSERT_EQ(pids.size(), 1u);
  kill(pids[0], SIGKILL);
  const auto t0 = std::chrono::steady_clock::now();
  while (ex->Health().ok() && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(15))
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(ex->Health().code(), absl::StatusCode::kUnavailable);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(8));
  const auto t1 = std::chrono::steady_clock::now();
  absl::Status st = ex->Step({&in, 1}, &out);
  EXPECT_EQ(st.code(), absl::StatusCode::kUnavailable) << st;
  EXPECT_NE(st.message().find("ranks are no longer complete"), std::string::npos) << st;
  EXPECT_LT(std::chrono::steady_clock::now() - t1, std::chrono::milliseconds(100));
}

}  // namespace
}  // namespace dsinfer
