// FP8 CPU kernels: the E4M3 format (kernels/cpu/fp8.h) against the checkpoint writer's encoder,
// LinearFp8 against cpu::Linear on the dequantised matrix (f32: 1e-5 relative; bf16: bit for
// bit), and DeepSeek's act_quant / fp8_gemm reference against exact values and the f32 product.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include "kernels/cpu/fp8.h"
#include "kernels/cpu/fp8_gemm.h"
#include "kernels/cpu/linear.h"
#include "kernels/cpu/linear_fp8.h"
#include "src/core/numeric.h"

namespace dsinfer::cpu {
namespace {

float Bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

std::vector<float> Normal(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

// max |got - want| / max |want|
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

// ---------------------------------------------------------------------------------------------
// E4M3 format

TEST(E4M3, TableAndDecoderAgreeWithTheCheckpointReader) {
  const auto& table = E4M3Table();
  for (int c = 0; c < 256; ++c) {
    const float want = F8E4M3ToF32(static_cast<uint8_t>(c));
    if (std::isnan(want)) {
      EXPECT_TRUE(std::isnan(table[c])) << c;
      EXPECT_TRUE(std::isnan(E4M3ToF32(static_cast<uint8_t>(c)))) << c;
      continue;
    }
    EXPECT_EQ(table[c], want) << c;
    EXPECT_EQ(std::signbit(table[c]), std::signbit(want)) << c;
    EXPECT_EQ(E4M3ToF32(static_cast<uint8_t>(c)), want) << c;
  }
  EXPECT_EQ(table[0x7e], 448.0f);
  EXPECT_EQ(table[0x01], std::ldexp(1.0f, -9));
  EXPECT_EQ(table[0x08], std::ldexp(1.0f, -6));
}

TEST(E4M3, EncoderRoundTripsTiesToEvenAndSaturates) {
  const auto& table = E4M3Table();
  for (int c = 0; c < 256; ++c) {
    if ((c & 0x7f) == 0x7f) continue;
    EXPECT_EQ(F32ToE4M3(table[c]), c) << c;
  }
  // Midpoints between neighbours round to the even code; just off them, to the nearer one.
  for (int c = 0; c < 0x7e; ++c) {
    const float lo = table[c], hi = table[c + 1], mid = (lo + hi) / 2;
    const int even = (c & 1) ? c + 1 : c;
    EXPECT_EQ(F32ToE4M3(mid), even) << c;
    EXPECT_EQ(F32ToE4M3(-mid), 0x80 | even) << c;
    EXPECT_EQ(F32ToE4M3(std::nextafter(mid, 0.0f)), c) << c;
    EXPECT_EQ(F32ToE4M3(std::nextafter(mid, 1e9f)), c + 1) << c;
  }
  EXPECT_EQ(F32ToE4M3(449.0f), 0x7e);
  EXPECT_EQ(F32ToE4M3(464.0f), 0x7e);
  EXPECT_EQ(F32ToE4M3(-1e30f), 0xfe);
  EXPECT_EQ(F32ToE4M3(INFINITY), 0x7e);
  EXPECT_EQ(F32ToE4M3(-INFINITY), 0xfe);
  EXPECT_EQ(F32ToE4M3(NAN), 0x7f);
  EXPECT_EQ(F32ToE4M3(0.0f), 0x00);
  EXPECT_EQ(F32ToE4M3(-0.0f), 0x80);
  EXPECT_EQ(F32ToE4M3(std::ldexp(1.0f, -10)), 0x00);  // half the smallest denormal: tie to 0
  EXPECT_EQ(F32ToE4M3(std::nextafter(std::ldexp(1.0f, -10), 1.0f)), 0x01);
  EXPECT_EQ(F32ToE4M3(-1e-30f), 0x80);
  EXPECT_EQ(F32ToE4M3(Bits(0x00000001)), 0x00);  // f32 denormal
}

// The checkpoint writer (src/core) used a search-based encoder; both agree on every input (checked
// exhaustively once; here on ~17M bit patterns spread over the whole range).
TEST(E4M3, EncoderMatchesTheSearchBasedEncoder) {
  int64_t mismatches = 0;
  for (uint64_t u = 0; u < (uint64_t{1} << 32); u += 251) {
    const float f = Bits(static_cast<uint32_t>(u));
    if (F32ToE4M3(f) != F32ToF8E4M3(f)) ++mismatches;
  }
  EXPECT_EQ(mismatches, 0);
}

// ---------------------------------------------------------------------------------------------
// LinearFp8

// Block-quantised random weights with block magnitudes far apart (a wrong block index shows).
struct Fp8Matrix {
  int64_t n, k, block_n, block_k, scale_cols;
  std::vector<uint8_t> codes;   // [n, k]
  std::vector<float> scale;     // [ceil(n / block_n), scale_cols]
};

Fp8Matrix MakeFp8(int64_t n, int64_t k, uint32_t seed, int64_t block_n = 128,
                  int64_t block_k = 128) {
  Fp8Matrix m{n, k, block_n, block_k, (k + block_k - 1) / block_k, {}, {}};
  const int64_t scale_rows = (n + block_n - 1) / block_n;
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> code(0, 255);
  std::normal_distribution<float> gauss(0.f, 100.f);
  m.codes.resize(n * k);
  // Even rows: uniform codes (denormals and zeros everywhere); odd rows: codes of Gaussian
  // weights as in checkpoints (E = 0 rare, so most 32-code groups take the decoder's fast path).
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < k; ++j) {
      uint8_t c = (i & 1) ? F32ToE4M3(gauss(rng)) : static_cast<uint8_t>(code(rng));
      if ((c & 0x7f) == 0x7f) c ^= 0x01;  // no NaN codes
      m.codes[i * k + j] = c;
    }
  m.scale.resize(scale_rows * m.scale_cols);
  for (int64_t i = 0; i < scale_rows; ++i)
    for (int64_t j = 0; j < m.scale_cols; ++j)
      m.scale[i * m.scale_cols + j] = 1e-3f * (1.0f + 0.37f * i + 1.9f * j) / 448.0f * 3.3f;
  return m;
}

// The reference's weight_dequant: e4m3(code) * scale_inv in f32.
std::vector<float> Dequant(const Fp8Matrix& w) {
  std::vector<float> out(w.n * w.k);
  for (int64_t i = 0; i < w.n; ++i)
    for (int64_t j = 0; j < w.k; ++j)
      out[i * w.k + j] = E4M3Table()[w.codes[i * w.k + j]] *
                         w.scale[(i / w.block_n) * w.scale_cols + j / w.block_k];
  return out;
}

std::vector<uint16_t> ToBf16Bits(const std::vector<float>& v) {
  std::vector<uint16_t> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = F32ToBf16(v[i]);
  return out;
}

struct LinearCase {
  int64_t n, k, block_n, block_k;
};
std::ostream& operator<<(std::ostream& os, const LinearCase& c) {
  return os << c.n << "x" << c.k << "_blocks" << c.block_n << "x" << c.block_k;
}

class LinearFp8Test : public ::testing::TestWithParam<LinearCase> {};

TEST_P(LinearFp8Test, MatchesLinearOnTheDequantisedMatrix) {
  const LinearCase c = GetParam();
  const Fp8Matrix w = MakeFp8(c.n, c.k, 11, c.block_n, c.block_k);
  const std::vector<float> deq = Dequant(w);
  const std::vector<uint16_t> deq_bf16 = ToBf16Bits(deq);
  for (int64_t m : {1, 3, 5, 64}) {
    SCOPED_TRACE(::testing::Message() << "m " << m << " n " << c.n << " k " << c.k);
    const auto x = Normal(m * c.k, 12);
    std::vector<float> want(m * c.n), got(m * c.n, 7.0f), want_b(m * c.n), got_b(m * c.n, 7.0f);
    Linear({.x = x.data(), .w = deq.data(), .y = want.data(), .m = m, .n = c.n, .k = c.k},
           SerialFor);
    Linear({.x = x.data(), .w = deq_bf16.data(), .y = want_b.data(), .m = m, .n = c.n, .k = c.k,
            .w_bf16 = true},
           SerialFor);
    Fp8LinearParams p{.x = x.data(), .w = w.codes.data(), .scale_inv = w.scale.data(),
                      .y = got.data(), .m = m, .n = c.n, .k = c.k, .block_n = c.block_n,
                      .block_k = c.block_k};
    LinearFp8(p, SerialFor);
    EXPECT_LE(MaxRelErr(got, want), 1e-5);
    p.y = got_b.data();
    p.round_bf16 = true;
    LinearFp8(p, ThreadedFor);
    EXPECT_EQ(std::memcmp(got_b.data(), want_b.data(), got_b.size() * 4), 0)
        << "bf16 mode differs from cpu::Linear(w_bf16), max rel err " << MaxRelErr(got_b, want_b);
    // And the bf16 mode really rounds (it is not the f32 result).
    if (c.k > 64) {
      EXPECT_GT(MaxRelErr(got_b, want), 1e-6);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, LinearFp8Test,
    ::testing::Values(LinearCase{200, 300, 128, 128}, LinearCase{1, 7, 128, 128},
                      LinearCase{129, 257, 128, 128}, LinearCase{256, 1024, 128, 128},
                      LinearCase{37, 2048, 128, 128},  // tiles of many rows, one x pass
                      LinearCase{100, 90, 64, 32}, LinearCase{33, 45, 7, 5}));

// Strided x / y, a column slice of a wider weight matrix (ldw, ld_scale), accumulate, threads.
TEST(LinearFp8, StridesSliceAndAccumulate) {
  const int64_t m = 5, n = 70, K = 512, k0 = 128, k = 300;  // columns [128, 428) of [70, 512]
  const Fp8Matrix wide = MakeFp8(n, K, 21);
  Fp8Matrix slice{n, k, 128, 128, 3, {}, {}};
  for (int64_t i = 0; i < n; ++i) {
    slice.codes.insert(slice.codes.end(), wide.codes.begin() + i * K + k0,
                       wide.codes.begin() + i * K + k0 + k);
  }
  for (int64_t j = 0; j < 3; ++j) slice.scale.push_back(wide.scale[1 + j]);
  const auto x = Normal(m * (k + 9), 22);  // row stride k + 9
  const auto y0 = Normal(m * (n + 3), 23);  // row stride n + 3
  for (bool bf16 : {false, true}) {
    std::vector<float> want(m * n), got = y0;
    std::vector<float> xd(m * k);
    for (int64_t i = 0; i < m; ++i)
      std::copy(x.begin() + i * (k + 9), x.begin() + i * (k + 9) + k, xd.begin() + i * k);
    LinearFp8({.x = xd.data(), .w = slice.codes.data(), .scale_inv = slice.scale.data(),
               .y = want.data(), .m = m, .n = n, .k = k, .round_bf16 = bf16},
              SerialFor);
    LinearFp8({.x = x.data(), .w = wide.codes.data() + k0, .scale_inv = wide.scale.data() + 1,
               .y = got.data(), .m = m, .n = n, .k = k, .ldx = k + 9, .ldw = K,
               .ld_scale = wide.scale_cols, .ldy = n + 3, .round_bf16 = bf16,
               .accumulate = true},
              ThreadedFor);
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t j = 0; j < n; ++j)
        EXPECT_EQ(got[i * (n + 3) + j], y0[i * (n + 3) + j] + want[i * n + j]) << i << "," << j;
      for (int64_t j = n; j < n + 3; ++j) EXPECT_EQ(got[i * (n + 3) + j], y0[i * (n + 3) + j]);
    }
  }
}

// All-zero code blocks and a zero scale contribute exact zeros; k = 0 writes zeros.
TEST(LinearFp8, ZeroBlocksAndEmptyK) {
  const int64_t m = 3, n = 130, k = 260;
  Fp8Matrix w = MakeFp8(n, k, 31);
  for (int64_t i = 0; i < 128; ++i)
    for (int64_t j = 128; j < 256; ++j) w.codes[i * k + j] = (j & 1) ? 0x80 : 0x00;  // ±0
  w.scale[1 * w.scale_cols + 0] = 0.0f;  // rows 128, 129, columns [0, 128)
  const auto deq = Dequant(w);
  const auto x = Normal(m * k, 32);
  for (bool bf16 : {false, true}) {
    std::vector<float> want(m * n), got(m * n);
    const auto deq_b = ToBf16Bits(deq);
    Linear({.x = x.data(), .w = bf16 ? static_cast<const void*>(deq_b.data()) : deq.data(),
            .y = want.data(), .m = m, .n = n, .k = k, .w_bf16 = bf16},
           SerialFor);
    LinearFp8({.x = x.data(), .w = w.codes.data(), .scale_inv = w.scale.data(), .y = got.data(),
               .m = m, .n = n, .k = k, .round_bf16 = bf16},
              SerialFor);
    if (bf16) {
      EXPECT_EQ(std::memcmp(got.data(), want.data(), got.size() * 4), 0);
    } else {
      EXPECT_LE(MaxRelErr(got, want), 1e-5);
    }
  }
  std::vector<float> y(6, 3.0f);
  LinearFp8({.x = nullptr, .w = nullptr, .scale_inv = nullptr, .y = y.data(), .m = 2, .n = 3,
             .k = 0},
            SerialFor);
  for (float v : y) EXPECT_EQ(v, 0.0f);
}

// Scales below the fast decode tables' range, at its boundary and huge but inside, and NaN codes: the
// exact fallback keeps every mode equal to the reference; a NaN weight poisons its column only.
TEST(LinearFp8, ExtremeScalesAndNaNCodes) {
  const int64_t n = 6, k = 512;
  Fp8Matrix w = MakeFp8(n, k, 71);
  w.scale = {3e-38f, std::ldexp(1.0f, -119), 1e30f, 0.5f};
  w.codes[3 * k + 200] = 0x7f;
  w.codes[5 * k + 7] = 0xff;
  const auto deq = Dequant(w);
  const auto deq_b = ToBf16Bits(deq);
  for (int64_t m : {1, 4, 9}) {
    const auto x = Normal(m * k, 72, 1e-3f);
    for (bool bf16 : {false, true}) {
      SCOPED_TRACE(::testing::Message() << "m " << m << " bf16 " << bf16);
      std::vector<float> want(m * n), got(m * n);
      Linear({.x = x.data(), .w = bf16 ? static_cast<const void*>(deq_b.data()) : deq.data(),
              .y = want.data(), .m = m, .n = n, .k = k, .w_bf16 = bf16},
             SerialFor);
      LinearFp8({.x = x.data(), .w = w.codes.data(), .scale_inv = w.scale.data(),
                 .y = got.data(), .m = m, .n = n, .k = k, .round_bf16 = bf16},
                SerialFor);
      for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < n; ++j) {
          const float g = got[i * n + j], e = want[i * n + j];
          if (j == 3 || j == 5) {
            EXPECT_TRUE(std::isnan(g)) << i << "," << j;
          } else if (bf16) {
            EXPECT_EQ(g, e) << i << "," << j;
          } else {
            EXPECT_NEAR(g, e, 1e-5 * std::fabs(e)) << i << "," << j;
          }
        }
    }
  }
}

// The decode-sized schedule (m <= 4, fused decode) and the tiled one (larger m) add the same
// products in the same order: rows of an m = 4 call equal those rows of an m = 11 call.
TEST(LinearFp8, SchedulesAgreeBitForBit) {
  const int64_t n = 67, k = 1000;
  const Fp8Matrix w = MakeFp8(n, k, 81);
  const auto x = Normal(11 * k, 82);
  for (bool bf16 : {false, true}) {
    std::vector<float> small(4 * n), large(11 * n);
    LinearFp8({.x = x.data() + 7 * k, .w = w.codes.data(), .scale_inv = w.scale.data(),
               .y = small.data(), .m = 4, .n = n, .k = k, .round_bf16 = bf16},
              SerialFor);
    LinearFp8({.x = x.data(), .w = w.codes.data(), .scale_inv = w.scale.data(),
               .y = large.data(), .m = 11, .n = n, .k = k, .round_bf16 = bf16},
              ThreadedFor);
    EXPECT_EQ(std::memcmp(small.data(), large.data() + 7 * n, small.size() * 4), 0) << bf16;
  }
}

// ---------------------------------------------------------------------------------------------
// act_quant

TEST(ActQuantFp8, KnownCodesAndScales) {
  // Block 0 (128 columns): amax 896 -> s = 2. Block 1 (2 columns, partial): amax 3e-5 is under
  // the 1e-4 floor -> s = 1e-4 / 448.
  const int64_t k = 130;
  std::vector<float> x(k, 0.0f);
  x[0] = -896.0f;          // -448        -> 0xfe
  x[1] = -0.0f;            // -0          -> 0x80
  x[2] = 1.0f;             // 0.5 = 2^-1  -> E 6, M 0: 0x30
  x[3] = 2.125f;           // 1.0625: tie between 1 and 1.125 -> even (1.0): 0x38
  x[4] = 2.375f;           // 1.1875: tie between 1.125 and 1.25 -> even (1.25): 0x3a
  x[5] = 1e-30f;           // underflows to +0
  x[6] = std::ldexp(3.0f, -9);  // 1.5 * 2^-9 = 1.5 denormal steps: tie -> 2 steps: 0x02
  x[7] = 9e-4f;            // x / s = 4.5e-4, a normal E4M3 value after rounding
  x[128] = 3e-5f;
  x[129] = -1e-5f;
  std::vector<uint8_t> q(k);
  std::vector<float> s(2);
  ActQuantFp8({.x = x.data(), .q = q.data(), .scale = s.data(), .m = 1, .k = k});
  EXPECT_EQ(s[0], 2.0f);
  EXPECT_EQ(s[1], 1e-4f / 448.0f);
  EXPECT_EQ(q[0], 0xfe);
  EXPECT_EQ(q[1], 0x80);
  EXPECT_EQ(q[2], 0x30);
  EXPECT_EQ(q[3], 0x38);
  EXPECT_EQ(q[4], 0x3a);
  EXPECT_EQ(q[5], 0x00);
  EXPECT_EQ(q[6], 0x02);
  EXPECT_EQ(q[7], F32ToF8E4M3(x[7] / 2.0f));
  EXPECT_EQ(q[8], 0x00);
  EXPECT_EQ(q[128], F32ToF8E4M3(3e-5f / (1e-4f / 448.0f)));  // 134.4 -> 128 (0x70)
  EXPECT_EQ(q[128], 0x70);
  EXPECT_EQ(q[129], 0xe3);  // -44.8 -> -44 = -(1 + 3/8) * 2^5
  // An all-zero row: floor scale, zero codes.
  std::vector<float> z(5, 0.0f);
  ActQuantFp8({.x = z.data(), .q = q.data(), .scale = s.data(), .m = 1, .k = 5});
  EXPECT_EQ(s[0], 1e-4f / 448.0f);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(q[i], 0);
}

// Random rows with strides: every block's largest magnitude maps to ±448, and decode(code) * s
// is within half an E4M3 step of x.
TEST(ActQuantFp8, BlockMaximaSaturateExactlyAndErrorsAreHalfASteps) {
  const int64_t m = 7, k = 300, ldx = 311, ldq = 305, blocks = 3;
  auto x = Normal(m * ldx, 41, 3.0f);
  for (int64_t j = 0; j < 128; ++j) x[2 * ldx + j] *= 1e-6f;  // a block under the floor
  std::vector<uint8_t> q(m * ldq, 0xaa);
  std::vector<float> s(m * 4, -1.0f);
  ActQuantFp8({.x = x.data(), .q = q.data(), .scale = s.data(), .m = m, .k = k, .ldx = ldx,
               .ldq = ldq, .ld_scale = 4});
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t j0 = b * 128, j1 = std::min(k, j0 + 128);
      float amax = 0;
      int64_t arg = j0;
      for (int64_t j = j0; j < j1; ++j)
        if (std::fabs(x[i * ldx + j]) > amax) amax = std::fabs(x[i * ldx + j]), arg = j;
      const float sc = s[i * 4 + b];
      EXPECT_EQ(sc, std::max(amax, 1e-4f) / 448.0f);
      if (amax >= 1e-4f) {
        EXPECT_EQ(q[i * ldq + arg] & 0x7f, 0x7e) << i << "," << b;
      }
      for (int64_t j = j0; j < j1; ++j) {
        const float v = E4M3Table()[q[i * ldq + j]] * sc, xv = x[i * ldx + j];
        EXPECT_LE(std::fabs(v - xv), std::fabs(xv) / 16 + sc * std::ldexp(1.0f, -10) + 1e-30f);
      }
    }
    EXPECT_EQ(s[i * 4 + 3], -1.0f);  // past the blocks: untouched
    for (int64_t j = k; j < ldq; ++j) EXPECT_EQ(q[i * ldq + j], 0xaa);
  }
}

// ---------------------------------------------------------------------------------------------
// fp8_gemm reference

// Hand-sized case: n = 3 rows in 2-row scale blocks, k = 130 in blocks of 128 and 2.
TEST(Fp8BlockGemmRef, BlockSumsAreScaledByBothScales) {
  const int64_t m = 2, n = 3, k = 130;
  std::mt19937 rng(51);
  std::uniform_int_distribution<int> code(0, 0x7e);
  std::vector<uint8_t> a(m * k), w(n * k);
  for (auto& c : a) c = static_cast<uint8_t>(code(rng) | (rng() & 0x80));
  for (auto& c : w) c = static_cast<uint8_t>(code(rng) | (rng() & 0x80));
  const std::vector<float> a_scale = {0.5f, 3.0f, 0.25f, 7.0f};  // [m, 2]
  const std::vector<float> w_scale = {0.01f, 2.0f, 0.1f, 5.0f};  // [ceil(3 / 2), 2]
  std::vector<float> y(m * n);
  Fp8BlockGemmRef({.a = a.data(), .a_scale = a_scale.data(), .w = w.data(),
                   .w_scale_inv = w_scale.data(), .y = y.data(), .m = m, .n = n, .k = k,
                   .block_n = 2},
                  SerialFor);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double want = 0;
      for (int64_t t = 0; t < k; ++t) {
        const int64_t b = t / 128;
        want += static_cast<double>(E4M3Table()[a[i * k + t]]) * E4M3Table()[w[j * k + t]] *
                a_scale[i * 2 + b] * w_scale[(j / 2) * 2 + b];
      }
      EXPECT_NEAR(y[i * n + j], want, 1e-5 * std::fabs(want) + 1e-6) << i << "," << j;
    }
}

// Strided views (lda, ldw / ld_w_scale of a column slice, ld_a_scale, ldy) and accumulate give
// exactly the dense call's numbers.
TEST(Fp8BlockGemmRef, StridedViewsAndAccumulate) {
  const int64_t m = 3, n = 5, K = 512, k0 = 256, k = 200, kb = 2, KB = 4;
  std::mt19937 rng(53);
  std::vector<uint8_t> a(m * k), w(n * K);
  for (auto& c : a) c = F32ToE4M3(std::normal_distribution<float>(0, 50)(rng));
  for (auto& c : w) c = F32ToE4M3(std::normal_distribution<float>(0, 50)(rng));
  std::vector<float> a_scale(m * kb), w_scale(KB);
  for (auto& v : a_scale) v = std::uniform_real_distribution<float>(0.1f, 2.0f)(rng);
  for (auto& v : w_scale) v = std::uniform_real_distribution<float>(0.1f, 2.0f)(rng);
  // Dense copies of the slice.
  std::vector<uint8_t> ws(n * k);
  for (int64_t j = 0; j < n; ++j)
    std::copy(w.begin() + j * K + k0, w.begin() + j * K + k0 + k, ws.begin() + j * k);
  std::vector<float> want(m * n);
  Fp8BlockGemmRef({.a = a.data(), .a_scale = a_scale.data(), .w = ws.data(),
                   .w_scale_inv = w_scale.data() + k0 / 128, .y = want.data(), .m = m, .n = n,
                   .k = k},
                  SerialFor);
  // Strided: a with row stride k + 16 and scales with stride 3; y with stride n + 2, += 1.
  std::vector<uint8_t> a2(m * (k + 16), 0x7e);
  std::vector<float> as2(m * 3, -1.0f), y(m * (n + 2), 1.0f);
  for (int64_t i = 0; i < m; ++i) {
    std::copy(a.begin() + i * k, a.begin() + (i + 1) * k, a2.begin() + i * (k + 16));
    std::copy(a_scale.begin() + i * kb, a_scale.begin() + (i + 1) * kb, as2.begin() + i * 3);
  }
  Fp8BlockGemmRef({.a = a2.data(), .a_scale = as2.data(), .w = w.data() + k0,
                   .w_scale_inv = w_scale.data() + k0 / 128, .y = y.data(), .m = m, .n = n,
                   .k = k, .lda = k + 16, .ldw = K, .ld_a_scale = 3, .ld_w_scale = KB,
                   .ldy = n + 2, .accumulate = true},
                  ThreadedFor);
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) EXPECT_EQ(y[i * (n + 2) + j], 1.0f + want[i * n + j]);
    EXPECT_EQ(y[i * (n + 2) + n], 1.0f);
  }
}

// act_quant(x) · W_q against the exact product x · W of the unquantised values. With
// ε = 2^-4 (half an ulp of a 3-bit mantissa) and η = 2^-10 · scale (half the denormal step),
// each quantised value is v + δ with |δ| <= ε|v| + η, so per product
//   |x_q w_q - x w| <= (2ε + ε²)|x||w| + (1 + ε)(η_x|w| + η_w|x|) + η_x η_w,
// summed over k; f32 summation inside the reference adds < 1e-5 of sum |x w| here.
TEST(Fp8BlockGemmRef, ActQuantProductIsWithinTheFp8Bound) {
  const int64_t m = 5, n = 150, k = 400;
  const auto x = Normal(m * k, 61, 2.0f), w = Normal(n * k, 62, 0.05f);
  const int64_t kb = 4, nb = 2;
  // Weights: block-quantised like the checkpoints (scale_inv = amax / 448).
  std::vector<uint8_t> wq(n * k), xq(m * k);
  std::vector<float> ws(nb * kb), xs(m * kb);
  for (int64_t bi = 0; bi < nb; ++bi)
    for (int64_t bj = 0; bj < kb; ++bj) {
      float amax = 0;
      for (int64_t i = bi * 128; i < std::min(n, bi * 128 + 128); ++i)
        for (int64_t j = bj * 128; j < std::min(k, bj * 128 + 128); ++j)
          amax = std::max(amax, std::fabs(w[i * k + j]));
      ws[bi * kb + bj] = amax / 448.0f;
      for (int64_t i = bi * 128; i < std::min(n, bi * 128 + 128); ++i)
        for (int64_t j = bj * 128; j < std::min(k, bj * 128 + 128); ++j)
          wq[i * k + j] = F32ToE4M3(w[i * k + j] / ws[bi * kb + bj]);
    }
  ActQuantFp8({.x = x.data(), .q = xq.data(), .scale = xs.data(), .m = m, .k = k});
  std::vector<float> y(m * n);
  Fp8BlockGemmRef({.a = xq.data(), .a_scale = xs.data(), .w = wq.data(), .w_scale_inv = ws.data(),
                   .y = y.data(), .m = m, .n = n, .k = k},
                  ThreadedFor);
  const double eps = 1.0 / 16;
  double worst = 0, err2 = 0, ref2 = 0;
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double exact = 0, bound = 0, abs_sum = 0;
      for (int64_t t = 0; t < k; ++t) {
        const double xv = x[i * k + t], wv = w[j * k + t];
        const double ex = std::ldexp(xs[i * kb + t / 128], -10);
        const double ew = std::ldexp(ws[(j / 128) * kb + t / 128], -10);
        exact += xv * wv;
        abs_sum += std::fabs(xv * wv);
        bound += (2 * eps + eps * eps) * std::fabs(xv * wv) +
                 (1 + eps) * (ex * std::fabs(wv) + ew * std::fabs(xv)) + ex * ew;
      }
      bound += 1e-5 * abs_sum;
      const double err = std::fabs(y[i * n + j] - exact);
      EXPECT_LE(err, bound) << i << "," << j;
      worst = std::max(worst, err / bound);
      err2 += err * err;
      ref2 += exact * exact;
    }
  // Typical errors are far inside the worst case: about 3% of the output's RMS.
  EXPECT_LT(std::sqrt(err2 / ref2), 0.06);
  RecordProperty("worst_err_over_bound", std::to_string(worst));
}

}  // namespace
}  // namespace dsinfer::cpu
