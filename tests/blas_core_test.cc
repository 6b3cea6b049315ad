// OpenBLAS core selection (kernels/cpu/blas_core.h): a pre-AVX2 fallback core is replaced by
// one the CPU's features allow, never a core OpenBLAS recognised; and f32 GEMMs stay correct.
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "kernels/cpu/blas_core.h"
#include "kernels/cpu/linear.h"

namespace dsinfer::cpu {
namespace {

TEST(BlasCore, OnlyPreAvx2CoresAreReplaced) {
  EXPECT_EQ(BetterBlasCore("Prescott", true, true), "SkylakeX");
  EXPECT_EQ(BetterBlasCore("prescott", false, true), "Haswell");
  EXPECT_EQ(BetterBlasCore("Sandybridge", false, true), "Haswell");
  EXPECT_EQ(BetterBlasCore("Prescott", false, false), "");
  for (const char* known : {"Haswell", "SkylakeX", "Cooperlake", "SapphireRapids", "Zen"}) {
    EXPECT_EQ(BetterBlasCore(known, true, true), "") << known;
  }
}

TEST(BlasCore, TheActiveCoreUsesTheCpusVectorUnits) {
  const BlasCore& core = EnsureBlasCore();
  __builtin_cpu_init();
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  const bool dynamic = dlsym(RTLD_DEFAULT, "gotoblas_dynamic_init") != nullptr;
  if (!avx2 || !dynamic || std::getenv("OPENBLAS_CORETYPE") != nullptr) {
    GTEST_SKIP() << "no AVX2, no run-time core selection, or OPENBLAS_CORETYPE set";
  }
  EXPECT_EQ(BetterBlasCore(core.active, true, true), "")
      << "detected " << core.detected << ", active " << core.active;
  EXPECT_EQ(&EnsureBlasCore(), &core);  // once per process
}

TEST(BlasCore, F32GemmsAreExactAfterTheSwitch) {
  EnsureBlasCore();
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-1, 1);
  const int64_t m = 33, n = 70, k = 129;
  std::vector<float> x(m * k), w(n * k), y(m * n);
  for (float& v : x) v = u(rng);
  for (float& v : w) v = u(rng);
  const ParallelFor serial = SerialFor;
  Linear({.x = x.data(), .w = w.data(), .y = y.data(), .m = m, .n = n, .k = k}, serial);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double ref = 0;
      for (int64_t q = 0; q < k; ++q) ref += static_cast<double>(x[i * k + q]) * w[j * k + q];
      ASSERT_NEAR(y[i * n + j], ref, 1e-4) << i << "," << j;
    }
}

}  // namespace
}  // namespace dsinfer::cpu
