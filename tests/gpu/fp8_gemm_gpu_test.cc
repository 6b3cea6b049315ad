// FP8 GEMMs on the GPU against their CPU twins (kernels/cpu/fp8_gemm.h):
//  - ActQuantFp8: codes and scales equal bit for bit (bf16 and f32 inputs, strides, tails);
//  - Fp8Gemm / Fp8GroupedGemm (f32 out): within 1e-3 of max |ref| of cpu::Fp8BlockGemmRef on the
//    same codes and scales. Only the order of additions inside a 128-wide block differs (the
//    tensor cores add 32 products at a time and, on Hopper, keep about 14 bits while doing so:
//    ~1e-4 of a block's magnitude), the promotion is the same formula;
//  - bf16 outputs (Fp8Gemm y_bf16, the SiLU epilogue) add bf16 rounding: within 5e-3.
// Host-side checks (argument validation, the gate/up interleaving) run without a GPU.
#include <algorithm>
#include <numeric>

#include "kernels/cpu/fp8.h"
#include "kernels/cpu/fp8_gemm.h"
#include "kernels/cuda/fp8_gemm.h"
#include "kernels/cuda/moe.h"
#include "tests/gpu/gpu_test_util.h"

namespace dsinfer {
namespace {

using gpu_test::DeviceArray;
using gpu_test::FromBf16;
using gpu_test::MaxRelErr;
using gpu_test::RandomBf16Values;
using gpu_test::ThreadedFor;
using gpu_test::ToBf16;

#define SKIP_WITHOUT_FP8()                                                                    \
  do {                                                                                        \
    SKIP_WITHOUT_CUDA();                                                                      \
    if (!cuda::Fp8GemmSupported())                                                            \
      GTEST_SKIP() << "no sm_89+ FP8 binary for this GPU (build with 89-real or 90a-real)"; \
  } while (0)

int64_t Blocks(int64_t x) { return (x + 127) / 128; }

// Weights quantised like DeepSeek-V3 checkpoints: 128 x 128 blocks, scale_inv = amax / 448.
struct Fp8Weights {
  std::vector<uint8_t> codes;  // [n, k]
  std::vector<float> scale;    // [ceil(n / 128), ceil(k / 128)]
};

Fp8Weights QuantizeWeights(const std::vector<float>& w, int64_t n, int64_t k) {
  Fp8Weights q;
  q.codes.resize(n * k);
  q.scale.resize(Blocks(n) * Blocks(k));
  for (int64_t bi = 0; bi < Blocks(n); ++bi)
    for (int64_t bj = 0; bj < Blocks(k); ++bj) {
      const int64_t i1 = std::min(n, bi * 128 + 128), j1 = std::min(k, bj * 128 + 128);
      float amax = 0;
      for (int64_t i = bi * 128; i < i1; ++i)
        for (int64_t j = bj * 128; j < j1; ++j) amax = std::max(amax, std::fabs(w[i * k + j]));
      const float s = amax > 0 ? amax / 448.0f : 1.0f;
      q.scale[bi * Blocks(k) + bj] = s;
      for (int64_t i = bi * 128; i < i1; ++i)
        for (int64_t j = bj * 128; j < j1; ++j) q.codes[i * k + j] = cpu::F32ToE4M3(w[i * k + j] / s);
    }
  return q;
}

// Activations quantised on the CPU (codes [m, k], scales [m, ceil(k / 128)]).
struct Fp8Acts {
  std::vector<uint8_t> codes;
  std::vector<float> scale;
};

Fp8Acts QuantizeActs(const std::vector<float>& x, int64_t m, int64_t k) {
  Fp8Acts a{std::vector<uint8_t>(m * k), std::vector<float>(m * Blocks(k))};
  cpu::ActQuantFp8({.x = x.data(), .q = a.codes.data(), .scale = a.scale.data(), .m = m, .k = k});
  return a;
}

std::vector<float> RefGemm(const Fp8Acts& a, const Fp8Weights& w, int64_t m, int64_t n,
                           int64_t k) {
  std::vector<float> y(m * n);
  cpu::Fp8BlockGemmRef({.a = a.codes.data(), .a_scale = a.scale.data(), .w = w.codes.data(),
                        .w_scale_inv = w.scale.data(), .y = y.data(), .m = m, .n = n, .k = k},
                       ThreadedFor);
  return y;
}

// ---------------------------------------------------------------------------------------------
// ActQuantFp8

struct QuantCase {
  int64_t m, k;
};
std::ostream& operator<<(std::ostream& os, const QuantCase& c) {
  return os << "m" << c.m << "_k" << c.k;
}

class ActQuantFp8GpuTest : public ::testing::TestWithParam<QuantCase> {};

TEST_P(ActQuantFp8GpuTest, CodesAndScalesEqualTheCpu) {
  SKIP_WITHOUT_CUDA();
  const auto [m, k] = GetParam();
  const int64_t ldx = k + 5, ldq = k + 16, kb = Blocks(k), lds = kb + 1;
  auto x = RandomBf16Values(m * ldx, 1, 3.0f);
  // Special values: zeros of both signs, tiny values, a block under the 1e-4 floor.
  x[0] = 0.0f;
  if (k > 1) x[1] = -0.0f;
  if (k > 2) x[2] = RoundToBf16(1e-30f);
  for (int64_t j = 0; j < std::min<int64_t>(k, 128); ++j)
    if (m > 1) x[ldx + j] = RoundToBf16(x[ldx + j] * 1e-6f);
  std::vector<uint8_t> want_q(m * ldq, 0xcd);
  std::vector<float> want_s(m * lds, -1.0f);
  cpu::ActQuantFp8({.x = x.data(), .q = want_q.data(), .scale = want_s.data(), .m = m, .k = k,
                    .ldx = ldx, .ldq = ldq, .ld_scale = lds});
  for (bool f32 : {false, true}) {
    SCOPED_TRACE(f32 ? "f32 input" : "bf16 input");
    DeviceArray<__nv_bfloat16> dxb(ToBf16(x));
    DeviceArray<float> dxf(x);
    DeviceArray<uint8_t> dq(std::vector<uint8_t>(m * ldq, 0xcd));
    DeviceArray<float> ds(std::vector<float>(m * lds, -1.0f));
    CUDA_OK(cuda::ActQuantFp8({.x = f32 ? static_cast<const void*>(dxf.get()) : dxb.get(),
                               .x_f32 = f32, .q = dq.get(), .scale = ds.get(), .m = m, .k = k,
                               .ldx = ldx, .ldq = ldq, .ld_scale = lds},
                              nullptr));
    EXPECT_EQ(dq.ToHost(), want_q);
    EXPECT_EQ(ds.ToHost(), want_s);
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, ActQuantFp8GpuTest,
                         ::testing::Values(QuantCase{1, 7168}, QuantCase{5, 300},
                                           QuantCase{64, 2048}, QuantCase{300, 1408},
                                           QuantCase{3, 1}));

// ---------------------------------------------------------------------------------------------
// Fp8Gemm

struct GemmCase {
  int64_t m, n, k;
};
std::ostream& operator<<(std::ostream& os, const GemmCase& c) {
  return os << "m" << c.m << "_n" << c.n << "_k" << c.k;
}

class Fp8GemmGpuTest : public ::testing::TestWithParam<GemmCase> {};

TEST_P(Fp8GemmGpuTest, MatchesTheCpuReference) {
  SKIP_WITHOUT_FP8();
  const auto [m, n, k] = GetParam();
  const auto x = RandomBf16Values(m * k, 2, 2.0f);
  const auto wf = RandomBf16Values(n * k, 3, 0.05f);
  const Fp8Acts a = QuantizeActs(x, m, k);
  const Fp8Weights w = QuantizeWeights(wf, n, k);
  const auto want = RefGemm(a, w, m, n, k);
  DeviceArray<uint8_t> da(a.codes), dw(w.codes);
  DeviceArray<float> das(a.scale), dws(w.scale);

  // f32 out, then accumulate on top of it into a strided y.
  const int64_t ldy = n + 3;
  DeviceArray<float> dy(m * ldy);
  cuda::Fp8GemmParams p{.a = da.get(), .a_scale = das.get(), .w = dw.get(), .w_scale = dws.get(),
                        .y = dy.get(), .m = m, .n = n, .k = k, .ldy = ldy};
  CUDA_OK(cuda::Fp8Gemm(p, nullptr));
  auto y = dy.ToHost();
  std::vector<float> got(m * n);
  for (int64_t i = 0; i < m; ++i)
    std::copy(y.begin() + i * ldy, y.begin() + i * ldy + n, got.begin() + i * n);
  EXPECT_LE(MaxRelErr(got, want), 1e-3);
  p.accumulate = true;
  CUDA_OK(cuda::Fp8Gemm(p, nullptr));
  y = dy.ToHost();
  std::vector<float> twice(m * n), want2(m * n);
  for (int64_t i = 0; i < m * n; ++i) want2[i] = 2 * want[i];
  for (int64_t i = 0; i < m; ++i)
    std::copy(y.begin() + i * ldy, y.begin() + i * ldy + n, twice.begin() + i * n);
  EXPECT_LE(MaxRelErr(twice, want2), 1e-3);

  // bf16 out.
  DeviceArray<__nv_bfloat16> dyb(m * n);
  CUDA_OK(cuda::Fp8Gemm({.a = da.get(), .a_scale = das.get(), .w = dw.get(),
                         .w_scale = dws.get(), .y_bf16 = dyb.get(), .m = m, .n = n, .k = k},
                        nullptr));
  EXPECT_LE(MaxRelErr(FromBf16(dyb.ToHost()), want), 5e-3);

  // Split-k: the same within tolerance, and the same bits on every run.
  const int64_t splits = std::min<int64_t>(3, Blocks(k));
  DeviceArray<float> ws(splits * m * n), ys(m * n), ys2(m * n);
  cuda::Fp8GemmParams ps{.a = da.get(), .a_scale = das.get(), .w = dw.get(),
                         .w_scale = dws.get(), .y = ys.get(), .m = m, .n = n, .k = k,
                         .k_splits = splits, .workspace = ws.get()};
  CUDA_OK(cuda::Fp8Gemm(ps, nullptr));
  ps.y = ys2.get();
  CUDA_OK(cuda::Fp8Gemm(ps, nullptr));
  const auto split = ys.ToHost();
  EXPECT_LE(MaxRelErr(split, want), 1e-3);
  EXPECT_EQ(split, ys2.ToHost());
}

INSTANTIATE_TEST_SUITE_P(Shapes, Fp8GemmGpuTest,
                         ::testing::Values(GemmCase{1, 200, 272}, GemmCase{5, 129, 1408},
                                           GemmCase{64, 384, 512}, GemmCase{300, 70, 144},
                                           GemmCase{1, 2048, 7168}, GemmCase{65, 257, 16}));

// A column slice of a wider weight matrix (tensor-parallel rows of o_proj): ldw and ld_w_scale
// view it in place, bit for bit what the copied slice gives.
TEST(Fp8GemmGpu, ColumnSliceViewEqualsTheCopiedSlice) {
  SKIP_WITHOUT_FP8();
  const int64_t m = 7, n = 150, K = 640, k0 = 128, k = 384;
  const Fp8Weights wide = QuantizeWeights(RandomBf16Values(n * K, 30, 0.05f), n, K);
  Fp8Weights slice;
  for (int64_t i = 0; i < n; ++i)
    slice.codes.insert(slice.codes.end(), wide.codes.begin() + i * K + k0,
                       wide.codes.begin() + i * K + k0 + k);
  for (int64_t bi = 0; bi < Blocks(n); ++bi)
    for (int64_t b = 0; b < Blocks(k); ++b)
      slice.scale.push_back(wide.scale[bi * Blocks(K) + k0 / 128 + b]);
  const Fp8Acts a = QuantizeActs(RandomBf16Values(m * k, 31, 2.0f), m, k);
  DeviceArray<uint8_t> da(a.codes), dwide(wide.codes), dslice(slice.codes);
  DeviceArray<float> das(a.scale), dwides(wide.scale), dslices(slice.scale), y1(m * n), y2(m * n);
  CUDA_OK(cuda::Fp8Gemm({.a = da.get(), .a_scale = das.get(), .w = dslice.get(),
                         .w_scale = dslices.get(), .y = y1.get(), .m = m, .n = n, .k = k},
                        nullptr));
  CUDA_OK(cuda::Fp8Gemm({.a = da.get(), .a_scale = das.get(), .w = dwide.get() + k0,
                         .w_scale = dwides.get() + k0 / 128, .y = y2.get(), .m = m, .n = n,
                         .k = k, .ldw = K, .ld_w_scale = Blocks(K)},
                        nullptr));
  EXPECT_EQ(y1.ToHost(), y2.ToHost());
  EXPECT_LE(MaxRelErr(y1.ToHost(), RefGemm(a, slice, m, n, k)), 1e-3);
}

// ---------------------------------------------------------------------------------------------
// Fp8GroupedGemm

// Experts with rows {3, 0, 130, 64, 1, 0, 65}; A rows gathered through a permutation.
TEST(Fp8GroupedGemmGpu, StoreF32MatchesPerExpertReference) {
  SKIP_WITHOUT_FP8();
  const int64_t E = 7, n = 200, k = 272;
  const std::vector<int32_t> counts = {3, 0, 130, 64, 1, 0, 65};
  std::vector<int32_t> offsets = {0}, tiles = {0};
  for (int32_t c : counts) {
    offsets.push_back(offsets.back() + c);
    tiles.push_back(tiles.back() + (c + 63) / 64);
  }
  const int64_t rows = offsets.back();
  std::vector<int32_t> index(rows);
  std::iota(index.begin(), index.end(), 0);
  std::mt19937 rng(5);
  std::shuffle(index.begin(), index.end(), rng);
  const auto x = RandomBf16Values(rows * k, 6, 2.0f);
  const Fp8Acts a = QuantizeActs(x, rows, k);
  std::vector<uint8_t> w_all;
  std::vector<float> s_all, want(rows * n);
  for (int64_t e = 0; e < E; ++e) {
    const Fp8Weights w = QuantizeWeights(RandomBf16Values(n * k, 10 + e, 0.05f), n, k);
    w_all.insert(w_all.end(), w.codes.begin(), w.codes.end());
    s_all.insert(s_all.end(), w.scale.begin(), w.scale.end());
    Fp8Acts ae;  // the expert's rows, gathered
    for (int32_t r = offsets[e]; r < offsets[e + 1]; ++r) {
      ae.codes.insert(ae.codes.end(), a.codes.begin() + index[r] * k,
                      a.codes.begin() + (index[r] + 1) * k);
      ae.scale.insert(ae.scale.end(), a.scale.begin() + index[r] * Blocks(k),
                      a.scale.begin() + (index[r] + 1) * Blocks(k));
    }
    const auto ye = RefGemm(ae, w, counts[e], n, k);
    std::copy(ye.begin(), ye.end(), want.begin() + offsets[e] * n);
  }
  DeviceArray<uint8_t> da(a.codes), dw(w_all);
  DeviceArray<float> das(a.scale), dws(s_all), dc(rows * n);
  DeviceArray<int32_t> dindex(index), doff(offsets), dtiles(tiles);
  CUDA_OK(cuda::Fp8GroupedGemm({.a = da.get(), .a_scale = das.get(), .a_row_index = dindex.get(),
                                .w = dw.get(), .w_scale = dws.get(),
                                .expert_offsets = doff.get(), .tile_offsets = dtiles.get(),
                                .n_experts = E, .n = n, .k = k,
                                .max_tiles = cuda::GroupedGemmMaxTiles(rows, E),
                                .c = dc.get(), .ldc = n},
                               nullptr));
  EXPECT_LE(MaxRelErr(dc.ToHost(), want), 1e-3);
}

float Silu(float v) { return v / (1.0f + std::exp(-v)); }

class Fp8MoeGpuTest : public ::testing::TestWithParam<int64_t> {};

// Route tokens, permute on the GPU, then gate/up (FP8, SiLU epilogue) -> act_quant -> down (FP8)
// against the CPU reference on the GPU's own permutation. E = 16, top-4, inter 80 (a partial
// 64-feature block), hidden 144 (a partial 128-block): experts with zero rows at small counts.
TEST_P(Fp8MoeGpuTest, GateUpSiluAndDownMatchTheCpu) {
  SKIP_WITHOUT_FP8();
  const int64_t T = GetParam(), E = 16, K = 4, D = 144, I = 80;
  const auto x = RandomBf16Values(T * D, 20, 2.0f);
  std::vector<int32_t> ids(T * K);
  std::mt19937 rng(21);
  for (int64_t t = 0; t < T; ++t) {
    std::vector<int32_t> perm(E);
    std::iota(perm.begin(), perm.end(), 0);
    std::shuffle(perm.begin(), perm.end(), rng);
    std::copy(perm.begin(), perm.begin() + K, ids.begin() + t * K);
  }
  // Weights per expert: gate, up [I, D] and down [D, I], each with its checkpoint scales.
  std::vector<Fp8Weights> gate(E), up(E), down(E);
  std::vector<uint8_t> gu_codes(E * 2 * I * D), down_codes;
  const int64_t gu_scale_rows = 2 * ((I + 63) / 64);
  std::vector<float> gu_scale(E * gu_scale_rows * Blocks(D)), down_scale;
  for (int64_t e = 0; e < E; ++e) {
    gate[e] = QuantizeWeights(RandomBf16Values(I * D, 100 + e, 0.1f), I, D);
    up[e] = QuantizeWeights(RandomBf16Values(I * D, 200 + e, 0.1f), I, D);
    down[e] = QuantizeWeights(RandomBf16Values(D * I, 300 + e, 0.1f), D, I);
    cuda::InterleaveGateUpFp8(gate[e].codes.data(), gate[e].scale.data(), up[e].codes.data(),
                              up[e].scale.data(), I, D, gu_codes.data() + e * 2 * I * D,
                              gu_scale.data() + e * gu_scale_rows * Blocks(D));
    down_codes.insert(down_codes.end(), down[e].codes.begin(), down[e].codes.end());
    down_scale.insert(down_scale.end(), down[e].scale.begin(), down[e].scale.end());
  }

  // GPU: act_quant(x) -> permute -> gate/up + SiLU -> act_quant(act) -> down.
  const int64_t rows = T * K, max_tiles = cuda::GroupedGemmMaxTiles(rows, E);
  DeviceArray<__nv_bfloat16> dx(ToBf16(x)), dact(rows * I);
  DeviceArray<uint8_t> dxq(T * D), dactq(rows * I), dgu(gu_codes), dd(down_codes);
  DeviceArray<float> dxs(T * Blocks(D)), dacts(rows * Blocks(I)), dgus(gu_scale),
      dds(down_scale), dy(rows * D);
  DeviceArray<int32_t> dids(ids), doff(E + 1), dtiles(E + 1), dslot(rows), drow(rows);
  CUDA_OK(cuda::ActQuantFp8({.x = dx.get(), .q = dxq.get(), .scale = dxs.get(), .m = T, .k = D},
                            nullptr));
  CUDA_OK(cuda::MoePermute({.topk_ids = dids.get(), .tokens = T, .top_k = K, .n_experts = E,
                            .expert_offsets = doff.get(), .tile_offsets = dtiles.get(),
                            .slot_of = dslot.get(), .row_token = drow.get()},
                           nullptr));
  CUDA_OK(cuda::Fp8GroupedGemm({.a = dxq.get(), .a_scale = dxs.get(), .a_row_index = drow.get(),
                                .w = dgu.get(), .w_scale = dgus.get(),
                                .expert_offsets = doff.get(), .tile_offsets = dtiles.get(),
                                .n_experts = E, .n = 2 * I, .k = D, .max_tiles = max_tiles,
                                .epilogue = cuda::GroupedEpilogue::kSiluMul, .act = dact.get(),
                                .ldc = I},
                               nullptr));
  CUDA_OK(cuda::ActQuantFp8({.x = dact.get(), .q = dactq.get(), .scale = dacts.get(), .m = rows,
                             .k = I},
                            nullptr));
  CUDA_OK(cuda::Fp8GroupedGemm({.a = dactq.get(), .a_scale = dacts.get(), .w = dd.get(),
                                .w_scale = dds.get(), .expert_offsets = doff.get(),
                                .tile_offsets = dtiles.get(), .n_experts = E, .n = D, .k = I,
                                .max_tiles = max_tiles, .c = dy.get(), .ldc = D},
                               nullptr));
  const auto act = FromBf16(dact.ToHost());

  // CPU on the GPU's permutation.
  const auto off = doff.ToHost();
  const auto row_token = drow.ToHost();
  const Fp8Acts xq = QuantizeActs(x, T, D);
  std::vector<float> want_act(rows * I), want_y(rows * D);
  for (int64_t e = 0; e < E; ++e) {
    const int64_t c = off[e + 1] - off[e];
    if (c == 0) continue;
    Fp8Acts ae;
    for (int32_t r = off[e]; r < off[e + 1]; ++r) {
      const int64_t t = row_token[r];
      ae.codes.insert(ae.codes.end(), xq.codes.begin() + t * D, xq.codes.begin() + (t + 1) * D);
      ae.scale.insert(ae.scale.end(), xq.scale.begin() + t * Blocks(D),
                      xq.scale.begin() + (t + 1) * Blocks(D));
    }
    const auto g = RefGemm(ae, gate[e], c, I, D), u = RefGemm(ae, up[e], c, I, D);
    for (int64_t i = 0; i < c * I; ++i) want_act[off[e] * I + i] = Silu(g[i]) * u[i];
    // Down on the GPU's bf16 act (so this stage is checked on its own input).
    const std::vector<float> act_e(act.begin() + off[e] * I, act.begin() + off[e + 1] * I);
    const auto y = RefGemm(QuantizeActs(act_e, c, I), down[e], c, D, I);
    std::copy(y.begin(), y.end(), want_y.begin() + off[e] * D);
  }
  EXPECT_LE(MaxRelErr(act, want_act), 5e-3) << "tokens " << T;
  EXPECT_LE(MaxRelErr(dy.ToHost(), want_y), 1e-3) << "tokens " << T;
}

INSTANTIATE_TEST_SUITE_P(Tokens, Fp8MoeGpuTest, ::testing::Values(1, 5, 64, 300));

// ---------------------------------------------------------------------------------------------
// Host side (no GPU needed)

TEST(Fp8GemmHost, InterleavedScalesFollowTheirRows) {
  const int64_t I = 200, k = 300, kb = Blocks(k);  // blocks of 64, 64, 64, 8 features
  std::vector<uint8_t> gate(I * k), up(I * k), dst(2 * I * k);
  for (int64_t i = 0; i < I * k; ++i) {
    gate[i] = static_cast<uint8_t>(i / k);         // gate row f holds f
    up[i] = static_cast<uint8_t>(128 + (i / k) % 100);
  }
  std::vector<float> gs(Blocks(I) * kb), us(Blocks(I) * kb), ds(2 * 4 * kb, -1.0f);
  for (size_t i = 0; i < gs.size(); ++i) gs[i] = 1.0f + i, us[i] = 100.0f + i;
  cuda::InterleaveGateUpFp8(gate.data(), gs.data(), up.data(), us.data(), I, k, dst.data(),
                            ds.data());
  for (int64_t t = 0; t < 4; ++t) {
    const int64_t f0 = 64 * t, w = std::min<int64_t>(64, I - f0);
    for (int64_t r = 0; r < w; ++r) {
      EXPECT_EQ(dst[(2 * f0 + r) * k], gate[(f0 + r) * k]) << t << "," << r;
      EXPECT_EQ(dst[(2 * f0 + w + r) * k + k - 1], up[(f0 + r) * k + k - 1]) << t << "," << r;
    }
    for (int64_t b = 0; b < kb; ++b) {
      EXPECT_EQ(ds[(2 * t) * kb + b], gs[(f0 / 128) * kb + b]) << t;
      EXPECT_EQ(ds[(2 * t + 1) * kb + b], us[(f0 / 128) * kb + b]) << t;
    }
  }
}

TEST(Fp8GemmHost, RejectsShapesItCannotRun) {
  alignas(16) static uint8_t buf[4096];
  float y[16];
  __nv_bfloat16 yb[16];
  cuda::Fp8GemmParams ok{.a = buf, .a_scale = y, .w = buf, .w_scale = y, .y = y, .m = 1, .n = 1,
                         .k = 32};
  auto with = [&](auto change) {
    cuda::Fp8GemmParams p = ok;
    change(p);
    return cuda::Fp8Gemm(p, nullptr);
  };
  EXPECT_EQ(with([](auto& p) { p.k = 30; }), cudaErrorInvalidValue);          // k % 16
  EXPECT_EQ(with([](auto& p) { p.lda = 40; }), cudaErrorInvalidValue);        // stride % 16
  EXPECT_EQ(with([&](auto& p) { p.a = buf + 1; }), cudaErrorInvalidValue);    // alignment
  EXPECT_EQ(with([&](auto& p) { p.y_bf16 = yb; }), cudaErrorInvalidValue);    // two outputs
  EXPECT_EQ(with([](auto& p) { p.y = nullptr; }), cudaErrorInvalidValue);     // no output
  EXPECT_EQ(with([&](auto& p) { p.y = nullptr, p.y_bf16 = yb, p.accumulate = true; }),
            cudaErrorInvalidValue);                                           // bf16 += 
  EXPECT_EQ(with([](auto& p) { p.k_splits = 2; }), cudaErrorInvalidValue);    // no workspace
  EXPECT_EQ(with([](auto& p) { p.m = 0; }), cudaSuccess);                     // nothing to do
  cuda::Fp8GroupedGemmParams g{.a = buf, .a_scale = y, .w = buf, .w_scale = y, .n_experts = 1,
                               .n = 3, .k = 32, .max_tiles = 1,
                               .epilogue = cuda::GroupedEpilogue::kSiluMul, .act = yb, .ldc = 1};
  EXPECT_EQ(cuda::Fp8GroupedGemm(g, nullptr), cudaErrorInvalidValue);  // odd n for SiLU
  g.n = 4;
  g.k = 24;
  EXPECT_EQ(cuda::Fp8GroupedGemm(g, nullptr), cudaErrorInvalidValue);  // k % 16
}

TEST(Fp8GemmHost, SplitSuggestion) {
  EXPECT_EQ(cuda::Fp8GemmSplits(4096, 7168, 2048, 132), 1);  // tiles fill the device
  EXPECT_EQ(cuda::Fp8GemmSplits(1, 7168, 256, 132), 1);     // too few k-blocks
  const int64_t s = cuda::Fp8GemmSplits(1, 1536, 7168, 132);  // 12 tiles, 56 k-blocks
  EXPECT_GT(s, 1);
  EXPECT_LE(s, 16);
  EXPECT_GE(12 * s, 132);
}

}  // namespace
}  // namespace dsinfer
