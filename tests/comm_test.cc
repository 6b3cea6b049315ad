// Collectives over Gloo between threads of one process (each rank its own TCP endpoints on
// 127.0.0.1), the step message, the shard layout rules, and sliced checkpoint reads.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <thread>

#include "gloo/rendezvous/hash_store.h"
#include "src/comm/gloo_communicator.h"
#include "src/core/numeric.h"
#include "src/distributed/launcher.h"
#include "src/distributed/step_message.h"
#include "src/model/shard_layout.h"
#include "src/weights/weight_store.h"

namespace dsinfer {
namespace {

using std::chrono::milliseconds;

// Runs fn(comm) on `size` connected ranks, one thread each.
void OnRanks(int size, const std::function<void(Communicator&)>& fn,
             milliseconds timeout = milliseconds(5000)) {
  gloo::rendezvous::HashStore store;
  std::vector<std::thread> threads;
  for (int r = 0; r < size; ++r) {
    threads.emplace_back([&, r] {
      auto comm = GlooCommunicator::Create(store, {.rank = r, .size = size, .timeout = timeout});
      ASSERT_TRUE(comm.ok()) << comm.status();
      fn(**comm);
    });
  }
  for (auto& t : threads) t.join();
}

TEST(Gloo, AllReduceSumsF32AndBf16) {
  OnRanks(3, [](Communicator& c) {
    std::vector<float> x(1000);
    for (int i = 0; i < 1000; ++i) x[i] = static_cast<float>(i * (c.rank() + 1));
    ASSERT_TRUE(c.AllReduceSum(x.data(), 1000, CommDType::kF32).ok());
    for (int i = 0; i < 1000; ++i) ASSERT_EQ(x[i], 6.f * i);
    std::vector<uint16_t> b(64, F32ToBf16(0.5f * (c.rank() + 1)));
    ASSERT_TRUE(c.AllReduceSum(b.data(), 64, CommDType::kBF16).ok());
    for (uint16_t v : b) ASSERT_EQ(Bf16ToF32(v), 3.f);
    EXPECT_EQ(c.stats().all_reduce.calls, 2);
  });
}

TEST(Gloo, AllGatherVWithUnevenAndZeroSizes) {
  OnRanks(3, [](Communicator& c) {
    const std::vector<int64_t> sizes = {3, 0, 5};
    std::vector<char> in(sizes[c.rank()], static_cast<char>('a' + c.rank()));
    std::vector<char> out(8);
    ASSERT_TRUE(c.AllGatherV(in.data(), out.data(), sizes).ok());
    EXPECT_EQ(std::string(out.begin(), out.end()), "aaaccccc");
  });
}

TEST(Gloo, AllToAllVDeliversEachBlockToItsRank) {
  OnRanks(3, [](Communicator& c) {
    // Rank s sends (s + d) ints of value 10 s + d to rank d.
    const int s = c.rank();
    std::vector<int32_t> send;
    std::vector<int64_t> send_bytes(3), recv_bytes(3);
    for (int d = 0; d < 3; ++d) {
      for (int i = 0; i < s + d; ++i) send.push_back(10 * s + d);
      send_bytes[d] = (s + d) * 4;
      recv_bytes[d] = (d + s) * 4;
    }
    std::vector<int64_t> counts(3), got(3);
    for (int d = 0; d < 3; ++d) counts[d] = send_bytes[d];
    ASSERT_TRUE(c.AllToAll(counts.data(), got.data(), sizeof(int64_t)).ok());
    EXPECT_EQ(got, recv_bytes);
    std::vector<int32_t> recv((s + 0) + (s + 1) + (s + 2));
    ASSERT_TRUE(c.AllToAllV(send.data(), send_bytes, recv.data(), recv_bytes).ok());
    size_t at = 0;
    for (int src = 0; src < 3; ++src)
      for (int i = 0; i < src + s; ++i) ASSERT_EQ(recv[at++], 10 * src + s);
  });
}

TEST(Gloo, BroadcastFromAnyRoot) {
  OnRanks(2, [](Communicator& c) {
    int64_t v = c.rank() == 1 ? 42 : 0;
    ASSERT_TRUE(c.Broadcast(&v, sizeof(v), 1).ok());
    EXPECT_EQ(v, 42);
    EXPECT_TRUE(c.Barrier().ok());
  });
}

TEST(Gloo, ARankThatLeavesMakesTheOthersFailNotHang) {
  const auto t0 = std::chrono::steady_clock::now();
  // Rank 2 leaves only once every rank is connected: a rank that leaves during the connection
  // handshake makes the others' Create fail (also UNAVAILABLE, tested by the launcher tests),
  // not the collective this test is about.
  std::atomic<int> connected{0};
  OnRanks(
      3,
      [&connected](Communicator& c) {
        connected.fetch_add(1);
        if (c.rank() == 2) {
          while (connected.load() < 3) std::this_thread::sleep_for(milliseconds(1));
          return;  // leaves: its communicator closes its connections
        }
        std::vector<float> x(16, 1.f);
        absl::Status st = c.AllReduceSum(x.data(), 16, CommDType::kF32);
        EXPECT_EQ(st.code(), absl::StatusCode::kUnavailable) << st;
        EXPECT_FALSE(c.healthy());
        EXPECT_EQ(c.AllReduceSum(x.data(), 16, CommDType::kF32).code(),
                  absl::StatusCode::kUnavailable);
      },
      milliseconds(3000));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(20));
}

// A leader killed with SIGKILL never runs TempDir's destructor; the next leader's Make removes
// the directory it left, and never one of a process still running.
TEST(Launcher, StaleRendezvousDirectoriesAreRemovedAtTheNextStart) {
  namespace fs = std::filesystem;
  const std::string prefix = "dsinfer-launcher-test-";
  const pid_t child = fork();
  if (child == 0) _exit(0);
  ASSERT_GT(child, 0);
  ASSERT_EQ(waitpid(child, nullptr, 0), child);  // a pid that is gone
  const fs::path tmp = fs::temp_directory_path();
  const fs::path stale = tmp / (prefix + std::to_string(child) + "-abc123");
  const fs::path live = tmp / (prefix + std::to_string(getppid()) + "-def456");
  fs::create_directories(stale / "rank0");
  fs::create_directories(live);
  {
    absl::StatusOr<TempDir> d = TempDir::Make(prefix);
    ASSERT_TRUE(d.ok()) << d.status();
    EXPECT_TRUE(fs::exists(d->path()));
    EXPECT_NE(d->path().find(std::to_string(getpid())), std::string::npos) << d->path();
    EXPECT_FALSE(fs::exists(stale));
    EXPECT_TRUE(fs::exists(live));
  }
  fs::remove_all(live);
}

TEST(StepMessage, RoundTripsAndRejectsTruncation) {
  const std::vector<int32_t> t1 = {5, 6, 7}, b1 = {0, 3}, t2 = {9}, b2 = {4};
  std::vector<RunnerSequence> seqs = {
      {.tokens = t1, .start_pos = 0, .block_table = b1, .all_logits = true},
      {.tokens = t2, .start_pos = 70, .block_table = b2}};
  std::vector<char> bytes = EncodeStep(seqs);
  auto step = DecodeStep(bytes);
  ASSERT_TRUE(step.ok()) << step.status();
  ASSERT_EQ(step->seqs.size(), 2u);
  EXPECT_EQ(std::vector<int32_t>(step->seqs[0].tokens.begin(), step->seqs[0].tokens.end()), t1);
  EXPECT_TRUE(step->seqs[0].all_logits);
  EXPECT_EQ(step->seqs[1].start_pos, 70);
  EXPECT_EQ(step->seqs[1].block_table[0], 4);
  for (size_t cut = 0; cut < bytes.size(); cut += 3) {
    EXPECT_FALSE(DecodeStep(absl::MakeSpan(bytes.data(), cut)).ok()) << cut;
  }
}

// MTP ranks sample as the leader does: sampling rows (penalties too), drafts, the next token and
// the sampled vocabulary travel with the step.
TEST(StepMessage, CarriesSamplingAndDrafts) {
  const std::vector<int32_t> toks = {5, 6, 7}, table = {2}, pen = {5, 9}, counts = {0, 3};
  const std::vector<SamplingRow> drafts = {{.temperature = 0.5f, .uniform = 0.25},
                                           {.temperature = 0.7f, .top_k = 4, .uniform = 0.75}};
  RunnerSequence in{.tokens = toks,
                    .start_pos = 40,
                    .block_table = table,
                    .sample = true,
                    .sampling = {.temperature = 0.8f, .top_k = 3, .top_p = 0.9f, .min_p = 0.1f,
                                 .repetition_penalty = 1.2f, .frequency_penalty = 0.5f,
                                 .presence_penalty = 0.25f, .uniform = 0.125,
                                 .penalty_tokens = pen, .penalty_counts = counts},
                    .logprobs = -1,
                    .num_draft = 2,
                    .draft_sampling = drafts,
                    .next_token = 11};
  const RunnerSequence plain{.tokens = toks, .start_pos = 0, .block_table = table,
                             .next_token = 8};
  const std::vector<RunnerSequence> seqs = {in, plain};
  std::vector<char> bytes = EncodeStep(seqs, 500);
  auto step = DecodeStep(bytes);
  ASSERT_TRUE(step.ok()) << step.status();
  EXPECT_EQ(step->sample_vocab, 500);
  ASSERT_EQ(step->seqs.size(), 2u);
  const RunnerSequence& got = step->seqs[0];
  EXPECT_TRUE(got.sample);
  EXPECT_EQ(got.logprobs, -1);
  EXPECT_EQ(got.num_draft, 2);
  EXPECT_EQ(got.next_token, 11);
  EXPECT_EQ(got.sampling.top_k, 3);
  EXPECT_FLOAT_EQ(got.sampling.top_p, 0.9f);
  EXPECT_FLOAT_EQ(got.sampling.min_p, 0.1f);
  EXPECT_FLOAT_EQ(got.sampling.repetition_penalty, 1.2f);
  EXPECT_FLOAT_EQ(got.sampling.frequency_penalty, 0.5f);
  EXPECT_FLOAT_EQ(got.sampling.presence_penalty, 0.25f);
  EXPECT_DOUBLE_EQ(got.sampling.uniform, 0.125);
  EXPECT_EQ(std::vector<int32_t>(got.sampling.penalty_tokens.begin(),
                                 got.sampling.penalty_tokens.end()), pen);
  EXPECT_EQ(std::vector<int32_t>(got.sampling.penalty_counts.begin(),
                                 got.sampling.penalty_counts.end()), counts);
  ASSERT_EQ(got.draft_sampling.size(), 2u);
  EXPECT_FLOAT_EQ(got.draft_sampling[1].temperature, 0.7f);
  EXPECT_EQ(got.draft_sampling[1].top_k, 4);
  EXPECT_DOUBLE_EQ(got.draft_sampling[1].uniform, 0.75);
  EXPECT_TRUE(got.draft_sampling[0].penalty_tokens.empty());
  EXPECT_FALSE(step->seqs[1].sample);
  EXPECT_EQ(step->seqs[1].next_token, 8);
  for (size_t cut = 0; cut < bytes.size(); ++cut) {
    EXPECT_FALSE(DecodeStep(absl::MakeSpan(bytes.data(), cut)).ok()) << cut;
  }
}

TEST(ShardLayout, NamesWhatDoesNotDivide) {
  ModelConfig c;
  c.num_attention_heads = 4;
  c.num_hidden_layers = 2;
  c.first_k_dense_replace = 1;
  c.intermediate_size = 256;
  c.moe_intermediate_size = 72;
  c.n_routed_experts = 16;
  c.vocab_size = 512;
  EXPECT_TRUE((ShardLayout{.rank = 1, .tp = 4, .ep = 2}.Validate(c).ok()));
  auto msg = [&](ShardLayout l) { return std::string(l.Validate(c).message()); };
  EXPECT_NE(msg({.tp = 3}).find("num_attention_heads (4) is not divisible by tp (3)"),
            std::string::npos);
  EXPECT_NE(msg({.tp = 4, .ep = 3}).find("ep (3) must divide tp (4)"), std::string::npos);
  c.moe_intermediate_size = 70;
  EXPECT_NE(msg({.tp = 4, .ep = 1}).find("moe_intermediate_size (70)"), std::string::npos);
  ShardLayout l{.rank = 3, .tp = 4, .ep = 2};
  EXPECT_EQ(l.moe_tp(), 2);
  EXPECT_EQ(l.ep_rank(), 1);
  EXPECT_EQ(l.ExpertBegin(c), 8);
}

// DeepSeek-V4 splits its grouped output projection by whole groups and its shared expert over
// every rank (not only within an expert group): both are named when they do not divide.
TEST(ShardLayout, V4NamesWhatDoesNotDivide) {
  ModelConfig c;
  c.model_type = "deepseek_v4";
  c.num_attention_heads = 8;
  c.num_hidden_layers = 2;
  c.moe_intermediate_size = 40;
  c.n_routed_experts = 6;
  c.vocab_size = 512;
  c.v4.o_groups = 4;
  auto msg = [&](ShardLayout l) { return std::string(l.Validate(c).message()); };
  EXPECT_TRUE((ShardLayout{.rank = 1, .tp = 4, .ep = 2}.Validate(c).ok()));
  EXPECT_TRUE((ShardLayout{.rank = 1, .tp = 2, .ep = 2}.Validate(c).ok()));
  EXPECT_NE(msg({.tp = 8}).find("o_groups (4) is not divisible by tp (8)"), std::string::npos);
  EXPECT_NE(msg({.tp = 4, .ep = 4}).find("n_routed_experts (6) is not divisible by ep (4)"),
            std::string::npos);
  c.v4.o_groups = 8;
  c.n_routed_experts = 8;
  c.moe_intermediate_size = 36;  // 36 / (tp / ep) = 18 would do for the routed experts alone
  EXPECT_NE(msg({.tp = 8, .ep = 4})
                .find("moe_intermediate_size (36) is not divisible by tp (8): model_type "
                      "deepseek_v4 splits its shared expert over every rank"),
            std::string::npos)
      << msg({.tp = 8, .ep = 4});
}

// A slice read equals the same part of a full read, for FP8 (block scales), BF16 and F32.
TEST(WeightSlice, EqualsThePartOfTheFullTensor) {
  auto store = WeightStore::Open(std::string(DSINFER_SOURCE_DIR) + "/tests/fixtures/models/v3_fp8");
  ASSERT_TRUE(store.ok()) << store.status();
  int checked = 0;
  for (const std::string& name : (*store)->Names()) {
    const TensorInfo* t = *(*store)->Get(name);
    if (t->shape.size() != 2 || name.find("scale_inv") != std::string::npos) continue;
    const int64_t R = t->shape[0], C = t->shape[1];
    std::vector<float> full(R * C);
    ASSERT_TRUE((*store)->ReadF32(name, t->shape, full.data()).ok()) << name;
    const TensorSlice sl{.row0 = R / 3, .rows = R - R / 3 - R / 5, .col0 = C / 4,
                         .cols = C - C / 4 - C / 7};
    std::vector<float> part(sl.rows * sl.cols);
    std::vector<uint16_t> part16(sl.rows * sl.cols);
    ASSERT_TRUE((*store)->ReadF32(name, t->shape, part.data(), &sl).ok()) << name;
    ASSERT_TRUE((*store)->ReadBf16(name, t->shape, part16.data(), &sl).ok()) << name;
    for (int64_t r = 0; r < sl.rows; ++r)
      for (int64_t c = 0; c < sl.cols; ++c) {
        const float want = full[(sl.row0 + r) * C + sl.col0 + c];
        ASSERT_EQ(part[r * sl.cols + c], want) << name;
        ASSERT_EQ(part16[r * sl.cols + c], F32ToBf16(want)) << name;
      }
    ++checked;
  }
  EXPECT_GT(checked, 10);
  const int64_t shape[2] = {4, 4};
  TensorSlice bad{.row0 = 3, .rows = 2, .col0 = 0, .cols = 1};
  std::vector<float> out(8);
  EXPECT_FALSE((*store)->ReadF32("model.embed_tokens.weight", shape, out.data(), &bad).ok());
}

}  // namespace
}  // namespace dsinfer
