// Fp4GroupedGemm (FP4 E2M1 expert weights with E8M0 scales, bf16 activations) against its CPU
// twin cpu::LinearFp4 (round_bf16) run expert by expert on the gathered rows: 1e-5 relative
// (f32 summation order only). Shapes not multiples of 32 (a partial scale block), an empty
// expert, gathered rows, strides. Argument checks run without a GPU.
#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "kernels/cpu/fp4.h"
#include "kernels/cpu/linear_fp4.h"
#include "kernels/cuda/fp4_grouped_gemm.h"
#include "tests/gpu/gpu_test_util.h"

namespace dsinfer {
namespace {

using gpu_test::DeviceArray;

struct Case {
  int64_t n, k;
  std::vector<int32_t> counts;  // rows per expert
  bool gather;
};

void RunCase(const Case& cs) {
  const int64_t E = static_cast<int64_t>(cs.counts.size()), n = cs.n, k = cs.k;
  const int64_t blocks = (k + cpu::kFp4BlockK - 1) / cpu::kFp4BlockK;
  std::vector<int32_t> offsets(E + 1, 0);
  for (int64_t e = 0; e < E; ++e) offsets[e + 1] = offsets[e] + cs.counts[e];
  const int64_t rows = offsets[E], tokens = rows + 3, lda = k + 6;
  std::mt19937 rng(static_cast<uint32_t>(n * 31 + k));
  std::vector<uint8_t> w(E * n * k / 2), s(E * n * blocks);
  for (uint8_t& b : w) b = static_cast<uint8_t>(rng());
  for (uint8_t& b : s) b = static_cast<uint8_t>(118 + rng() % 16);
  const std::vector<float> a = gpu_test::RandomBf16Values(tokens * lda, 5);
  std::vector<int32_t> row_token(rows);
  for (int64_t r = 0; r < rows; ++r)
    row_token[r] = cs.gather ? static_cast<int32_t>(rng() % tokens) : static_cast<int32_t>(r);

  // CPU twin: each expert's rows gathered, then LinearFp4 in the bf16 run's numerics.
  std::vector<float> want(rows * n);
  for (int64_t e = 0; e < E; ++e) {
    const int64_t cnt = cs.counts[e];
    if (cnt == 0) continue;
    std::vector<float> x(cnt * k);
    for (int64_t i = 0; i < cnt; ++i)
      for (int64_t j = 0; j < k; ++j) x[i * k + j] = a[row_token[offsets[e] + i] * lda + j];
    cpu::LinearFp4({.x = x.data(), .w = w.data() + e * n * k / 2, .scale = s.data() + e * n * blocks,
                    .y = want.data() + offsets[e] * n, .m = cnt, .n = n, .k = k,
                    .round_bf16 = true},
                   cpu::SerialFor);
  }

  DeviceArray<__nv_bfloat16> da(gpu_test::ToBf16(a));
  DeviceArray<uint8_t> dw(w), ds(s);
  DeviceArray<int32_t> doff(offsets), didx(row_token);
  DeviceArray<float> dc(static_cast<size_t>(rows * n));
  ASSERT_EQ(cuda::Fp4GroupedGemm({.a = da.get(), .a_row_index = cs.gather ? didx.get() : nullptr,
                                  .w = dw.get(), .scale = ds.get(), .expert_offsets = doff.get(),
                                  .c = dc.get(), .lda = lda, .ldc = n, .n_experts = E, .n = n,
                                  .k = k},
                                 nullptr),
            cudaSuccess);
  const std::vector<float> got = dc.ToHost();
  const double err = gpu_test::MaxRelErr(got, want);
  std::printf("Fp4GroupedGemm n %lld k %lld rows %lld: rel err %.3g\n", static_cast<long long>(n),
              static_cast<long long>(k), static_cast<long long>(rows), err);
  EXPECT_LE(err, 1e-5);
}

TEST(Fp4GroupedGemmGpu, MatchesCpuTwin) {
  SKIP_WITHOUT_CUDA();
  RunCase({.n = 72, .k = 200, .counts = {3, 0, 1, 9, 2}, .gather = true});
  RunCase({.n = 200, .k = 72, .counts = {5, 4, 0, 1}, .gather = false});
  // V4-Flash expert shapes (gate / up [2048, 4096], down [4096, 2048]), decode-sized groups.
  RunCase({.n = 2048, .k = 4096, .counts = {1, 8, 0, 2}, .gather = true});
  RunCase({.n = 4096, .k = 2048, .counts = {2, 1, 8}, .gather = true});
}

TEST(Fp4GroupedGemmGpu, RefusesBadArguments) {
  // Checked on the host before any launch: no device needed.
  const __nv_bfloat16* a = reinterpret_cast<const __nv_bfloat16*>(uintptr_t{256});
  const uint8_t* w = reinterpret_cast<const uint8_t*>(uintptr_t{256});
  const int32_t* off = reinterpret_cast<const int32_t*>(uintptr_t{256});
  float* c = reinterpret_cast<float*>(uintptr_t{256});
  cuda::Fp4GroupedGemmParams p{.a = a, .w = w, .scale = w, .expert_offsets = off, .c = c,
                               .n_experts = 2, .n = 4, .k = 7};
  EXPECT_EQ(cuda::Fp4GroupedGemm(p, nullptr), cudaErrorInvalidValue);  // odd k
  p.k = 8;
  p.scale = nullptr;
  EXPECT_EQ(cuda::Fp4GroupedGemm(p, nullptr), cudaErrorInvalidValue);
  p.scale = w;
  p.lda = 9;
  EXPECT_EQ(cuda::Fp4GroupedGemm(p, nullptr), cudaErrorInvalidValue);  // bf16 pairs unaligned
}

}  // namespace
}  // namespace dsinfer
