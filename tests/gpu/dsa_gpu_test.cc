// DeepSeek Sparse Attention on the GPU against its CPU twins (kernels/cpu/dsa_indexer.h and the
// CPU backend's sparse MLA, cpu::MlaDecode over each token's gathered rows).
// - Index keys and queries: FP8 codes equal to the CPU's, except at most 0.5% one code step away
//   (cosf / LayerNorm sums may differ in the last bit and move a value across a rounding
//   boundary); scales and head weights within 1e-5 relative where the codes agree.
// - Scores: on the GPU's own cache and queries, within 1e-5 of cpu::IndexScores (max |diff| /
//   max |want|); top-k: exactly cpu::TopKPositions of the same scores (ties included).
// - Sparse MLA: f32 query/output within 1e-4 of the CPU twin, bf16 within 2e-2 (bf16 output).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>

#include "kernels/cpu/dsa_indexer.h"
#include "kernels/cpu/fp8.h"
#include "kernels/cpu/mla_attention.h"
#include "kernels/cpu/rope.h"
#include "kernels/cuda/dsa_indexer.h"
#include "kernels/cuda/sparse_mla.h"
#include "tests/gpu/gpu_test_util.h"
#include "tests/gpu/paged_seqs.h"

namespace dsinfer {
namespace {

using gpu_test::DeviceArray;
using gpu_test::MaxRelErr;
using gpu_test::PagedSeqs;

constexpr int64_t kDim = 128, kRope = 64;

std::vector<float> Uniform(size_t n, uint64_t seed, float lo, float hi) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

// Index of an E4M3 code in value order (codes of adjacent values differ by one).
int CodeRank(uint8_t c) { return (c & 0x80) ? -static_cast<int>(c & 0x7f) : (c & 0x7f); }

struct CodeDiff {
  int64_t differ = 0, far = 0;
};
CodeDiff CompareCodes(const uint8_t* got, const uint8_t* want, int64_t n) {
  CodeDiff d;
  for (int64_t i = 0; i < n; ++i) {
    if (got[i] == want[i]) continue;
    ++d.differ;
    if (std::abs(CodeRank(got[i]) - CodeRank(want[i])) > 1) ++d.far;
  }
  return d;
}

struct IndexerCase {
  const char* name;
  int64_t heads, topk;
  std::vector<int32_t> start_pos, n_new;
  bool ue8m0;
};
std::ostream& operator<<(std::ostream& os, const IndexerCase& c) { return os << c.name; }

class DsaIndexerGpuTest : public ::testing::TestWithParam<IndexerCase> {};

TEST_P(DsaIndexerGpuTest, MatchesCpuTwin) {
  SKIP_WITHOUT_CUDA();
  const IndexerCase& c = GetParam();
  const int64_t H = c.heads, row_bytes = cpu::IndexKeyRowBytes(kDim);
  const PagedSeqs seqs(c.start_pos, c.n_new, 7);
  const int64_t N = static_cast<int64_t>(seqs.positions.size());
  const int64_t M = static_cast<int64_t>(seqs.old_positions.size());
  const int64_t P = 1 + *std::max_element(seqs.positions.begin(), seqs.positions.end());
  const auto inv_freq = cpu::RopeInvFreq({.rope_dim = kRope, .theta = 10000.0});
  const auto norm_w = Uniform(kDim, 1, 0.5f, 1.5f), norm_b = Uniform(kDim, 2, -0.2f, 0.2f);
  const auto k_old = Uniform(M * kDim, 3, -2.f, 2.f), k_new = Uniform(N * kDim, 4, -2.f, 2.f);
  const auto q = Uniform(N * H * kDim, 5, -2.f, 2.f), w = Uniform(N * H, 6, -1.f, 1.f);
  const float rot = static_cast<float>(std::pow(double{kDim}, -0.5));
  const float head_scale = static_cast<float>(std::pow(static_cast<double>(H), -0.5));
  const float attn_factor = 1.1f, eps = 1e-6f;

  // CPU: the key rows of every token, the query codes and head weights (as cpu_sparse.cc).
  std::vector<uint8_t> cache(seqs.num_blocks * PagedSeqs::kBs * row_bytes, 0);
  auto cpu_key = [&](const float* k_in, int32_t pos, int32_t slot) {
    std::vector<float> k(k_in, k_in + kDim);
    cpu::LayerNormRow(k.data(), norm_w.data(), norm_b.data(), kDim, eps);
    cpu::RopeHalfRow(k.data(), pos, inv_freq.data(), kRope, attn_factor);
    cpu::HadamardTransform(k.data(), kDim, rot);
    uint8_t* row = cache.data() + static_cast<int64_t>(slot) * row_bytes;
    const float s = cpu::QuantizeIndexBlock(k.data(), kDim, c.ue8m0, row);
    std::memcpy(row + kDim, &s, 4);
  };
  for (int64_t i = 0; i < M; ++i)
    cpu_key(k_old.data() + i * kDim, seqs.old_positions[i], seqs.old_slots[i]);
  for (int64_t i = 0; i < N; ++i)
    cpu_key(k_new.data() + i * kDim, seqs.positions[i], seqs.slots[i]);
  std::vector<uint8_t> q_codes(N * H * kDim);
  std::vector<float> head_w(N * H);
  for (int64_t i = 0; i < N; ++i) {
    for (int64_t h = 0; h < H; ++h) {
      std::vector<float> qh(q.begin() + (i * H + h) * kDim, q.begin() + (i * H + h + 1) * kDim);
      cpu::RopeHalfRow(qh.data(), seqs.positions[i], inv_freq.data(), kRope, attn_factor);
      cpu::HadamardTransform(qh.data(), kDim, rot);
      const float s =
          cpu::QuantizeIndexBlock(qh.data(), kDim, c.ue8m0, q_codes.data() + (i * H + h) * kDim);
      head_w[i * H + h] = w[i * H + h] * head_scale * s * rot;
    }
  }

  // GPU: the earlier tokens' keys, then the step's keys, queries, scores and top-k.
  DeviceArray<float> dnw(norm_w), dnb(norm_b), dfreq(inv_freq), dk_old(k_old), dk_new(k_new);
  DeviceArray<float> dq(q), dw(w), dhead_w(N * H), dscores(N * P);
  DeviceArray<uint8_t> dcache(cache.size()), dq_codes(N * H * kDim);
  DeviceArray<int32_t> dpos_old(seqs.old_positions), dslot_old(seqs.old_slots);
  DeviceArray<int32_t> dpos(seqs.positions), dslot(seqs.slots), dtt(seqs.token_table);
  DeviceArray<int32_t> dtables(seqs.tables), dtopk(N * c.topk);
  cuda::IndexKeyAppendParams kp{.k = dk_old.get(),
                                .ld_k = kDim,
                                .norm_w = dnw.get(),
                                .norm_b = dnb.get(),
                                .positions = dpos_old.get(),
                                .slots = dslot_old.get(),
                                .inv_freq = dfreq.get(),
                                .cache = dcache.get(),
                                .tokens = M,
                                .dim = kDim,
                                .rope = kRope,
                                .eps = eps,
                                .attn_factor = attn_factor,
                                .rot_scale = rot,
                                .ue8m0 = c.ue8m0};
  CUDA_OK(cuda::IndexKeyAppend(kp, nullptr));
  kp.k = dk_new.get();
  kp.positions = dpos.get();
  kp.slots = dslot.get();
  kp.tokens = N;
  CUDA_OK(cuda::IndexKeyAppend(kp, nullptr));
  CUDA_OK(cuda::IndexQueryPrep({.q = dq.get(),
                                .ld_q = H * kDim,
                                .w = dw.get(),
                                .ld_w = H,
                                .positions = dpos.get(),
                                .inv_freq = dfreq.get(),
                                .q_codes = dq_codes.get(),
                                .head_weights = dhead_w.get(),
                                .tokens = N,
                                .heads = H,
                                .dim = kDim,
                                .rope = kRope,
                                .attn_factor = attn_factor,
                                .rot_scale = rot,
                                .head_scale = head_scale,
                                .softmax_scale = rot,
                                .ue8m0 = c.ue8m0},
                               nullptr));
  CUDA_OK(cuda::IndexScores({.q_codes = dq_codes.get(),
                             .head_weights = dhead_w.get(),
                             .cache = dcache.get(),
                             .block_tables = dtables.get(),
                             .token_table = dtt.get(),
                             .positions = dpos.get(),
                             .scores = dscores.get(),
                             .ld_scores = P,
                             .tokens = N,
                             .heads = H,
                             .dim = kDim,
                             .block_size = PagedSeqs::kBs,
                             .splits = 3},
                            nullptr));
  CUDA_OK(cuda::IndexTopK({.scores = dscores.get(),
                           .ld_scores = P,
                           .positions = dpos.get(),
                           .out = dtopk.get(),
                           .ld_out = c.topk,
                           .tokens = N,
                           .k = c.topk},
                          nullptr));
  CUDA_OK(cudaDeviceSynchronize());
  const auto g_cache = dcache.ToHost();
  const auto g_codes = dq_codes.ToHost();
  const auto g_w = dhead_w.ToHost();
  const auto g_scores = dscores.ToHost();
  const auto g_topk = dtopk.ToHost();

  // Keys (every written row) and queries.
  CodeDiff keys, queries;
  double scale_err = 0, w_err = 0;
  auto check_row = [&](int32_t slot) {
    const uint8_t* got = g_cache.data() + static_cast<int64_t>(slot) * row_bytes;
    const uint8_t* want = cache.data() + static_cast<int64_t>(slot) * row_bytes;
    const CodeDiff d = CompareCodes(got, want, kDim);
    keys.differ += d.differ;
    keys.far += d.far;
    float sg, sw;
    std::memcpy(&sg, got + kDim, 4);
    std::memcpy(&sw, want + kDim, 4);
    scale_err = std::max(scale_err, std::fabs(static_cast<double>(sg) - sw) / sw);
  };
  for (int32_t s : seqs.old_slots) check_row(s);
  for (int32_t s : seqs.slots) check_row(s);
  for (int64_t r = 0; r < N * H; ++r) {
    const CodeDiff d = CompareCodes(g_codes.data() + r * kDim, q_codes.data() + r * kDim, kDim);
    queries.differ += d.differ;
    queries.far += d.far;
    if (d.differ == 0)
      w_err = std::max(w_err, std::fabs(static_cast<double>(g_w[r]) - head_w[r]) /
                                  std::max(std::fabs(head_w[r]), 1e-30f));
  }
  EXPECT_EQ(keys.far, 0);
  EXPECT_LE(keys.differ, (M + N) * kDim / 200);
  EXPECT_EQ(queries.far, 0);
  EXPECT_LE(queries.differ, N * H * kDim / 200);
  EXPECT_LE(scale_err, 1e-5);
  EXPECT_LE(w_err, 1e-5);

  // Scores and top-k of the GPU's own inputs against the CPU twins.
  double score_err = 0;
  for (int64_t i = 0; i < N; ++i) {
    const int64_t n = seqs.positions[i] + 1;
    std::vector<float> want(n);
    cpu::IndexScores({.q_codes = g_codes.data() + i * H * kDim,
                      .head_weights = g_w.data() + i * H,
                      .keys = {.data = const_cast<uint8_t*>(g_cache.data()),
                               .block_size = PagedSeqs::kBs,
                               .dim = kDim},
                      .block_table = seqs.table_of_token(i),
                      .n_keys = n,
                      .heads = H,
                      .scores = want.data()});
    const std::vector<float> got(g_scores.begin() + i * P, g_scores.begin() + i * P + n);
    score_err = std::max(score_err, MaxRelErr(got, want));
    std::vector<int32_t> top(c.topk, -1);
    cpu::TopKPositions(got.data(), n, c.topk, top.data());
    const std::vector<int32_t> gtop(g_topk.begin() + i * c.topk, g_topk.begin() + (i + 1) * c.topk);
    EXPECT_EQ(gtop, top) << "token " << i << " at position " << seqs.positions[i];
  }
  EXPECT_LE(score_err, 1e-5);
  std::printf("[%s] key codes differing %lld of %lld, query codes %lld of %lld, score err %.3g\n",
              c.name, static_cast<long long>(keys.differ), static_cast<long long>((M + N) * kDim),
              static_cast<long long>(queries.differ), static_cast<long long>(N * H * kDim),
              score_err);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, DsaIndexerGpuTest,
    ::testing::Values(IndexerCase{"prefill_short_and_long", 8, 24, {0, 0}, {9, 70}, false},
                      IndexerCase{"decode_batch", 8, 24, {5, 130, 300, 64}, {1, 1, 1, 1}, false},
                      IndexerCase{"chunk_after_cache_ue8m0", 16, 64, {100, 0}, {17, 3}, true},
                      IndexerCase{"v32_heads_topk_2048", 64, 2048, {2500, 40}, {1, 8}, true},
                      IndexerCase{"v32_heads_prefill", 64, 256, {0}, {600}, false}),
    [](const auto& info) { return std::string(info.param.name); });

// Top-k with many equal scores: the lower positions win ties, positions come out ascending, -1
// padding past min(k, n).
TEST(DsaTopKGpuTest, TiesAndPaddingMatchCpu) {
  SKIP_WITHOUT_CUDA();
  std::mt19937_64 rng(11);
  const std::vector<int64_t> ns = {1, 7, 64, 100, 513, 2048, 5000, 40000};
  const int64_t P = 40000;
  for (int64_t k : {1, 5, 64, 100, 2048, 4096}) {
    std::vector<float> scores(ns.size() * P, 0.f);
    std::vector<int32_t> pos;
    for (size_t r = 0; r < ns.size(); ++r) {
      pos.push_back(static_cast<int32_t>(ns[r] - 1));
      std::uniform_int_distribution<int> d(-3, 4);
      for (int64_t j = 0; j < ns[r]; ++j)
        scores[r * P + j] = r % 2 ? static_cast<float>(d(rng)) * 0.25f
                                  : std::ldexp(static_cast<float>(d(rng)), d(rng));
    }
    DeviceArray<float> ds(scores);
    DeviceArray<int32_t> dpos(pos), dout(ns.size() * k);
    CUDA_OK(cuda::IndexTopK({.scores = ds.get(),
                             .ld_scores = P,
                             .positions = dpos.get(),
                             .out = dout.get(),
                             .ld_out = k,
                             .tokens = static_cast<int64_t>(ns.size()),
                             .k = k},
                            nullptr));
    const auto got = dout.ToHost();
    for (size_t r = 0; r < ns.size(); ++r) {
      std::vector<int32_t> want(k, -1);
      cpu::TopKPositions(scores.data() + r * P, ns[r], k, want.data());
      const std::vector<int32_t> g(got.begin() + r * k, got.begin() + (r + 1) * k);
      EXPECT_EQ(g, want) << "n " << ns[r] << " k " << k;
    }
  }
}

struct SparseCase {
  const char* name;
  int64_t kvl, rope, heads, topk;
  std::vector<int32_t> positions;  // one query token each
  bool f32;
};
std::ostream& operator<<(std::ostream& os, const SparseCase& c) { return os << c.name; }

class SparseMlaGpuTest : public ::testing::TestWithParam<SparseCase> {};

TEST_P(SparseMlaGpuTest, MatchesCpuTwin) {
  SKIP_WITHOUT_CUDA();
  const SparseCase& c = GetParam();
  const int64_t H = c.heads, kvl = c.kvl, width = c.kvl + c.rope, K = c.topk;
  const int64_t N = static_cast<int64_t>(c.positions.size());
  std::vector<int32_t> start(N), one(N, 1);
  for (int64_t i = 0; i < N; ++i) start[i] = c.positions[i];
  const PagedSeqs seqs(start, one, 3);  // each token its own sequence
  const auto cache = gpu_test::RandomBf16Values(seqs.num_blocks * PagedSeqs::kBs * width, 1);
  auto q = gpu_test::RandomBf16Values(N * H * width, 2);
  const float scale = kvl >= 512 ? 0.1f : 0.3f;
  // Each token's selection: a random subset of its positions, ascending, -1 padded.
  std::mt19937_64 rng(5);
  std::vector<int32_t> topk(N * K, -1), lens(N);
  for (int64_t i = 0; i < N; ++i) {
    std::vector<int32_t> all(c.positions[i] + 1);
    std::iota(all.begin(), all.end(), 0);
    std::shuffle(all.begin(), all.end(), rng);
    const int64_t m = std::min<int64_t>(K, static_cast<int64_t>(all.size()));
    std::sort(all.begin(), all.begin() + m);
    std::copy(all.begin(), all.begin() + m, topk.begin() + i * K);
    lens[i] = static_cast<int32_t>(m);
  }
  // CPU: the rows gathered per token into blocks of their own, cpu::MlaDecode.
  std::vector<float> rows(N * K * width, 0.f), q_lat(N * H * kvl), q_pe(N * H * c.rope);
  std::vector<int32_t> tables(N);
  for (int64_t i = 0; i < N; ++i) {
    const cpu::PagedLatentView view{
        .data = cache.data(), .block_size = PagedSeqs::kBs, .width = width};
    for (int32_t j = 0; j < lens[i]; ++j)
      std::memcpy(rows.data() + (i * K + j) * width,
                  view.Row(seqs.table_of_token(i), topk[i * K + j]), width * sizeof(float));
    tables[i] = static_cast<int32_t>(i);
    for (int64_t h = 0; h < H; ++h) {
      const float* src = q.data() + (i * H + h) * width;
      std::copy(src, src + kvl, q_lat.begin() + (i * H + h) * kvl);
      std::copy(src + kvl, src + width, q_pe.begin() + (i * H + h) * c.rope);
    }
  }
  std::vector<float> want(N * H * kvl);
  cpu::MlaDecode({.q_latent = q_lat.data(),
                  .q_pe = q_pe.data(),
                  .cache = {.data = rows.data(), .block_size = K, .width = width},
                  .block_tables = tables.data(),
                  .max_blocks = 1,
                  .seq_lens = lens.data(),
                  .out_latent = want.data(),
                  .batch = N,
                  .heads = H,
                  .kv_lora = kvl,
                  .rope = c.rope,
                  .softmax_scale = scale},
                 gpu_test::ThreadedFor);

  DeviceArray<__nv_bfloat16> dcache(gpu_test::ToBf16(cache));
  DeviceArray<__nv_bfloat16> dq_b(gpu_test::ToBf16(q)), dout_b(N * H * kvl);
  DeviceArray<float> dq_f(q), dout_f(N * H * kvl);
  DeviceArray<int32_t> dtables(seqs.tables), dtt(seqs.token_table), dtopk(topk);
  cuda::SparseMlaParams p{.cache = dcache.get(),
                          .block_tables = dtables.get(),
                          .token_table = dtt.get(),
                          .topk = dtopk.get(),
                          .ld_topk = K,
                          .topk_count = K,
                          .tokens = N,
                          .heads = H,
                          .kv_lora = kvl,
                          .rope = c.rope,
                          .block_size = PagedSeqs::kBs,
                          .softmax_scale = scale};
  if (c.f32) {
    p.q_f32 = dq_f.get();
    p.out_f32 = dout_f.get();
  } else {
    p.q = dq_b.get();
    p.out = dout_b.get();
  }
  CUDA_OK(cuda::SparseMlaAttention(p, nullptr));
  const std::vector<float> got = c.f32 ? dout_f.ToHost() : gpu_test::FromBf16(dout_b.ToHost());
  const double err = MaxRelErr(got, want);
  EXPECT_LE(err, c.f32 ? 1e-4 : 2e-2);
  std::printf("[%s] rel err %.3g\n", c.name, err);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, SparseMlaGpuTest,
    ::testing::Values(SparseCase{"fixture_dims_f32", 112, 16, 4, 24, {0, 5, 23, 24, 69, 200}, true},
                      SparseCase{
                          "v32_dims_bf16", 512, 64, 16, 2048, {0, 700, 2047, 2048, 5000}, false},
                      SparseCase{"v32_dims_f32", 512, 64, 128, 256, {3, 255, 256, 1000}, true}),
    [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace dsinfer
