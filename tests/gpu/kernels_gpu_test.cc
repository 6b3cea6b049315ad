// Row-wise GPU kernels against their CPU twins: RMSNorm (+ fused residual, gather), embedding,
// SwiGLU, RoPE, the MLA cache append and query preparation, and the cuBLAS GEMM wrappers.
// Tolerances (max |got - want| / max |want|): 1e-5 for f32 outputs of f32 math, 1e-2 for
// outputs rounded to bf16, 1e-4 for bf16-input GEMMs with f32 outputs.
#include <cublas_v2.h>

#include "kernels/cpu/activation.h"
#include "kernels/cpu/linear.h"
#include "kernels/cpu/rmsnorm.h"
#include "kernels/cpu/rope.h"
#include "kernels/cuda/elementwise.h"
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/rmsnorm.h"
#include "kernels/cuda/rope.h"
#include "tests/gpu/gpu_test_util.h"

namespace dsinfer {
namespace {

using gpu_test::DeviceArray;
using gpu_test::FromBf16;
using gpu_test::MaxRelErr;
using gpu_test::RandomBf16Values;
using gpu_test::ToBf16;

class RmsNormGpuTest : public ::testing::TestWithParam<std::pair<int64_t, int64_t>> {};

TEST_P(RmsNormGpuTest, MatchesCpu) {
  SKIP_WITHOUT_CUDA();
  const auto [rows, dim] = GetParam();
  const auto x = RandomBf16Values(rows * dim, 1, 3.0f), w = RandomBf16Values(dim, 2);
  std::vector<float> want(rows * dim);
  cpu::RmsNorm(
      {.x = x.data(), .w = w.data(), .y = want.data(), .rows = rows, .dim = dim, .eps = 1e-6f});
  DeviceArray<float> dx(x), dw(w), dy(rows * dim);
  DeviceArray<__nv_bfloat16> dyb(rows * dim);
  CUDA_OK(cuda::RmsNorm({.x = dx.get(),
                         .w = dw.get(),
                         .y_f32 = dy.get(),
                         .y_bf16 = dyb.get(),
                         .rows = rows,
                         .dim = dim,
                         .eps = 1e-6f},
                        nullptr));
  EXPECT_LE(MaxRelErr(dy.ToHost(), want), 1e-5);
  EXPECT_LE(MaxRelErr(FromBf16(dyb.ToHost()), want), 1e-2);
}

INSTANTIATE_TEST_SUITE_P(Shapes, RmsNormGpuTest,
                         ::testing::Values(std::make_pair(1, 96), std::make_pair(7, 200),
                                           std::make_pair(128, 2048), std::make_pair(3, 7168),
                                           std::make_pair(5, 17)));

TEST(RmsNormGpu, FusedResidualAndGather) {
  SKIP_WITHOUT_CUDA();
  const int64_t rows = 9, dim = 130;
  auto x = RandomBf16Values(rows * dim, 3), res = RandomBf16Values(rows * dim, 4),
       w = RandomBf16Values(dim, 5);
  std::vector<float> h(rows * dim), want(rows * dim);
  for (size_t i = 0; i < h.size(); ++i) h[i] = x[i] + res[i];
  cpu::RmsNorm(
      {.x = h.data(), .w = w.data(), .y = want.data(), .rows = rows, .dim = dim, .eps = 1e-5f});
  DeviceArray<float> dx(x), dres(res), dw(w), dy(rows * dim);
  CUDA_OK(cuda::RmsNorm({.x = dx.get(),
                         .residual = dres.get(),
                         .w = dw.get(),
                         .y_f32 = dy.get(),
                         .rows = rows,
                         .dim = dim,
                         .eps = 1e-5f},
                        nullptr));
  EXPECT_LE(MaxRelErr(dx.ToHost(), h), 1e-6);  // residual written back
  EXPECT_LE(MaxRelErr(dy.ToHost(), want), 1e-5);
  // Gather rows 8, 0, 3 of the updated x (strided output).
  const std::vector<int32_t> idx = {8, 0, 3};
  DeviceArray<int32_t> didx(idx);
  DeviceArray<float> dg(3 * 140);
  CUDA_OK(cuda::RmsNorm({.x = dx.get(),
                         .row_index = didx.get(),
                         .w = dw.get(),
                         .y_f32 = dg.get(),
                         .rows = 3,
                         .dim = dim,
                         .ldy = 140,
                         .eps = 1e-5f},
                        nullptr));
  const auto g = dg.ToHost();
  for (int r = 0; r < 3; ++r)
    for (int64_t i = 0; i < dim; ++i)
      EXPECT_NEAR(g[r * 140 + i], want[idx[r] * dim + i],
                  1e-5 * (1 + std::fabs(want[idx[r] * dim + i])));
}

TEST(ElementwiseGpu, EmbeddingAndSiluMul) {
  SKIP_WITHOUT_CUDA();
  const int64_t vocab = 300, dim = 72, rows = 11, inter = 200;
  const auto table = RandomBf16Values(vocab * dim, 6);
  std::vector<int32_t> tokens;
  for (int64_t i = 0; i < rows; ++i) tokens.push_back(static_cast<int32_t>((i * 37 + 5) % vocab));
  DeviceArray<__nv_bfloat16> dtable(ToBf16(table));
  DeviceArray<int32_t> dtok(tokens);
  DeviceArray<float> dout(rows * dim);
  CUDA_OK(cuda::EmbeddingGather(
      {.tokens = dtok.get(), .table = dtable.get(), .out = dout.get(), .rows = rows, .dim = dim},
      nullptr));
  const auto out = dout.ToHost();
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t i = 0; i < dim; ++i) ASSERT_EQ(out[r * dim + i], table[tokens[r] * dim + i]);

  const auto gu = RandomBf16Values(rows * 2 * inter, 7, 4.0f);
  std::vector<float> want(rows * inter);
  cpu::SiluMul(gu.data(), want.data(), rows, inter);
  DeviceArray<float> dgu(gu);
  DeviceArray<__nv_bfloat16> dact(rows * inter);
  CUDA_OK(cuda::SiluMul({.gate_up = dgu.get(), .out = dact.get(), .rows = rows, .inter = inter},
                        nullptr));
  EXPECT_LE(MaxRelErr(FromBf16(dact.ToHost()), want), 1e-2);
}

std::vector<float> InvFreq(int64_t rope, bool yarn) {
  return cpu::RopeInvFreq({.rope_dim = rope,
                           .theta = 10000.0,
                           .yarn = yarn,
                           .factor = 40,
                           .original_max_position = 4096,
                           .beta_fast = 32,
                           .beta_slow = 1});
}

TEST(RopeGpu, MatchesCpuAtLargePositions) {
  SKIP_WITHOUT_CUDA();
  const int64_t rows = 13, heads = 5, rope = 64, stride = 96;
  auto x = RandomBf16Values(rows * heads * stride, 8);
  std::vector<int32_t> pos;
  for (int64_t r = 0; r < rows; ++r) pos.push_back(static_cast<int32_t>(r * r * 997 % 160000));
  const auto inv = InvFreq(rope, true);
  std::vector<float> want = x;
  cpu::ApplyRope({.x = want.data() + 32,
                  .positions = pos.data(),
                  .inv_freq = inv.data(),
                  .rows = rows,
                  .heads = heads,
                  .rope_dim = rope,
                  .head_stride = stride,
                  .row_stride = heads * stride,
                  .attn_factor = 1.3f});
  DeviceArray<float> dx(x), dinv(inv);
  DeviceArray<int32_t> dpos(pos);
  CUDA_OK(cuda::Rope({.x = dx.get() + 32,
                      .positions = dpos.get(),
                      .inv_freq = dinv.get(),
                      .rows = rows,
                      .heads = heads,
                      .rope_dim = rope,
                      .head_stride = stride,
                      .row_stride = heads * stride,
                      .attn_factor = 1.3f},
                     nullptr));
  EXPECT_LE(MaxRelErr(dx.ToHost(), want), 1e-5);
}

// The CPU model's sequence: RmsNorm of the latent, RoPE of k_pe, both rounded to bf16 in the
// cache; q_pe rotated, q_nope rounded.
TEST(MlaPrepGpu, KvAppendAndQPrepMatchCpu) {
  SKIP_WITHOUT_CUDA();
  using Dims = std::tuple<int64_t, int64_t, int64_t, int64_t>;  // kv_lora, rope, heads, nope
  for (const auto& [kvl, rope, heads, nope] :
       std::vector<Dims>{{512, 64, 16, 128}, {48, 8, 4, 24}}) {
    const int64_t tokens = 21, qa = 40, ld = qa + kvl + rope + 3, width = kvl + rope;
    const int64_t num_rows = 4 * 64;  // 4 blocks
    const auto kv = RandomBf16Values(tokens * ld, 9, 2.0f), nw = RandomBf16Values(kvl, 10);
    std::vector<int32_t> pos, slots;
    for (int64_t t = 0; t < tokens; ++t) {
      pos.push_back(static_cast<int32_t>(100 + 3 * t));
      slots.push_back(static_cast<int32_t>((t * 11) % num_rows));
    }
    const auto inv = InvFreq(rope, false);
    std::vector<float> ref = kv;
    cpu::RmsNorm({.x = ref.data() + qa,
                  .w = nw.data(),
                  .y = ref.data() + qa,
                  .rows = tokens,
                  .dim = kvl,
                  .eps = 1e-6f,
                  .ldx = ld,
                  .ldy = ld});
    cpu::ApplyRope({.x = ref.data() + qa + kvl,
                    .positions = pos.data(),
                    .inv_freq = inv.data(),
                    .rows = tokens,
                    .heads = 1,
                    .rope_dim = rope,
                    .head_stride = 0,
                    .row_stride = ld,
                    .attn_factor = 0.9f});
    DeviceArray<float> dkv(kv), dnw(nw), dinv(inv);
    DeviceArray<int32_t> dpos(pos), dslots(slots);
    DeviceArray<__nv_bfloat16> cache(num_rows * width);
    CUDA_OK(cuda::MlaKvAppend({.kv = dkv.get() + qa,
                               .ld_kv = ld,
                               .norm_w = dnw.get(),
                               .positions = dpos.get(),
                               .slots = dslots.get(),
                               .inv_freq = dinv.get(),
                               .cache = cache.get(),
                               .tokens = tokens,
                               .kv_lora = kvl,
                               .rope = rope,
                               .eps = 1e-6f,
                               .attn_factor = 0.9f},
                              nullptr));
    const auto got = FromBf16(cache.ToHost());
    std::vector<float> g, w;
    for (int64_t t = 0; t < tokens; ++t)
      for (int64_t j = 0; j < width; ++j) {
        g.push_back(got[slots[t] * width + j]);
        w.push_back(ref[t * ld + qa + j]);
      }
    EXPECT_LE(MaxRelErr(g, w), 1e-2) << kvl;

    const int64_t qk = nope + rope;
    const auto q = RandomBf16Values(tokens * heads * qk, 11);
    std::vector<float> qref = q;
    cpu::ApplyRope({.x = qref.data() + nope,
                    .positions = pos.data(),
                    .inv_freq = inv.data(),
                    .rows = tokens,
                    .heads = heads,
                    .rope_dim = rope,
                    .head_stride = qk,
                    .row_stride = heads * qk,
                    .attn_factor = 0.9f});
    DeviceArray<float> dq(q);
    DeviceArray<__nv_bfloat16> dnope(tokens * heads * nope), dattn(tokens * heads * width);
    CUDA_OK(cuda::MlaQPrep({.q = dq.get(),
                            .ldq = heads * qk,
                            .positions = dpos.get(),
                            .inv_freq = dinv.get(),
                            .q_nope = dnope.get(),
                            .q_attn = dattn.get(),
                            .tokens = tokens,
                            .heads = heads,
                            .nope = nope,
                            .rope = rope,
                            .kv_lora = kvl,
                            .attn_factor = 0.9f},
                           nullptr));
    const auto gn = FromBf16(dnope.ToHost()), ga = FromBf16(dattn.ToHost());
    std::vector<float> gn_want, gp, gp_want;
    for (int64_t t = 0; t < tokens; ++t)
      for (int64_t h = 0; h < heads; ++h) {
        for (int64_t i = 0; i < nope; ++i) gn_want.push_back(q[(t * heads + h) * qk + i]);
        for (int64_t i = 0; i < rope; ++i) {
          gp.push_back(ga[(t * heads + h) * width + kvl + i]);
          gp_want.push_back(qref[(t * heads + h) * qk + nope + i]);
        }
      }
    EXPECT_EQ(gn, gn_want);  // already bf16 values: exact
    EXPECT_LE(MaxRelErr(gp, gp_want), 1e-2);
  }
}

class GemmGpuTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!gpu_test::HasCudaDevice()) GTEST_SKIP() << "no CUDA device: skipped";
    ASSERT_EQ(cublasCreate(&handle_), CUBLAS_STATUS_SUCCESS);
  }
  void TearDown() override {
    if (handle_) cublasDestroy(handle_);
  }
  cublasHandle_t handle_ = nullptr;
};

TEST_F(GemmGpuTest, DenseBf16AndF32MatchCpu) {
  using Shape = std::tuple<int64_t, int64_t, int64_t>;
  for (const auto& [m, n, k] :
       std::vector<Shape>{{1, 512, 128}, {37, 200, 72}, {128, 1408, 2048}}) {
    const auto x = RandomBf16Values(m * k, 12), w = RandomBf16Values(n * k, 13, 0.1f);
    const auto y0 = RandomBf16Values(m * n, 14);
    std::vector<float> want = y0;
    std::vector<uint16_t> wb(n * k);
    for (size_t i = 0; i < wb.size(); ++i) wb[i] = F32ToBf16(w[i]);
    cpu::Linear({.x = x.data(),
                 .w = wb.data(),
                 .y = want.data(),
                 .m = m,
                 .n = n,
                 .k = k,
                 .w_bf16 = true,
                 .accumulate = true},
                cpu::SerialFor);
    DeviceArray<__nv_bfloat16> dx(ToBf16(x)), dw(ToBf16(w));
    DeviceArray<float> dy(y0);
    ASSERT_EQ(cuda::Gemm(handle_, {.x = dx.get(),
                                   .w = dw.get(),
                                   .y = dy.get(),
                                   .m = m,
                                   .n = n,
                                   .k = k,
                                   .accumulate = true}),
              CUBLAS_STATUS_SUCCESS);
    EXPECT_LE(MaxRelErr(dy.ToHost(), want), 1e-4) << m << "x" << n << "x" << k;

    std::vector<float> want32(m * n);
    cpu::Linear({.x = x.data(), .w = w.data(), .y = want32.data(), .m = m, .n = n, .k = k},
                cpu::SerialFor);
    DeviceArray<float> dx32(x), dw32(w), dy32(m * n);
    ASSERT_EQ(cuda::Gemm(handle_, {.x = dx32.get(),
                                   .w = dw32.get(),
                                   .y = dy32.get(),
                                   .m = m,
                                   .n = n,
                                   .k = k,
                                   .x_type = cuda::GemmType::kF32,
                                   .w_type = cuda::GemmType::kF32}),
              CUBLAS_STATUS_SUCCESS);
    EXPECT_LE(MaxRelErr(dy32.ToHost(), want32), 1e-5);
  }
}

// The MLA absorption (w [k, n] per head) and W_UV (w [n, k] per head) batched forms.
TEST_F(GemmGpuTest, BatchedHeadsMatchCpu) {
  const int64_t tokens = 5, heads = 3, nope = 32, kvl = 64, v = 24, width = kvl + 16;
  const auto q = RandomBf16Values(tokens * heads * nope, 15);
  const auto kvb = RandomBf16Values(heads * (nope + v) * kvl, 16, 0.2f);
  DeviceArray<__nv_bfloat16> dq(ToBf16(q)), dkvb(ToBf16(kvb)), dout(tokens * heads * width);
  ASSERT_EQ(cuda::BatchedGemm(handle_, {.x = dq.get(),
                                        .w = dkvb.get(),
                                        .y = dout.get(),
                                        .m = tokens,
                                        .n = kvl,
                                        .k = nope,
                                        .batch = heads,
                                        .ldx = heads * nope,
                                        .ldw = kvl,
                                        .ldy = heads * width,
                                        .stride_x = nope,
                                        .stride_w = (nope + v) * kvl,
                                        .stride_y = width,
                                        .w_transposed = false}),
            CUBLAS_STATUS_SUCCESS);
  const auto got = FromBf16(dout.ToHost());
  std::vector<float> g, want;
  for (int64_t t = 0; t < tokens; ++t)
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t j = 0; j < kvl; ++j) {
        double s = 0;
        for (int64_t i = 0; i < nope; ++i)
          s += q[(t * heads + h) * nope + i] * kvb[(h * (nope + v) + i) * kvl + j];
        want.push_back(static_cast<float>(s));
        g.push_back(got[(t * heads + h) * width + j]);
      }
  EXPECT_LE(MaxRelErr(g, want), 1e-2);

  const auto o = RandomBf16Values(tokens * heads * kvl, 17);
  DeviceArray<__nv_bfloat16> dol(ToBf16(o)), dattn(tokens * heads * v);
  ASSERT_EQ(cuda::BatchedGemm(handle_, {.x = dol.get(),
                                        .w = dkvb.get() + nope * kvl,
                                        .y = dattn.get(),
                                        .m = tokens,
                                        .n = v,
                                        .k = kvl,
                                        .batch = heads,
                                        .ldx = heads * kvl,
                                        .ldw = kvl,
                                        .ldy = heads * v,
                                        .stride_x = kvl,
                                        .stride_w = (nope + v) * kvl,
                                        .stride_y = v}),
            CUBLAS_STATUS_SUCCESS);
  const auto ga = FromBf16(dattn.ToHost());
  std::vector<float> wa;
  for (int64_t t = 0; t < tokens; ++t)
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t j = 0; j < v; ++j) {
        double s = 0;
        for (int64_t i = 0; i < kvl; ++i)
          s += o[(t * heads + h) * kvl + i] * kvb[(h * (nope + v) + nope + j) * kvl + i];
        wa.push_back(static_cast<float>(s));
      }
  EXPECT_LE(MaxRelErr(ga, wa), 1e-2);
}

}  // namespace
}  // namespace dsinfer
