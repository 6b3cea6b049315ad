// MLA prefill (expanded form), tiled in the manner of FlashAttention (Dao et al., 2022,
// "FlashAttention: Fast and Memory-Efficient Exact Attention with IO-Awareness"): scores are
// computed a tile of queries x keys at a time from packed K/V panels, never as a whole
// [n_new, n_total] matrix, and causal tiles above the diagonal are skipped. Unlike
// FlashAttention's online softmax, each query row's scores are kept for its whole causal range
// (a [block, n_total] scratch per worker), so the softmax is the plain two-pass one.
//
// Invariant: every output element is one fixed sequence of f32 operations that depends only on
// (query position, head), never on the query block, the register tile, the thread split or the
// chunk a token was prefilled in:
//   s_t   = (sum over d = 0..nope+rope-1, in order, of fma(q_d, k_td)) * scale
//   e_t   = Exp(s_t - max_t s_t)          (the polynomial below, elementwise)
//   sum   = eight double lanes by t % 8, added in lane order
//   out_c = (sum over t = 0..pos, in order, of fma(e_t, v_tc)) * float(1 / sum)
// A tile that covers keys past a row's position adds exact zeros (e_t = 0) to that row. Every
// FMA is written out and the file is built with -ffp-contract=off, so the AVX-512, AVX2 and
// portable paths give the same bits.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <vector>

#include "kernels/cpu/mla_attention.h"

#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
#include <immintrin.h>
#endif

namespace dsinfer::cpu {
namespace {

// A native SIMD vector of kLanes floats and the few operations the tiles need. Every fused
// multiply-add is a real FMA (one rounding) on all three, so the ISAs agree bit for bit.
#if defined(__AVX512F__)
constexpr int64_t kLanes = 16;
using Vec = __m512;
inline Vec Zero() { return _mm512_setzero_ps(); }
inline Vec Set1(float x) { return _mm512_set1_ps(x); }
inline Vec Load(const float* p) { return _mm512_loadu_ps(p); }
inline void Store(float* p, Vec v) { _mm512_storeu_ps(p, v); }
inline Vec Fma(Vec a, Vec b, Vec c) { return _mm512_fmadd_ps(a, b, c); }
inline Vec Mul(Vec a, Vec b) { return _mm512_mul_ps(a, b); }
inline Vec Add(Vec a, Vec b) { return _mm512_add_ps(a, b); }
inline Vec Sub(Vec a, Vec b) { return _mm512_sub_ps(a, b); }
inline Vec Max(Vec a, Vec b) { return _mm512_max_ps(a, b); }
// (bits(t) + k) << 23 as float: 2^n from the round-to-integer trick in Exp.
inline Vec Pow2Bits(Vec t, int32_t k) {
  return _mm512_castsi512_ps(
      _mm512_slli_epi32(_mm512_add_epi32(_mm512_castps_si512(t), _mm512_set1_epi32(k)), 23));
}
#elif defined(__AVX2__) && defined(__FMA__)
constexpr int64_t kLanes = 8;
using Vec = __m256;
inline Vec Zero() { return _mm256_setzero_ps(); }
inline Vec Set1(float x) { return _mm256_set1_ps(x); }
inline Vec Load(const float* p) { return _mm256_loadu_ps(p); }
inline void Store(float* p, Vec v) { _mm256_storeu_ps(p, v); }
inline Vec Fma(Vec a, Vec b, Vec c) { return _mm256_fmadd_ps(a, b, c); }
inline Vec Mul(Vec a, Vec b) { return _mm256_mul_ps(a, b); }
inline Vec Add(Vec a, Vec b) { return _mm256_add_ps(a, b); }
inline Vec Sub(Vec a, Vec b) { return _mm256_sub_ps(a, b); }
inline Vec Max(Vec a, Vec b) { return _mm256_max_ps(a, b); }
inline Vec Pow2Bits(Vec t, int32_t k) {
  return _mm256_castsi256_ps(
      _mm256_slli_epi32(_mm256_add_epi32(_mm256_castps_si256(t), _mm256_set1_epi32(k)), 23));
}
#else  // portable fallback: same arithmetic, scalar
constexpr int64_t kLanes = 8;
struct Vec {
  float x[kLanes];
};
template <typename F>
inline Vec Map(F f) {
  Vec r;
  for (int64_t j = 0; j < kLanes; ++j) r.x[j] = f(j);
  return r;
}
inline Vec Zero() {
  return Map([](int64_t) { return 0.f; });
}
inline Vec Set1(float v) {
  return Map([v](int64_t) { return v; });
}
inline Vec Load(const float* p) {
  return Map([p](int64_t j) { return p[j]; });
}
inline void Store(float* p, Vec v) { std::memcpy(p, v.x, sizeof(v.x)); }
inline Vec Fma(Vec a, Vec b, Vec c) {
  return Map([&](int64_t j) { return std::fma(a.x[j], b.x[j], c.x[j]); });
}
inline Vec Mul(Vec a, Vec b) {
  return Map([&](int64_t j) { return a.x[j] * b.x[j]; });
}
inline Vec Add(Vec a, Vec b) {
  return Map([&](int64_t j) { return a.x[j] + b.x[j]; });
}
inline Vec Sub(Vec a, Vec b) {
  return Map([&](int64_t j) { return a.x[j] - b.x[j]; });
}
inline Vec Max(Vec a, Vec b) {
  return Map([&](int64_t j) { return std::max(a.x[j], b.x[j]); });
}
inline Vec Pow2Bits(Vec t, int32_t k) {
  return Map([&](int64_t j) {
    uint32_t b;
    std::memcpy(&b, &t.x[j], 4);
    b = (b + static_cast<uint32_t>(k)) << 23;
    float f;
    std::memcpy(&f, &b, 4);
    return f;
  });
}
#endif

constexpr int64_t kMr = kLanes == 16 ? 8 : 4;  // query rows per register tile (AVX2: 16 regs)
constexpr int64_t kNr = 2 * kLanes;  // keys (scores) or value columns (P·V) per register tile
constexpr int64_t kBlock = 64;       // queries per work block (multiple of kMr)
constexpr int64_t kDirectRows = 2;   // up to this many queries: no packing (AttendRowDirect)

// e^x for x <= 0 (Cephes expf: x = n ln2 + r, |r| <= ln2 / 2, degree-7 polynomial; ~1 ulp).
// Below -87 it returns e^-87 ~ 1.6e-38 instead of a denormal; softmax weights that small add
// nothing a float sum can hold.
inline Vec Exp(Vec x) {
  constexpr float kMagic = 12582912.f;  // 1.5 * 2^23: adding it rounds to an integer
  x = Max(x, Set1(-87.f));
  const Vec t = Fma(x, Set1(1.44269504088896341f), Set1(kMagic));
  const Vec n = Sub(t, Set1(kMagic));
  Vec r = Fma(n, Set1(-0.693359375f), x);
  r = Fma(n, Set1(2.12194440e-4f), r);
  Vec p = Set1(1.9875691500e-4f);
  p = Fma(p, r, Set1(1.3981999507e-3f));
  p = Fma(p, r, Set1(8.3334519073e-3f));
  p = Fma(p, r, Set1(4.1665795894e-2f));
  p = Fma(p, r, Set1(1.6666665459e-1f));
  p = Fma(p, r, Set1(5.0000001201e-1f));
  const Vec y = Add(Fma(p, Mul(r, r), r), Set1(1.f));
  // bits(t) - bits(kMagic) = n; + 127 is the exponent bias.
  return Mul(y, Pow2Bits(t, 127 - 0x4B400000));
}

int64_t RoundUp(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

// One head's keys and values, packed once per call so the tiles read them contiguously:
// k [n_pad / kNr][nope + rope][kNr] (key panels, zero past n_total),
// v [v_pad / kNr][n_pad][kNr] (value column panels, zero past v).
struct HeadPanels {
  float* k;
  float* v;
};

// Scores of up to kMr query rows against key panel `kp`: s[i][kp*kNr + j] (row stride lds).
inline void ScoreTile(const float* const* q, int64_t qk, const float* kpanel, float scale, float* s,
                      int64_t lds) {
  Vec a0[kMr], a1[kMr];
  for (int64_t i = 0; i < kMr; ++i) a0[i] = a1[i] = Zero();
  for (int64_t d = 0; d < qk; ++d) {
    const Vec k0 = Load(kpanel + d * kNr), k1 = Load(kpanel + d * kNr + kLanes);
    for (int64_t i = 0; i < kMr; ++i) {
      const Vec qv = Set1(q[i][d]);
      a0[i] = Fma(qv, k0, a0[i]);
      a1[i] = Fma(qv, k1, a1[i]);
    }
  }
  const Vec sc = Set1(scale);
  for (int64_t i = 0; i < kMr; ++i) {
    Store(s + i * lds, Mul(a0[i], sc));
    Store(s + i * lds + kLanes, Mul(a1[i], sc));
  }
}

// acc[i][c] = sum over t < n of e[i][t] * v[t][c] for one value column panel (kNr columns).
inline void PvTile(const float* const* e, const float* vpanel, int64_t n, Vec (&a0)[kMr],
                   Vec (&a1)[kMr]) {
  for (int64_t i = 0; i < kMr; ++i) a0[i] = a1[i] = Zero();
  for (int64_t t = 0; t < n; ++t) {
    const Vec v0 = Load(vpanel + t * kNr), v1 = Load(vpanel + t * kNr + kLanes);
    for (int64_t i = 0; i < kMr; ++i) {
      const Vec ev = Set1(e[i][t]);
      a0[i] = Fma(ev, v0, a0[i]);
      a1[i] = Fma(ev, v1, a1[i]);
    }
  }
}

// Row softmax numerators in place over s[0, n) (n = the row's causal key count), zeros in
// [n, n_zero); returns 1 / (sum of the numerators).
float SoftmaxRow(float* s, int64_t n, int64_t n_zero) {
  float mx = -INFINITY;
#pragma omp simd reduction(max : mx)
  for (int64_t t = 0; t < n; ++t) mx = std::max(mx, s[t]);
  const Vec m = Set1(mx);
  for (int64_t t = 0; t < n; t += kLanes) Store(s + t, Exp(Sub(Load(s + t), m)));
  std::fill(s + n, s + n_zero, 0.f);
  double lanes[8] = {};
  for (int64_t t = 0; t < n_zero; t += 8)  // n_zero is a multiple of kNr, hence of 8
    for (int64_t j = 0; j < 8; ++j) lanes[j] += s[t + j];
  double sum = 0.0;
  for (double l : lanes) sum += l;
  return static_cast<float>(1.0 / sum);
}

struct Geometry {
  int64_t qk, n_pad, v_pad, first;
};

// Queries [i0, i1) of head h. `s` is [kBlock, n_pad] scratch.
void AttendBlock(const MlaPrefillParams& p, const Geometry& g, const HeadPanels& hp, int64_t h,
                 int64_t i0, int64_t i1, float* s) {
  const int64_t lds = g.n_pad;
  const float* q[kBlock];
  for (int64_t i = 0; i < kBlock; ++i)  // rows past i1 alias the last row; never stored
    q[i] = p.q + (std::min(i0 + i, i1 - 1) * p.heads + h) * g.qk;
  // keys needed by rows [r, r + kMr): up to the last valid row's position
  auto group_keys = [&](int64_t r) { return g.first + std::min(i0 + r + kMr, i1); };
  const int64_t rows = RoundUp(i1 - i0, kMr);
  // Scores, key panel outermost so a panel stays in L1 while every row group uses it.
  for (int64_t kp = 0; kp * kNr < group_keys(rows - kMr); ++kp) {
    const float* panel = hp.k + kp * g.qk * kNr;
    for (int64_t r = 0; r < rows; r += kMr) {
      if (kp * kNr >= group_keys(r)) continue;  // above the diagonal for the whole group
      ScoreTile(q + r, g.qk, panel, p.softmax_scale, s + r * lds + kp * kNr, lds);
    }
  }
  float inv[kBlock];
  for (int64_t r = 0; r < rows; ++r)
    inv[r] = SoftmaxRow(s + r * lds, std::min(g.first + i0 + r + 1, g.first + i1),
                        RoundUp(group_keys(r / kMr * kMr), kNr));
  for (int64_t r = 0; r < rows; r += kMr) {
    const float* e[kMr];
    for (int64_t i = 0; i < kMr; ++i) e[i] = s + (r + i) * lds;
    const int64_t n = group_keys(r);
    for (int64_t c0 = 0; c0 < p.v; c0 += kNr) {
      Vec a0[kMr], a1[kMr];
      PvTile(e, hp.v + c0 * g.n_pad, n, a0, a1);
      for (int64_t i = 0; i < kMr && i0 + r + i < i1; ++i) {
        float tile[kNr];
        Store(tile, Mul(a0[i], Set1(inv[r + i])));
        Store(tile + kLanes, Mul(a1[i], Set1(inv[r + i])));
        float* out = p.out + ((i0 + r + i) * p.heads + h) * p.v + c0;
        std::memcpy(out, tile, std::min(kNr, p.v - c0) * sizeof(float));
      }
    }
  }
}

// One query row straight from the unpacked kv / k_pe rows, for a few queries, where packing
// every key would cost more than it saves. Same operations per element as the tiles (scalar
// std::fma is the vector FMA lane by lane): the invariant above holds across both paths.
void AttendRowDirect(const MlaPrefillParams& p, const Geometry& g, int64_t h, int64_t i, float* s) {
  const int64_t kvw = p.nope + p.v, ld = p.heads * kvw, n = g.first + i + 1;
  const float* q = p.q + (i * p.heads + h) * g.qk;
  const float* k = p.kv + h * kvw;
  constexpr int64_t kGroup = 8;  // independent FMA chains, one per key
  for (int64_t t0 = 0; t0 < RoundUp(n, kNr); t0 += kGroup) {
    const float* kr[kGroup];
    const float* pe[kGroup];
    for (int64_t j = 0; j < kGroup; ++j) {  // keys past n repeat the last one; zeroed below
      const int64_t t = std::min(t0 + j, n - 1);
      kr[j] = k + t * ld;
      pe[j] = p.k_pe + t * p.ld_kpe;
    }
    float acc[kGroup] = {};
    for (int64_t d = 0; d < p.nope; ++d)
      for (int64_t j = 0; j < kGroup; ++j) acc[j] = std::fma(q[d], kr[j][d], acc[j]);
    for (int64_t d = 0; d < p.rope; ++d)
      for (int64_t j = 0; j < kGroup; ++j) acc[j] = std::fma(q[p.nope + d], pe[j][d], acc[j]);
    for (int64_t j = 0; j < kGroup; ++j) s[t0 + j] = acc[j] * p.softmax_scale;
  }
  const float inv = SoftmaxRow(s, n, RoundUp(n, kNr));
  const float* v = k + p.nope;
  float* out = p.out + (i * p.heads + h) * p.v;
  int64_t c0 = 0;
  for (; c0 + 4 * kLanes <= p.v; c0 += 4 * kLanes) {
    Vec a[4] = {Zero(), Zero(), Zero(), Zero()};
    for (int64_t t = 0; t < n; ++t) {
      const Vec e = Set1(s[t]);
      for (int64_t c = 0; c < 4; ++c) a[c] = Fma(e, Load(v + t * ld + c0 + c * kLanes), a[c]);
    }
    for (int64_t c = 0; c < 4; ++c) Store(out + c0 + c * kLanes, Mul(a[c], Set1(inv)));
  }
  for (; c0 < p.v; ++c0) {
    float a = 0.f;
    for (int64_t t = 0; t < n; ++t) a = std::fma(s[t], v[t * ld + c0], a);
    out[c0] = a * inv;
  }
}

void PackHead(const MlaPrefillParams& p, const Geometry& g, int64_t h, const HeadPanels& hp) {
  const int64_t kvw = p.nope + p.v;
  for (int64_t t = 0; t < g.n_pad; ++t) {
    float* kdst = hp.k + (t / kNr) * g.qk * kNr + t % kNr;
    if (t + 8 < p.n_total) {  // rows are heads * (nope + v) floats apart: a new page each
      const char* next = reinterpret_cast<const char*>(p.kv + ((t + 8) * p.heads + h) * kvw);
      for (int64_t b = 0; b < kvw * 4; b += 64) __builtin_prefetch(next + b);
      __builtin_prefetch(p.k_pe + (t + 8) * p.ld_kpe);
    }
    if (t < p.n_total) {
      const float* row = p.kv + (t * p.heads + h) * kvw;
      const float* pe = p.k_pe + t * p.ld_kpe;
      for (int64_t d = 0; d < p.nope; ++d) kdst[d * kNr] = row[d];
      for (int64_t d = 0; d < p.rope; ++d) kdst[(p.nope + d) * kNr] = pe[d];
      for (int64_t c0 = 0; c0 < g.v_pad; c0 += kNr) {
        float* vdst = hp.v + c0 * g.n_pad + t * kNr;
        const int64_t len = std::max<int64_t>(0, std::min(kNr, p.v - c0));
        std::memcpy(vdst, row + p.nope + c0, len * sizeof(float));
        std::fill(vdst + len, vdst + kNr, 0.f);
      }
    } else {
      for (int64_t d = 0; d < g.qk; ++d) kdst[d * kNr] = 0.f;
      for (int64_t c0 = 0; c0 < g.v_pad; c0 += kNr)
        std::fill(hp.v + c0 * g.n_pad + t * kNr, hp.v + c0 * g.n_pad + (t + 1) * kNr, 0.f);
    }
  }
}

}  // namespace

void MlaPrefill(const MlaPrefillParams& p, const ParallelFor& pfor) {
  if (p.n_new <= 0 || p.heads <= 0) return;
  const Geometry g{.qk = p.nope + p.rope,
                   .n_pad = RoundUp(p.n_total, kNr),
                   .v_pad = RoundUp(p.v, kNr),
                   .first = p.n_total - p.n_new};
  if (p.n_new <= kDirectRows) {
    pfor(p.heads * p.n_new, [&](int64_t w0, int64_t w1) {
      std::unique_ptr<float[]> s(new float[g.n_pad]);
      // head-major: a head's rows (~1 KB a key) stay cached while its queries read them
      for (int64_t w = w0; w < w1; ++w) AttendRowDirect(p, g, w / p.n_new, w % p.n_new, s.get());
    });
    return;
  }
  // Work item = (head, pair of query blocks j and nb-1-j): a pair has about the same causal
  // work wherever it sits, so ParallelFor's contiguous equal-count chunks stay balanced. Items
  // are head-major and a worker packs a head's panels when its range reaches that head, so a
  // head is packed once per worker that touches it (scratch: one head's panels per worker).
  const int64_t nb = (p.n_new + kBlock - 1) / kBlock, pairs = (nb + 1) / 2;
  const int64_t head_floats = g.n_pad * (g.qk + g.v_pad);
  pfor(p.heads * pairs, [&](int64_t w0, int64_t w1) {
    std::unique_ptr<float[]> panels(new float[head_floats]), s(new float[kBlock * g.n_pad]);
    const HeadPanels hp{.k = panels.get(), .v = panels.get() + g.n_pad * g.qk};
    int64_t packed = -1;
    for (int64_t w = w0; w < w1; ++w) {
      const int64_t h = w / pairs, j = w % pairs;
      if (h != packed) PackHead(p, g, packed = h, hp);
      for (int64_t b : {j, nb - 1 - j}) {
        AttendBlock(p, g, hp, h, b * kBlock, std::min(p.n_new, (b + 1) * kBlock), s.get());
        if (nb - 1 - j == j) break;
      }
    }
  });
}

}  // namespace dsinfer::cpu
