// FP4 CPU kernels: LinearFp4 (the active ISA; ctest runs it again as *.avx2) against its scalar
// reference LinearFp4Ref (1e-5 relative), against cpu::Linear on the dequantised matrix (f32:
// 1e-5 relative; bf16: bit for bit), exact decode of every code under extreme scales, strides,
// accumulate, and the same bits whatever the thread split or batch.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <thread>
#include <vector>

#include "kernels/cpu/fp4.h"
#include "kernels/cpu/isa.h"
#include "kernels/cpu/linear.h"
#include "kernels/cpu/linear_fp4.h"
#include "src/core/numeric.h"

namespace dsinfer::cpu {
namespace {

std::vector<float> Normal(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.f, 1.f);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

double MaxRelErr(const std::vector<float>& got, const std::vector<float>& want) {
  double num = 0, den = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    num = std::max(num, std::fabs(static_cast<double>(got[i]) - want[i]));
    den = std::max(den, std::fabs(static_cast<double>(want[i])));
  }
  return den > 0 ? num / den : num;
}

void ThreadedFor(int64_t n, const RangeBody& body) {
  const int64_t threads = std::min<int64_t>(n, 3);
  std::vector<std::thread> pool;
  for (int64_t t = 0; t < threads; ++t) {
    const int64_t b = n * t / threads, e = n * (t + 1) / threads;
    pool.emplace_back([&body, b, e] {
      if (e > b) body(b, e);
    });
  }
  for (auto& th : pool) th.join();
}

// A random packed [n, k] FP4 matrix with E8M0 scales in [lo, hi].
struct Fp4Matrix {
  int64_t n, k, blocks;
  std::vector<uint8_t> codes, scales;
  Fp4Matrix(int64_t n_, int64_t k_, uint32_t seed, int lo = 120, int hi = 132)
      : n(n_), k(k_), blocks((k_ + kFp4BlockK - 1) / kFp4BlockK) {
    std::mt19937 rng(seed);
    codes.resize(n * k / 2);
    for (uint8_t& c : codes) c = static_cast<uint8_t>(rng());
    scales.resize(n * blocks);
    for (uint8_t& s : scales) s = static_cast<uint8_t>(lo + rng() % (hi - lo + 1));
  }
  std::vector<float> Dequant() const {
    std::vector<float> w(n * k);
    for (int64_t i = 0; i < n; ++i)
      DequantFp4Row(codes.data() + i * k / 2, scales.data() + i * blocks, k, w.data() + i * k);
    return w;
  }
  Fp4LinearParams Params(const float* x, float* y, int64_t m, bool bf16) const {
    return {.x = x, .w = codes.data(), .scale = scales.data(), .y = y, .m = m, .n = n, .k = k,
            .round_bf16 = bf16};
  }
};

struct Shape {
  int64_t m, n, k;
};

class LinearFp4Test : public ::testing::TestWithParam<Shape> {};

TEST_P(LinearFp4Test, MatchesReferenceAndLinearOnTheDequantisedMatrix) {
  const auto [m, n, k] = GetParam();
  const Fp4Matrix w(n, k, static_cast<uint32_t>(m * 131 + n * 7 + k));
  const std::vector<float> x = Normal(m * k, 3), wd = w.Dequant();
  std::vector<uint16_t> wb(wd.size());
  for (size_t i = 0; i < wd.size(); ++i) {
    wb[i] = F32ToBf16(wd[i]);
    ASSERT_EQ(Bf16ToF32(wb[i]), wd[i]);  // every FP4 weight is exact in bf16
  }
  for (bool bf16 : {false, true}) {
    SCOPED_TRACE(bf16 ? "bf16" : "f32");
    std::vector<float> ref(m * n), got(m * n), threaded(m * n), lin(m * n);
    LinearFp4Ref(w.Params(x.data(), ref.data(), m, bf16));
    LinearFp4(w.Params(x.data(), got.data(), m, bf16), SerialFor);
    LinearFp4(w.Params(x.data(), threaded.data(), m, bf16), ThreadedFor);
    EXPECT_LE(MaxRelErr(got, ref), 1e-5);
    EXPECT_EQ(got, threaded);
    Linear({.x = x.data(), .w = bf16 ? static_cast<const void*>(wb.data()) : wd.data(),
            .y = lin.data(), .m = m, .n = n, .k = k, .w_bf16 = bf16},
           SerialFor);
    if (bf16) EXPECT_EQ(got, lin);  // the same tile kernel, lanes and order
    else EXPECT_LE(MaxRelErr(got, lin), 1e-5);
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, LinearFp4Test,
                         ::testing::Values(Shape{1, 7, 64}, Shape{1, 64, 2048}, Shape{3, 5, 80},
                                           Shape{4, 9, 34}, Shape{8, 33, 256}, Shape{17, 12, 96},
                                           Shape{5, 3, 2}, Shape{2, 130, 1408}));

TEST(LinearFp4, EveryCodeExactUnderExtremeScales) {
  // One-hot activations read the weights back through the kernel: every code under the scale
  // range's ends (E8M0 0 is 2^-127, a subnormal; 2^123 keeps 6 * scale finite) comes out as
  // the format's definition, written out here with ldexp.
  const int64_t n = 4, k = 64;
  Fp4Matrix w(n, k, 11);
  for (size_t b = 0; b < w.codes.size(); ++b)
    w.codes[b] = static_cast<uint8_t>((b % 16) | (15 - (b + b / 16) % 16) << 4);
  w.scales = {0, 1, 250, 127, 126, 128, 3, 249};
  static const float kMag[8] = {0, 0.5, 1, 1.5, 2, 3, 4, 6};
  std::vector<float> want(n * k);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < k; ++j) {
      const uint8_t byte = w.codes[i * k / 2 + j / 2];
      const int c = j % 2 ? byte >> 4 : byte & 15;
      want[i * k + j] = (c & 8 ? -1.f : 1.f) * std::ldexp(kMag[c & 7], w.scales[i * 2 + j / 32] - 127);
    }
  EXPECT_EQ(w.Dequant(), want);
  std::vector<float> x(k * k, 0.f);
  for (int64_t j = 0; j < k; ++j) x[j * k + j] = 1.f;
  for (bool bf16 : {false, true}) {
    std::vector<float> y(k * n);
    LinearFp4(w.Params(x.data(), y.data(), k, bf16), SerialFor);
    // vdpbf16ps (AVX512-BF16) and TDPBF16PS (AMX) read subnormal inputs as zero, as
    // cpu::Linear's bf16 GEMM does.
    const bool flush = bf16 && ActiveCpuIsa() != CpuIsa::kAvx2;
    for (int64_t j = 0; j < k; ++j)
      for (int64_t i = 0; i < n; ++i) {
        const float v = want[i * k + j];
        EXPECT_EQ(y[j * n + i], flush && std::fabs(v) < 0x1p-126f ? 0.f : v) << i << "," << j;
      }
  }
}

TEST(LinearFp4, StridesColumnSliceAndAccumulate) {
  // A wide matrix's column slice starting on a scale block (ldw, ld_scale), strided x and y,
  // accumulate: as the dense reference on the same slice.
  const int64_t m = 3, n = 10, k_full = 128, k0 = 32, k = 64;
  const Fp4Matrix wide(n, k_full, 5);
  const std::vector<float> x = Normal(m * 100, 6);
  std::vector<float> y(m * 16, 1.5f), ref(m * 16, 1.5f);
  for (bool bf16 : {false, true}) {
    Fp4LinearParams p{.x = x.data(), .w = wide.codes.data() + k0 / 2,
                      .scale = wide.scales.data() + k0 / kFp4BlockK, .y = y.data(), .m = m,
                      .n = n, .k = k, .ldx = 100, .ldw = k_full / 2, .ld_scale = wide.blocks,
                      .ldy = 16, .round_bf16 = bf16, .accumulate = true};
    LinearFp4(p, ThreadedFor);
    p.y = ref.data();
    LinearFp4Ref(p);
    EXPECT_LE(MaxRelErr(y, ref), 1e-5);
    for (int64_t i = 0; i < m; ++i)
      for (int64_t o = n; o < 16; ++o) EXPECT_EQ(y[i * 16 + o], 1.5f);  // padding untouched
  }
}

TEST(LinearFp4, ARowsResultDoesNotDependOnItsBatch) {
  const int64_t n = 40, k = 256;
  const Fp4Matrix w(n, k, 9);
  const std::vector<float> x = Normal(9 * k, 10);
  for (bool bf16 : {false, true}) {
    std::vector<float> all(9 * n), one(n);
    LinearFp4(w.Params(x.data(), all.data(), 9, bf16), ThreadedFor);
    LinearFp4(w.Params(x.data() + 7 * k, one.data(), 1, bf16), SerialFor);
    EXPECT_EQ(std::vector<float>(all.begin() + 7 * n, all.begin() + 8 * n), one);
  }
}

TEST(LinearFp4, EmptyK) {
  std::vector<float> y(6, 3.f);
  LinearFp4({.x = nullptr, .w = nullptr, .scale = nullptr, .y = y.data(), .m = 2, .n = 3, .k = 0},
            SerialFor);
  EXPECT_EQ(y, std::vector<float>(6, 0.f));
}

TEST(LinearFp4, ReportsTheIsa) {
  // Not an assertion on speed: records which ISA this run exercised.
  std::printf("LinearFp4 on %s\n", CpuIsaName(ActiveCpuIsa()));
  SUCCEED();
}

}  // namespace
}  // namespace dsinfer::cpu
