#include "kernels/cpu/linear.h"

#include <cblas.h>
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <vector>

namespace dsinfer::cpu {
namespace {

inline uint16_t ToBf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

inline float FromBf16(uint16_t h) {
  uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// A tile of dot products between C bf16 weight rows and R bf16 activation rows, f32
// accumulation: out[r * C + c] = sum_k x[r][k] * w[c][k].
template <int R, int C>
inline void DotTile(const uint16_t* const* ws, const uint16_t* const* xs, int64_t k, float* out) {
  int64_t kk = 0;
#if defined(__AVX512BF16__)
  __m512 acc[R][C];
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) acc[r][c] = _mm512_setzero_ps();
  for (; kk + 32 <= k; kk += 32) {
    __m512i wv[C];
    for (int c = 0; c < C; ++c) wv[c] = _mm512_loadu_si512(reinterpret_cast<const void*>(ws[c] + kk));
    for (int r = 0; r < R; ++r) {
      __m512i xv = _mm512_loadu_si512(reinterpret_cast<const void*>(xs[r] + kk));
      for (int c = 0; c < C; ++c)
        acc[r][c] = _mm512_dpbf16_ps(acc[r][c], (__m512bh)xv, (__m512bh)wv[c]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) out[r * C + c] = _mm512_reduce_add_ps(acc[r][c]);
#elif defined(__AVX2__) && defined(__FMA__)
  __m256 acc[R][C];
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) acc[r][c] = _mm256_setzero_ps();
  auto load8 = [](const uint16_t* p) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(
        _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))), 16));
  };
  for (; kk + 8 <= k; kk += 8) {
    __m256 wv[C];
    for (int c = 0; c < C; ++c) wv[c] = load8(ws[c] + kk);
    for (int r = 0; r < R; ++r) {
      __m256 xv = load8(xs[r] + kk);
      for (int c = 0; c < C; ++c) acc[r][c] = _mm256_fmadd_ps(wv[c], xv, acc[r][c]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) {
      __m128 s = _mm_add_ps(_mm256_castps256_ps128(acc[r][c]), _mm256_extractf128_ps(acc[r][c], 1));
      s = _mm_hadd_ps(s, s);
      s = _mm_hadd_ps(s, s);
      out[r * C + c] = _mm_cvtss_f32(s);
    }
#else
  for (int i = 0; i < R * C; ++i) out[i] = 0.f;
#endif
  for (; kk < k; ++kk)
    for (int r = 0; r < R; ++r)
      for (int c = 0; c < C; ++c) out[r * C + c] += FromBf16(xs[r][kk]) * FromBf16(ws[c][kk]);
}

template <int C>
inline void DotRowsC(int r, const uint16_t* const* ws, const uint16_t* const* xs, int64_t k,
                     float* out) {
  switch (r) {
    case 4: DotTile<4, C>(ws, xs, k, out); break;
    case 3: DotTile<3, C>(ws, xs, k, out); break;
    case 2: DotTile<2, C>(ws, xs, k, out); break;
    default: DotTile<1, C>(ws, xs, k, out); break;
  }
}

// bf16 weights x f32 activations (rounded to bf16), f32 accumulation. Weight rows are split
// across threads; activations are walked in chunks that stay in L2 while a thread's weight rows
// stream past, so weights are read from memory once per chunk (once in decode).
void GemmBf16(const LinearParams& p, const ParallelFor& pfor) {
  const int64_t ldx = p.ldx ? p.ldx : p.k, ldy = p.ldy ? p.ldy : p.n;
  std::vector<uint16_t> xb(static_cast<size_t>(p.m * p.k));
  for (int64_t i = 0; i < p.m; ++i)
    for (int64_t j = 0; j < p.k; ++j) xb[i * p.k + j] = ToBf16(p.x[i * ldx + j]);
  const uint16_t* w = static_cast<const uint16_t*>(p.w);
  const int64_t chunk = std::max<int64_t>(4, (256 * 1024 / 2) / std::max<int64_t>(1, p.k) / 4 * 4);
  const int64_t pairs = (p.n + 1) / 2;
  pfor(pairs, [&](int64_t p0, int64_t p1) {
    const int64_t n0 = 2 * p0, n1 = std::min(p.n, 2 * p1);
    for (int64_t i0 = 0; i0 < p.m; i0 += chunk) {
      const int64_t i1 = std::min(p.m, i0 + chunk);
      for (int64_t j = n0; j < n1; j += 2) {
        const int c = static_cast<int>(std::min<int64_t>(2, n1 - j));
        const uint16_t* ws[2] = {w + j * p.k, w + (j + c - 1) * p.k};
        for (int64_t i = i0; i < i1; i += 4) {
          const int r = static_cast<int>(std::min<int64_t>(4, i1 - i));
          const uint16_t* xs[4];
          for (int q = 0; q < r; ++q) xs[q] = xb.data() + (i + q) * p.k;
          float out[8];
          if (c == 2) DotRowsC<2>(r, ws, xs, p.k, out);
          else DotRowsC<1>(r, ws, xs, p.k, out);
          for (int q = 0; q < r; ++q)
            for (int cc = 0; cc < c; ++cc) {
              float* dst = p.y + (i + q) * ldy + j + cc;
              *dst = p.accumulate ? *dst + out[q * c + cc] : out[q * c + cc];
            }
        }
      }
    }
  });
}

}  // namespace

void Linear(const LinearParams& p, const ParallelFor& pfor) {
  if (p.m <= 0 || p.n <= 0) return;
  if (p.k == 0) {
    if (!p.accumulate) {
      const int64_t ldy = p.ldy ? p.ldy : p.n;
      for (int64_t i = 0; i < p.m; ++i) std::fill(p.y + i * ldy, p.y + i * ldy + p.n, 0.f);
    }
    return;
  }
  if (p.w_bf16) {
    GemmBf16(p, pfor);
    return;
  }
  const int64_t ldx = p.ldx ? p.ldx : p.k, ldy = p.ldy ? p.ldy : p.n;
  if (p.m == 1) {  // OpenBLAS's GEMV path streams the weights far better than GEMM at m = 1
    cblas_sgemv(CblasRowMajor, CblasNoTrans, static_cast<blasint>(p.n), static_cast<blasint>(p.k),
                1.0f, static_cast<const float*>(p.w), static_cast<blasint>(p.k), p.x, 1,
                p.accumulate ? 1.0f : 0.0f, p.y, 1);
    return;
  }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<blasint>(p.m),
              static_cast<blasint>(p.n), static_cast<blasint>(p.k), 1.0f, p.x,
              static_cast<blasint>(ldx), static_cast<const float*>(p.w), static_cast<blasint>(p.k),
              p.accumulate ? 1.0f : 0.0f, p.y, static_cast<blasint>(ldy));
}

void SetBlasThreads(int n) { openblas_set_num_threads(n); }

}  // namespace dsinfer::cpu

namespace dsinfer::cpu {

void MatMulF32(const float* a, int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc,
               int64_t m, int64_t n, int64_t k) {
  if (m <= 0 || n <= 0) return;
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<blasint>(m),
              static_cast<blasint>(n), static_cast<blasint>(k), 1.0f, a, static_cast<blasint>(lda),
              b, static_cast<blasint>(ldb), 0.0f, c, static_cast<blasint>(ldc));
}

}  // namespace dsinfer::cpu
