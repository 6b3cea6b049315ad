// Grouped-query attention on the GPU against its CPU twin (the CPU backend's GqaAttention op:
// cpu::ApplyRope in the half-split layout, bf16-rounded [k | v] rows, cpu::GqaAttention), for
// the distills' shapes and DeepSeek-R1-Distill-sized heads; decode, prefill and a chunk after
// cached tokens, sequences batched with scattered blocks.
// Tolerances: rotated q and k within 1e-5 (max |diff| / max |want|; precise cosf / sinf), cached
// rows within one bf16 step (2^-7 of the largest), the bf16 output within 1e-2.
#include <algorithm>
#include <cmath>
#include <random>

#include "kernels/cpu/gqa_attention.h"
#include "kernels/cpu/rope.h"
#include "kernels/cuda/gqa_attention.h"
#include "src/core/numeric.h"
#include "tests/gpu/gpu_test_util.h"
#include "tests/gpu/paged_seqs.h"

namespace dsinfer {
namespace {

using gpu_test::DeviceArray;
using gpu_test::MaxRelErr;
using gpu_test::PagedSeqs;

struct GqaCase {
  const char* name;
  int64_t heads, kv_heads, head_dim;
  std::vector<int32_t> start_pos, n_new;
};
std::ostream& operator<<(std::ostream& os, const GqaCase& c) { return os << c.name; }

class GqaAttentionGpuTest : public ::testing::TestWithParam<GqaCase> {};

TEST_P(GqaAttentionGpuTest, MatchesCpuTwin) {
  SKIP_WITHOUT_CUDA();
  const GqaCase& c = GetParam();
  const int64_t H = c.heads, KV = c.kv_heads, hd = c.head_dim, qw = H * hd, kw = KV * hd;
  const int64_t width = 2 * kw;
  const PagedSeqs seqs(c.start_pos, c.n_new, 9);
  const int64_t N = static_cast<int64_t>(seqs.positions.size());
  const int64_t M = static_cast<int64_t>(seqs.old_positions.size());
  const auto inv_freq = cpu::RopeInvFreq({.rope_dim = hd, .theta = 1e6});
  // Rows of [q | k | v] as one projection writes them (column windows of one tensor).
  const int64_t ld = qw + 2 * kw;
  const auto old_qkv = gpu_test::RandomBf16Values(M * ld, 1, 2.f);
  const auto qkv = gpu_test::RandomBf16Values(N * ld, 2, 2.f);
  const float scale = static_cast<float>(std::pow(static_cast<double>(hd), -0.5));

  // CPU twin: rotate, append bf16-rounded rows, attend.
  std::vector<float> cache(seqs.num_blocks * PagedSeqs::kBs * width, 0.f);
  auto cpu_step = [&](std::vector<float> x, const std::vector<int32_t>& pos,
                      const std::vector<int32_t>& slots) {
    const int64_t n = static_cast<int64_t>(pos.size());
    cpu::ApplyRope({.x = x.data(),
                    .positions = pos.data(),
                    .inv_freq = inv_freq.data(),
                    .rows = n,
                    .heads = H,
                    .rope_dim = hd,
                    .head_stride = hd,
                    .row_stride = ld,
                    .half_split = true});
    cpu::ApplyRope({.x = x.data() + qw,
                    .positions = pos.data(),
                    .inv_freq = inv_freq.data(),
                    .rows = n,
                    .heads = KV,
                    .rope_dim = hd,
                    .head_stride = hd,
                    .row_stride = ld,
                    .half_split = true});
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < width; ++j)
        cache[static_cast<int64_t>(slots[i]) * width + j] = RoundToBf16(x[i * ld + qw + j]);
    return x;
  };
  cpu_step(old_qkv, seqs.old_positions, seqs.old_slots);
  const std::vector<float> rotated = cpu_step(qkv, seqs.positions, seqs.slots);
  std::vector<const int32_t*> tables(N);
  for (int64_t i = 0; i < N; ++i) tables[i] = seqs.table_of_token(i);
  std::vector<float> want(N * qw);
  cpu::GqaAttention({.q = rotated.data(),
                     .ld_q = ld,
                     .cache = {.data = cache.data(), .block_size = PagedSeqs::kBs, .width = width},
                     .block_tables = tables.data(),
                     .positions = seqs.positions.data(),
                     .out = want.data(),
                     .ld_out = qw,
                     .n = N,
                     .heads = H,
                     .kv_heads = KV,
                     .head_dim = hd,
                     .softmax_scale = scale},
                    gpu_test::ThreadedFor);

  DeviceArray<float> dold(old_qkv), dqkv(qkv), dfreq(inv_freq);
  DeviceArray<__nv_bfloat16> dcache(cache.size()), dout(N * qw);
  DeviceArray<int32_t> dpos_old(seqs.old_positions), dslot_old(seqs.old_slots);
  DeviceArray<int32_t> dpos(seqs.positions), dslot(seqs.slots), dtt(seqs.token_table);
  DeviceArray<int32_t> dtables(seqs.tables);
  cuda::GqaAppendParams ap{.q = dold.get(),
                           .ld_q = ld,
                           .k = dold.get() + qw,
                           .ld_k = ld,
                           .v = dold.get() + qw + kw,
                           .ld_v = ld,
                           .positions = dpos_old.get(),
                           .slots = dslot_old.get(),
                           .inv_freq = dfreq.get(),
                           .cache = dcache.get(),
                           .tokens = M,
                           .heads = H,
                           .kv_heads = KV,
                           .head_dim = hd};
  CUDA_OK(cuda::GqaAppend(ap, nullptr));
  ap.q = dqkv.get();
  ap.k = dqkv.get() + qw;
  ap.v = dqkv.get() + qw + kw;
  ap.positions = dpos.get();
  ap.slots = dslot.get();
  ap.tokens = N;
  CUDA_OK(cuda::GqaAppend(ap, nullptr));
  CUDA_OK(cuda::GqaAttention({.q = dqkv.get(),
                              .ld_q = ld,
                              .cache = dcache.get(),
                              .block_tables = dtables.get(),
                              .token_table = dtt.get(),
                              .positions = dpos.get(),
                              .out = dout.get(),
                              .ld_out = qw,
                              .tokens = N,
                              .heads = H,
                              .kv_heads = KV,
                              .head_dim = hd,
                              .block_size = PagedSeqs::kBs,
                              .softmax_scale = scale},
                             nullptr));
  const auto g_qkv = dqkv.ToHost();
  std::vector<float> gq, wq, gk, wk;
  for (int64_t i = 0; i < N; ++i) {
    gq.insert(gq.end(), g_qkv.begin() + i * ld, g_qkv.begin() + i * ld + qw);
    wq.insert(wq.end(), rotated.begin() + i * ld, rotated.begin() + i * ld + qw);
    gk.insert(gk.end(), g_qkv.begin() + i * ld + qw, g_qkv.begin() + i * ld + qw + kw);
    wk.insert(wk.end(), rotated.begin() + i * ld + qw, rotated.begin() + i * ld + qw + kw);
  }
  EXPECT_LE(MaxRelErr(gq, wq), 1e-5);
  EXPECT_LE(MaxRelErr(gk, wk), 1e-5);
  const auto g_cache = gpu_test::FromBf16(dcache.ToHost());
  EXPECT_LE(MaxRelErr(g_cache, cache), 8e-3);
  const double err = MaxRelErr(gpu_test::FromBf16(dout.ToHost()), want);
  EXPECT_LE(err, 1e-2);
  std::printf("[%s] output rel err %.3g\n", c.name, err);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, GqaAttentionGpuTest,
    ::testing::Values(GqaCase{"qwen2_fixture_prefill", 6, 2, 30, {0, 0}, {9, 70}},
                      GqaCase{"llama_fixture_decode", 8, 2, 40, {5, 64, 130}, {1, 1, 1}},
                      GqaCase{"mqa_chunk_after_cache", 4, 1, 64, {100, 0}, {17, 3}},
                      GqaCase{"r1_distill_qwen_7b_heads", 28, 4, 128, {700, 0, 2000}, {1, 33, 1}},
                      GqaCase{"r1_distill_llama_8b_heads", 32, 8, 128, {0, 300}, {200, 1}}),
    [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace dsinfer
