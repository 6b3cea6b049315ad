// Paged MLA attention on the GPU against cpu::MlaDecode (one CPU "decode" row per query token,
// attending to start_pos + i + 1 keys): tensor-core (512 + 64) and generic kernels, decode and
// causal (chunked) prefill, batch 1 to 128, contexts spanning up to 128 blocks, odd lengths,
// scattered block tables, automatic and forced split-KV.
// Tolerance: max |got - want| / max |want| <= 2e-2 (bf16 inputs, bf16 probabilities in the
// tensor-core P·V, bf16 output).
#include <algorithm>
#include <map>
#include <numeric>
#include <random>
#include <set>

#include "kernels/cpu/mla_attention.h"
#include "kernels/cuda/mla_attention.h"
#include "tests/gpu/gpu_test_util.h"

namespace dsinfer {
namespace {

using gpu_test::DeviceArray;
using gpu_test::FromBf16;
using gpu_test::MaxRelErr;
using gpu_test::RandomBf16Values;
using gpu_test::ToBf16;

constexpr int64_t kBs = 64;

struct MlaCase {
  const char* name;
  int64_t kvl, rope, heads;
  std::vector<int32_t> n_new, start_pos;
  bool tensor_core;
  int64_t split_tokens = 0;
};

std::ostream& operator<<(std::ostream& os, const MlaCase& c) { return os << c.name; }

std::vector<int32_t> RandomLens(int n, int lo, int hi, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> d(lo, hi);
  std::vector<int32_t> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

// Decode: one new token after len - 1 cached ones.
MlaCase Decode(const char* name, int64_t kvl, int64_t rope, int64_t heads,
               const std::vector<int32_t>& lens, bool tc, int64_t split = 0) {
  MlaCase c{name, kvl, rope, heads, {}, {}, tc, split};
  for (int32_t l : lens) {
    c.n_new.push_back(1);
    c.start_pos.push_back(l - 1);
  }
  return c;
}

class MlaAttentionGpuTest : public ::testing::TestWithParam<MlaCase> {};

TEST_P(MlaAttentionGpuTest, MatchesCpuTwin) {
  SKIP_WITHOUT_CUDA();
  const MlaCase& c = GetParam();
  const int64_t width = c.kvl + c.rope, H = c.heads, S = static_cast<int64_t>(c.n_new.size());
  const bool tc = c.tensor_core && cuda::MlaTensorCoreSupported(c.kvl, c.rope, kBs, 0);
  if (c.tensor_core && !tc) GTEST_SKIP() << "tensor-core MLA kernel not supported on this GPU";

  // Block tables: a shuffled pool, so a sequence's blocks are scattered.
  int64_t total_blocks = 0;
  for (int64_t s = 0; s < S; ++s) total_blocks += (c.start_pos[s] + c.n_new[s] + kBs - 1) / kBs;
  total_blocks += 3;
  std::vector<int32_t> pool(total_blocks);
  std::iota(pool.begin(), pool.end(), 0);
  std::shuffle(pool.begin(), pool.end(), std::mt19937_64(42));
  std::vector<int32_t> tables;
  std::vector<cuda::MlaSeqDesc> seqs;
  int64_t tok = 0, next_block = 0, max_blocks = 0;
  std::vector<std::vector<int32_t>> seq_tables(S);
  for (int64_t s = 0; s < S; ++s) {
    const int64_t nb = (c.start_pos[s] + c.n_new[s] + kBs - 1) / kBs;
    max_blocks = std::max(max_blocks, nb);
    seqs.push_back({static_cast<int32_t>(tok * H), static_cast<int32_t>(c.n_new[s] * H),
                    c.start_pos[s], static_cast<int32_t>(tables.size())});
    for (int64_t b = 0; b < nb; ++b) seq_tables[s].push_back(pool[next_block++]);
    tables.insert(tables.end(), seq_tables[s].begin(), seq_tables[s].end());
    tok += c.n_new[s];
  }
  const int64_t q_rows = tok * H;
  const auto cache = RandomBf16Values(total_blocks * kBs * width, 1);
  const auto q = RandomBf16Values(q_rows * width, 2);
  const float scale = c.kvl >= 512 ? 0.1f : 0.3f;

  const int64_t max_partials = std::max<int64_t>(4 * gpu_test::NumSms(), 2048);
  const cuda::MlaPlan plan = cuda::MakeMlaPlan({.heads = H,
                                                .kv_lora = c.kvl,
                                                .rope = c.rope,
                                                .block_size = kBs,
                                                .num_sms = gpu_test::NumSms(),
                                                .max_partials = max_partials,
                                                .tensor_core = tc,
                                                .split_tokens = c.split_tokens},
                                               c.n_new.data(), c.start_pos.data(), S);
  EXPECT_EQ(plan.kernel == cuda::MlaKernel::kTensorCore, tc);
  if (c.split_tokens) {
    EXPECT_FALSE(plan.combine.empty());
  }

  DeviceArray<__nv_bfloat16> dcache(ToBf16(cache)), dq(ToBf16(q)), dout(q_rows * c.kvl);
  DeviceArray<int32_t> dtables(tables);
  DeviceArray<cuda::MlaSeqDesc> dseqs(seqs);
  DeviceArray<cuda::MlaWorkItem> dwork(plan.work);
  DeviceArray<cuda::MlaCombineItem> dcombine(plan.combine);
  DeviceArray<float> dpart(max_partials * cuda::MlaMaxTileRows() * c.kvl),
      dlse(max_partials * cuda::MlaMaxTileRows());
  CUDA_OK(cuda::MlaAttention({.q = dq.get(),
                              .cache = dcache.get(),
                              .block_tables = dtables.get(),
                              .seqs = dseqs.get(),
                              .work = dwork.get(),
                              .num_work = static_cast<int32_t>(plan.work.size()),
                              .combine = dcombine.get(),
                              .num_combine = static_cast<int32_t>(plan.combine.size()),
                              .partial_out = dpart.get(),
                              .partial_lse = dlse.get(),
                              .out = dout.get(),
                              .kernel = plan.kernel,
                              .tile_rows = plan.tile_rows,
                              .heads = H,
                              .kv_lora = c.kvl,
                              .rope = c.rope,
                              .block_size = kBs,
                              .softmax_scale = scale},
                             nullptr));
  CUDA_OK(cudaDeviceSynchronize());
  const auto got = FromBf16(dout.ToHost());

  // CPU twin: every query token is a decode row over its causal prefix.
  std::vector<float> q_lat(q_rows * c.kvl), q_pe(q_rows * c.rope);
  for (int64_t r = 0; r < q_rows; ++r) {
    std::copy(q.begin() + r * width, q.begin() + r * width + c.kvl, q_lat.begin() + r * c.kvl);
    std::copy(q.begin() + r * width + c.kvl, q.begin() + (r + 1) * width,
              q_pe.begin() + r * c.rope);
  }
  std::vector<int32_t> cpu_tables(tok * max_blocks, 0), cpu_lens;
  int64_t row = 0;
  for (int64_t s = 0; s < S; ++s)
    for (int32_t i = 0; i < c.n_new[s]; ++i, ++row) {
      std::copy(seq_tables[s].begin(), seq_tables[s].end(), cpu_tables.begin() + row * max_blocks);
      cpu_lens.push_back(c.start_pos[s] + i + 1);
    }
  std::vector<float> want(q_rows * c.kvl);
  cpu::MlaDecode({.q_latent = q_lat.data(),
                  .q_pe = q_pe.data(),
                  .cache = {.data = cache.data(), .block_size = kBs, .width = width},
                  .block_tables = cpu_tables.data(),
                  .max_blocks = max_blocks,
                  .seq_lens = cpu_lens.data(),
                  .out_latent = want.data(),
                  .batch = tok,
                  .heads = H,
                  .kv_lora = c.kvl,
                  .rope = c.rope,
                  .softmax_scale = scale},
                 gpu_test::ThreadedFor);
  const double err = MaxRelErr(got, want);
  EXPECT_LE(err, 2e-2);
  std::printf("[%s] %s kernel, tile %d, %zu work items, %zu combines: rel err %.3g\n", c.name,
              tc ? "tensor-core" : "generic", plan.tile_rows, plan.work.size(), plan.combine.size(),
              err);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, MlaAttentionGpuTest,
    ::testing::Values(Decode("tc_h16_b1_len1", 512, 64, 16, {1}, true),
                      Decode("tc_h16_b128_random", 512, 64, 16, RandomLens(128, 1, 2100, 3), true),
                      Decode("tc_h128_long", 512, 64, 128, {8191, 100, 65, 4097}, true),
                      Decode("tc_h128_b128", 512, 64, 128, RandomLens(128, 1, 700, 4), true),
                      Decode("tc_h32_b3", 512, 64, 32, {33, 640, 129}, true),
                      Decode("tc_h16_forced_splits", 512, 64, 16, {1000, 64, 65, 3, 777}, true, 64),
                      Decode("tc_h128_forced_splits", 512, 64, 128, {300, 1}, true, 128),
                      MlaCase{
                          "tc_h16_prefill_chunks", 512, 64, 16, {37, 1, 130}, {0, 500, 64}, true},
                      MlaCase{"tc_h128_prefill", 512, 64, 128, {9, 2}, {70, 0}, true},
                      MlaCase{"tc_h16_prefill_split", 512, 64, 16, {5}, {400}, true, 128},
                      // The executor's prefill shapes: 64-row tiles mixing 4 tokens x 16 heads
                      // (per-row causal limits inside a tile), one token per tile at 64 heads,
                      // two tiles per token at 128, tiles past the SM count (no split, many key
                      // tiles per CTA), and chunked prefill after cached tokens.
                      MlaCase{"tc_h16_prefill_long", 512, 64, 16, {301}, {0}, true},
                      MlaCase{"tc_h16_prefill_batch", 512, 64, 16, {150, 70, 301}, {0, 0, 0},
                              true},
                      MlaCase{"tc_h64_prefill_nosplit", 512, 64, 64, {150, 70}, {0, 0}, true},
                      MlaCase{"tc_h64_prefill_chunked", 512, 64, 64, {100, 37}, {257, 64}, true},
                      MlaCase{"tc_h128_prefill_long", 512, 64, 128, {130}, {0}, true},
                      MlaCase{"tc_h128_prefill_chunked", 512, 64, 128, {33, 1}, {700, 90}, true},
                      MlaCase{"tc_h16_prefill_chunked_split", 512, 64, 16, {96}, {200}, true, 64},
                      Decode("generic_512_h16", 512, 64, 16, {300, 2, 129}, false),
                      Decode("generic_48_h4", 48, 8, 4, RandomLens(7, 1, 500, 5), false),
                      Decode("generic_48_forced_splits", 48, 8, 4, {200, 64, 1}, false, 64),
                      MlaCase{"generic_112_prefill", 112, 16, 4, {70, 3}, {0, 61}, false},
                      MlaCase{"generic_64_prefill_split", 64, 16, 4, {20}, {300}, false, 64}));

// The plan alone (host code): every tile's keys are covered once, in whole blocks, and partial
// slots are unique. Runs without a GPU.
TEST(MlaPlan, CoversEveryTileOnce) {
  const std::vector<int32_t> n_new = {1, 1, 300, 1, 7}, start = {0, 5000, 10, 64, 900};
  for (bool tc : {false, true}) {
    for (int64_t split : {0, 64, 256}) {
      const cuda::MlaPlan p = cuda::MakeMlaPlan({.heads = 16,
                                                 .kv_lora = 512,
                                                 .rope = 64,
                                                 .block_size = 64,
                                                 .num_sms = 132,
                                                 .max_partials = 1 << 20,
                                                 .tensor_core = tc,
                                                 .split_tokens = split},
                                                n_new.data(), start.data(), 5);
      std::map<std::pair<int, int>, std::vector<std::pair<int, int>>> ranges;
      std::set<int> slots;
      for (const auto& w : p.work) {
        EXPECT_EQ(w.kv_begin % 64, 0);
        EXPECT_LT(w.kv_begin, w.kv_end);
        ranges[{w.seq, w.row0}].push_back({w.kv_begin, w.kv_end});
        if (w.partial >= 0) {
          EXPECT_TRUE(slots.insert(w.partial).second);
        }
      }
      for (auto& [tile, rs] : ranges) {
        std::sort(rs.begin(), rs.end());
        EXPECT_EQ(rs.front().first, 0);
        for (size_t i = 1; i < rs.size(); ++i) EXPECT_EQ(rs[i].first, rs[i - 1].second);
        const int last_row = std::min<int>(n_new[tile.first] * 16, tile.second + p.tile_rows) - 1;
        EXPECT_EQ(rs.back().second, start[tile.first] + last_row / 16 + 1);
      }
      int32_t in_combine = 0;
      for (const auto& cmb : p.combine) in_combine += cmb.num_splits;
      EXPECT_EQ(in_combine, static_cast<int32_t>(slots.size()));
      EXPECT_EQ(p.num_partials, static_cast<int32_t>(slots.size()));
    }
  }
}

}  // namespace
}  // namespace dsinfer
