// MoE on the GPU against the CPU: the fused router (exact expert ids; weights within 1e-5
// relative), the grouped GEMM (f32 output within 1e-4 relative of per-expert cpu::Linear), and
// the whole routed-expert pipeline (permute, gate/up with the SiLU epilogue, down, unpermute with
// weights and a shared-expert term) within 1e-2 relative (activations rounded to bf16 on both).
#include <algorithm>
#include <map>

#include "kernels/cpu/activation.h"
#include "kernels/cpu/linear.h"
#include "kernels/cpu/moe_router.h"
#include "kernels/cuda/moe.h"
#include "tests/gpu/gpu_test_util.h"

namespace dsinfer {
namespace {

using gpu_test::DeviceArray;
using gpu_test::FromBf16;
using gpu_test::MaxRelErr;
using gpu_test::RandomBf16Values;
using gpu_test::ToBf16;

struct RouterCase {
  const char* name;
  int64_t tokens, experts, top_k, n_group, topk_group;
  bool sigmoid, top2, bias, normalize, scale_when_normalized;
  float scale;
};
std::ostream& operator<<(std::ostream& os, const RouterCase& c) { return os << c.name; }

class MoeRouterGpuTest : public ::testing::TestWithParam<RouterCase> {};

TEST_P(MoeRouterGpuTest, MatchesCpu) {
  SKIP_WITHOUT_CUDA();
  const RouterCase& c = GetParam();
  const auto logits = RandomBf16Values(c.tokens * c.experts, 1, 4.0f);
  const auto bias = RandomBf16Values(c.experts, 2, 0.5f);
  std::vector<int32_t> ids(c.tokens * c.top_k);
  std::vector<float> w(c.tokens * c.top_k);
  cpu::MoeRoute(
      {.logits = logits.data(),
       .bias = c.bias ? bias.data() : nullptr,
       .topk_ids = ids.data(),
       .topk_weights = w.data(),
       .tokens = c.tokens,
       .n_experts = c.experts,
       .top_k = c.top_k,
       .n_group = c.n_group,
       .topk_group = c.topk_group,
       .scoring = c.sigmoid ? cpu::RouterScoring::kSigmoid : cpu::RouterScoring::kSoftmax,
       .group_score = c.top2 ? cpu::RouterGroupScore::kTop2Sum : cpu::RouterGroupScore::kMax,
       .normalize = c.normalize,
       .scale = c.scale,
       .scale_when_normalized = c.scale_when_normalized});
  DeviceArray<float> dlogits(logits), dbias(bias), dw(c.tokens * c.top_k);
  DeviceArray<int32_t> dids(c.tokens * c.top_k);
  CUDA_OK(cuda::MoeRoute(
      {.logits = dlogits.get(),
       .bias = c.bias ? dbias.get() : nullptr,
       .topk_ids = dids.get(),
       .topk_weights = dw.get(),
       .tokens = c.tokens,
       .n_experts = c.experts,
       .top_k = c.top_k,
       .n_group = c.n_group,
       .topk_group = c.topk_group,
       .scoring = c.sigmoid ? cuda::MoeScoring::kSigmoid : cuda::MoeScoring::kSoftmax,
       .group_score = c.top2 ? cuda::MoeGroupScore::kTop2Sum : cuda::MoeGroupScore::kMax,
       .normalize = c.normalize,
       .scale = c.scale,
       .scale_when_normalized = c.scale_when_normalized},
      nullptr));
  EXPECT_EQ(dids.ToHost(), ids);
  EXPECT_LE(MaxRelErr(dw.ToHost(), w), 1e-5);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, MoeRouterGpuTest,
    ::testing::Values(
        // name, tokens, E, K, groups, topk_group, sigmoid, top2, bias, norm, scale_norm, scale
        RouterCase{"v2_lite", 37, 64, 6, 1, 1, false, false, false, false, false, 1.0f},
        RouterCase{"v2_group", 128, 160, 6, 8, 3, false, false, false, false, false, 16.0f},
        RouterCase{"v2_group_norm", 5, 16, 4, 4, 2, false, false, false, true, false, 16.0f},
        RouterCase{"v3", 129, 256, 8, 8, 4, true, true, true, true, true, 2.5f},
        RouterCase{"kimi_k2", 3, 384, 8, 1, 1, true, false, true, true, true, 2.827f},
        RouterCase{"one_token", 1, 8, 3, 1, 1, false, false, false, false, false, 1.0f}));

// Experts' weights [E, n, k] and rows routed as `counts` (some empty, some over one m-tile).
TEST(GroupedGemmGpu, StoreF32MatchesPerExpertCpu) {
  SKIP_WITHOUT_CUDA();
  const int64_t E = 7, n = 200, k = 136;
  const std::vector<int32_t> counts = {3, 0, 130, 64, 1, 0, 65};
  std::vector<int32_t> offsets = {0}, tiles = {0};
  for (int32_t c : counts) {
    offsets.push_back(offsets.back() + c);
    tiles.push_back(tiles.back() + (c + 63) / 64);
  }
  const int64_t rows = offsets.back();
  const auto a = RandomBf16Values(rows * k, 3), w = RandomBf16Values(E * n * k, 4, 0.1f);
  std::vector<float> want(rows * n);
  for (int64_t e = 0; e < E; ++e) {
    if (!counts[e]) continue;
    std::vector<uint16_t> wb(n * k);
    for (int64_t i = 0; i < n * k; ++i) wb[i] = F32ToBf16(w[e * n * k + i]);
    cpu::Linear({.x = a.data() + offsets[e] * k,
                 .w = wb.data(),
                 .y = want.data() + offsets[e] * n,
                 .m = counts[e],
                 .n = n,
                 .k = k,
                 .w_bf16 = true},
                cpu::SerialFor);
  }
  DeviceArray<__nv_bfloat16> da(ToBf16(a)), dw(ToBf16(w));
  DeviceArray<int32_t> doff(offsets), dtiles(tiles);
  DeviceArray<float> dc(rows * n);
  CUDA_OK(cuda::GroupedGemm({.a = da.get(),
                             .w = dw.get(),
                             .expert_offsets = doff.get(),
                             .tile_offsets = dtiles.get(),
                             .n_experts = E,
                             .n = n,
                             .k = k,
                             .lda = k,
                             .max_tiles = cuda::GroupedGemmMaxTiles(rows, E),
                             .c = dc.get(),
                             .ldc = n},
                            nullptr));
  EXPECT_LE(MaxRelErr(dc.ToHost(), want), 1e-4);
}

class MoePipelineGpuTest : public ::testing::TestWithParam<int64_t> {};

// Route on the CPU, then run permute -> grouped gate/up (SiLU) -> grouped down -> unpermute on
// the GPU and compare x + sum_k w_k expert_k(x) + shared with the CPU computation.
TEST_P(MoePipelineGpuTest, MatchesCpu) {
  SKIP_WITHOUT_CUDA();
  const int64_t T = GetParam(), E = 16, K = 4, D = 128, I = 72;  // I: a partial 64-block
  const auto x = RandomBf16Values(T * D, 5), resid = RandomBf16Values(T * D, 6);
  const auto shared = RandomBf16Values(T * D, 7);
  const auto wg = RandomBf16Values(E * I * D, 8, 0.15f), wu = RandomBf16Values(E * I * D, 9, 0.15f);
  const auto wd = RandomBf16Values(E * D * I, 10, 0.15f);
  const auto logits = RandomBf16Values(T * E, 11, 3.0f);
  std::vector<int32_t> ids(T * K);
  std::vector<float> wts(T * K);
  cpu::MoeRoute({.logits = logits.data(),
                 .bias = nullptr,
                 .topk_ids = ids.data(),
                 .topk_weights = wts.data(),
                 .tokens = T,
                 .n_experts = E,
                 .top_k = K,
                 .normalize = true});
  auto bits = [](const std::vector<float>& v, int64_t off, int64_t n) {
    std::vector<uint16_t> b(n);
    for (int64_t i = 0; i < n; ++i) b[i] = F32ToBf16(v[off + i]);
    return b;
  };
  // CPU: out = resid + (sum over the token's experts in ascending id) + shared
  std::vector<float> want = resid;
  for (int64_t t = 0; t < T; ++t) {
    std::vector<std::pair<int32_t, float>> ek;
    for (int64_t k = 0; k < K; ++k) ek.push_back({ids[t * K + k], wts[t * K + k]});
    std::sort(ek.begin(), ek.end());
    std::vector<float> acc(D, 0.f);
    for (const auto& [e, wt] : ek) {
      std::vector<float> gu(2 * I), act(I), y(D);
      const auto g = bits(wg, e * I * D, I * D), u = bits(wu, e * I * D, I * D);
      std::vector<uint16_t> guw(g);
      guw.insert(guw.end(), u.begin(), u.end());
      cpu::Linear({.x = x.data() + t * D,
                   .w = guw.data(),
                   .y = gu.data(),
                   .m = 1,
                   .n = 2 * I,
                   .k = D,
                   .w_bf16 = true},
                  cpu::SerialFor);
      cpu::SiluMul(gu.data(), act.data(), 1, I);
      const auto d = bits(wd, e * D * I, D * I);
      cpu::Linear(
          {.x = act.data(), .w = d.data(), .y = y.data(), .m = 1, .n = D, .k = I, .w_bf16 = true},
          cpu::SerialFor);
      for (int64_t j = 0; j < D; ++j) acc[j] += wt * y[j];
    }
    for (int64_t j = 0; j < D; ++j) want[t * D + j] += acc[j] + shared[t * D + j];
  }

  // GPU weights: gate/up interleaved per expert.
  std::vector<uint16_t> gu_all(E * 2 * I * D);
  for (int64_t e = 0; e < E; ++e) {
    const auto g = bits(wg, e * I * D, I * D), u = bits(wu, e * I * D, I * D);
    cuda::InterleaveGateUp(g.data(), u.data(), I, D, gu_all.data() + e * 2 * I * D);
  }
  DeviceArray<uint16_t> dgu(gu_all);
  DeviceArray<__nv_bfloat16> dx(ToBf16(x)), dwd(ToBf16(wd)), dact(T * K * I);
  DeviceArray<int32_t> dids(ids), doff(E + 1), dtiles(E + 1), dslot(T * K), drow(T * K);
  DeviceArray<float> dwts(wts), dy(T * K * D), dshared(shared), dout(resid);
  DeviceArray<int64_t> dload(E);
  CUDA_OK(cuda::MoePermute({.topk_ids = dids.get(),
                            .tokens = T,
                            .top_k = K,
                            .n_experts = E,
                            .expert_offsets = doff.get(),
                            .tile_offsets = dtiles.get(),
                            .slot_of = dslot.get(),
                            .row_token = drow.get(),
                            .expert_load = dload.get()},
                           nullptr));
  const int64_t max_tiles = cuda::GroupedGemmMaxTiles(T * K, E);
  CUDA_OK(cuda::GroupedGemm({.a = dx.get(),
                             .a_row_index = drow.get(),
                             .w = reinterpret_cast<const __nv_bfloat16*>(dgu.get()),
                             .expert_offsets = doff.get(),
                             .tile_offsets = dtiles.get(),
                             .n_experts = E,
                             .n = 2 * I,
                             .k = D,
                             .lda = D,
                             .max_tiles = max_tiles,
                             .epilogue = cuda::GroupedEpilogue::kSiluMul,
                             .act = dact.get(),
                             .ldc = I},
                            nullptr));
  CUDA_OK(cuda::GroupedGemm({.a = dact.get(),
                             .w = dwd.get(),
                             .expert_offsets = doff.get(),
                             .tile_offsets = dtiles.get(),
                             .n_experts = E,
                             .n = D,
                             .k = I,
                             .lda = I,
                             .max_tiles = max_tiles,
                             .c = dy.get(),
                             .ldc = D},
                            nullptr));
  CUDA_OK(cuda::MoeUnpermute({.y = dy.get(),
                              .slot_of = dslot.get(),
                              .topk_ids = dids.get(),
                              .topk_weights = dwts.get(),
                              .shared = dshared.get(),
                              .x = dout.get(),
                              .tokens = T,
                              .top_k = K,
                              .dim = D},
                             nullptr));
  EXPECT_LE(MaxRelErr(dout.ToHost(), want), 1e-2) << "tokens " << T;
  // Bookkeeping: offsets are the prefix sums of the expert counts, every slot used once.
  std::map<int32_t, int64_t> count;
  for (int32_t e : ids) ++count[e];
  const auto off = doff.ToHost();
  const auto load = dload.ToHost();
  for (int64_t e = 0; e < E; ++e) {
    EXPECT_EQ(off[e + 1] - off[e], count[e]);
    EXPECT_EQ(load[e], count[e]);
  }
  auto slots = dslot.ToHost();
  std::sort(slots.begin(), slots.end());
  for (int64_t i = 0; i < T * K; ++i) ASSERT_EQ(slots[i], i);
}

INSTANTIATE_TEST_SUITE_P(Tokens, MoePipelineGpuTest, ::testing::Values(1, 5, 37, 300));

}  // namespace
}  // namespace dsinfer
