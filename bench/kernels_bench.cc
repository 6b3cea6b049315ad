// CPU kernel micro-benchmarks. Linear reports weight bytes streamed per second (decode is
// memory bound) and FLOP/s; compare with the memory bandwidth from `MemcpyBandwidth`.
// LinearFp8VsBf16 compares FP8 and bf16 weights call by call on weights that exceed the L3;
// LinearFp4VsFp8 adds FP4 (E2M1 + E8M0, DeepSeek-V4 experts) on V4-Flash expert shapes.
// LinearBf16AmxVsAvx512 compares the AMX-BF16 tiles with AVX512-BF16 on V2-Lite's GEMMs.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <random>
#include <vector>

#include "kernels/cpu/attention_math.h"
#include "kernels/cpu/isa.h"
#include "kernels/cpu/linear.h"
#include "kernels/cpu/fp8.h"
#include "kernels/cpu/linear_fp4.h"
#include "kernels/cpu/linear_fp8.h"
#include "kernels/cpu/mla_attention.h"
#include "src/core/thread_pool.h"

namespace dsinfer::cpu {
namespace {

ThreadPool& Pool() {
  static ThreadPool pool(2);
  return pool;
}
ParallelFor Pfor() {
  return [](int64_t n, const RangeBody& b) { Pool().ParallelFor(n, b); };
}

// Large copy: a practical upper bound for streaming weights.
void MemcpyBandwidth(benchmark::State& state) {
  const size_t bytes = 256 << 20;
  std::vector<char> a(bytes, 1), b(bytes);
  for (auto _ : state) {
    std::memcpy(b.data(), a.data(), bytes);
    benchmark::DoNotOptimize(b.data());
  }
  state.SetBytesProcessed(state.iterations() * bytes * 2);
}
BENCHMARK(MemcpyBandwidth)->Unit(benchmark::kMillisecond)->UseRealTime();

// Read bandwidth as a decode GEMV sees memory: 1 GiB (beyond any cache) streamed by 1 or 2
// threads of the pool, XOR-reduced (integer, so the compiler vectorises it with no dependency
// chain on FP latency). Bytes read per second.
void ReadBandwidth(benchmark::State& state) {
  const int64_t threads = state.range(0);
  const size_t n = (size_t{1} << 30) / sizeof(uint64_t);
  std::vector<uint64_t> a(n);
  for (size_t i = 0; i < n; ++i) a[i] = i * 0x9e3779b97f4a7c15ull;
  auto pfor = threads == 1 ? ParallelFor(SerialFor) : Pfor();
  for (auto _ : state) {
    std::vector<uint64_t> part(2, 0);
    pfor(2, [&](int64_t b, int64_t e) {
      for (int64_t t = b; t < e; ++t) {
        uint64_t s = 0;
        for (size_t i = t * n / 2; i < (t + 1) * n / 2; ++i) s ^= a[i];
        part[t] = s;
      }
    });
    benchmark::DoNotOptimize(part.data());
  }
  state.SetBytesProcessed(state.iterations() * n * sizeof(uint64_t));
}
BENCHMARK(ReadBandwidth)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

// y[m, n] = x[m, k] · w[n, k]^T, bf16 weights; V2-Lite expert and projection shapes.
// Arg 3: the ISA (0 AVX2, 1 AVX512-BF16; skipped where the machine lacks it).
void LinearBf16(benchmark::State& state) {
  const int64_t m = state.range(0), n = state.range(1), k = state.range(2);
  const CpuIsa isa = state.range(3) ? CpuIsa::kAvx512Bf16 : CpuIsa::kAvx2, before = ActiveCpuIsa();
  if (!SetActiveCpuIsa(isa)) {
    state.SkipWithError("ISA not available");
    return;
  }
  std::vector<uint16_t> w(n * k, 0x3c00);
  std::vector<float> x(m * k, 0.5f), y(m * n);
  auto pfor = Pfor();
  for (auto _ : state) {
    Linear({.x = x.data(), .w = w.data(), .y = y.data(), .m = m, .n = n, .k = k, .w_bf16 = true},
           pfor);
    benchmark::DoNotOptimize(y.data());
  }
  state.SetBytesProcessed(state.iterations() * n * k * 2);
  state.counters["FLOP/s"] = benchmark::Counter(2.0 * m * n * k * state.iterations(),
                                                benchmark::Counter::kIsRate);
  SetActiveCpuIsa(before);  // later benchmarks run the ISA they were started with
}
BENCHMARK(LinearBf16)
    ->ArgNames({"m", "n", "k", "isa"})
    ->ArgsProduct({{1}, {2816}, {2048}, {0, 1}})
    ->ArgsProduct({{1}, {2048}, {1408}, {0, 1}})
    ->ArgsProduct({{1}, {102400}, {2048}, {0, 1}})
    ->ArgsProduct({{8, 32, 128}, {2816}, {2048}, {0, 1}})
    ->Unit(benchmark::kMicrosecond)->UseRealTime();

void LinearF32(benchmark::State& state) {
  const int64_t m = state.range(0), n = state.range(1), k = state.range(2);
  std::vector<float> w(n * k, 0.01f), x(m * k, 0.5f), y(m * n);
  for (auto _ : state) {
    Linear({.x = x.data(), .w = w.data(), .y = y.data(), .m = m, .n = n, .k = k}, SerialFor);
    benchmark::DoNotOptimize(y.data());
  }
  state.SetBytesProcessed(state.iterations() * n * k * 4);
  state.counters["FLOP/s"] = benchmark::Counter(2.0 * m * n * k * state.iterations(),
                                                benchmark::Counter::kIsRate);
}
BENCHMARK(LinearF32)->Args({1, 2816, 2048})->Args({32, 2816, 2048})->Args({128, 2816, 2048})
    ->Unit(benchmark::kMicrosecond)->UseRealTime();

// Weight copies cycled per iteration so that the set exceeds the L3 (>= 256 MiB in all).
int64_t ColdCopies(int64_t bytes_per_copy) {
  return std::max<int64_t>(2, (int64_t{256} << 20) / std::max<int64_t>(1, bytes_per_copy) + 1);
}

// threads 1: the calling thread alone; 2: the 2-thread pool.
ParallelFor PforOf(int64_t threads) { return threads == 1 ? ParallelFor(SerialFor) : Pfor(); }

// FP8 (128 x 128 block scales) against bf16 weights of the same shape, interleaved call by call
// so that both see the same machine load: args m, n, k, threads. Each iteration runs bf16
// Linear, LinearFp8 (round_bf16, the bf16 run's numerics) and LinearFp8 (f32), each on the next
// of enough weight copies to exceed the L3 (cold, as a model's weights in decode); counters are
// the fastest call of each (us) and the ratio bf16_us / fp8_us. FP8 codes are those of Gaussian
// weights (so E = 0 codes are as rare as in checkpoints).
void LinearFp8VsBf16(benchmark::State& state) {
  const int64_t m = state.range(0), n = state.range(1), k = state.range(2);
  const int64_t copies8 = ColdCopies(n * k), copies16 = ColdCopies(n * k * 2);
  std::vector<uint16_t> wb(copies16 * n * k, 0x3c00);
  std::vector<uint8_t> w8(copies8 * n * k);
  std::mt19937 rng(1);
  std::normal_distribution<float> d(0.f, 100.f);  // block amax ~ 4.5 sigma -> 448
  for (auto& v : w8) v = F32ToE4M3(d(rng));
  const int64_t sn = (n + 127) / 128, sk = (k + 127) / 128;
  std::vector<float> scale(copies8 * sn * sk, 1e-3f), x(m * k, 0.5f), y(m * n);
  auto pfor = PforOf(state.range(3));
  auto seconds = [](auto&& fn) {
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  double best[3] = {1e30, 1e30, 1e30};
  int64_t c = 0;
  for (auto _ : state) {
    const int64_t i8 = c % copies8, i16 = c % copies16;
    ++c;
    best[0] = std::min(best[0], seconds([&] {
      Linear({.x = x.data(), .w = wb.data() + i16 * n * k, .y = y.data(), .m = m, .n = n, .k = k,
              .w_bf16 = true},
             pfor);
    }));
    for (int mode = 1; mode <= 2; ++mode) {
      best[mode] = std::min(best[mode], seconds([&] {
        LinearFp8({.x = x.data(), .w = w8.data() + i8 * n * k,
                   .scale_inv = scale.data() + i8 * sn * sk, .y = y.data(), .m = m, .n = n,
                   .k = k, .round_bf16 = mode == 1},
                  pfor);
      }));
    }
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["bf16_us"] = best[0] * 1e6;
  state.counters["fp8_us"] = best[1] * 1e6;
  state.counters["fp8_f32_us"] = best[2] * 1e6;
  state.counters["ratio"] = best[0] / best[1];
  state.counters["bf16_GBps"] = 2.0 * n * k / best[0] / 1e9;
  state.counters["fp8_GBps"] = 1.0 * n * k / best[1] / 1e9;
}
// Shapes: a V3-like projection [2048, 7168] and a V2-Lite expert [1408, 2048]; m = 1, 8, 32;
// 1 and 2 threads.
BENCHMARK(LinearFp8VsBf16)
    ->ArgNames({"m", "n", "k", "threads"})
    ->ArgsProduct({{1, 8, 32}, {2048}, {7168}, {1, 2}})
    ->ArgsProduct({{1, 8, 32}, {1408}, {2048}, {1, 2}})
    ->MinTime(1.0)
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

// AMX-BF16 tiles against AVX512-BF16 dot products on the same bf16 GEMM, interleaved call by
// call on cold weight copies (as a model's weights stream in every call): args m, n, k; the
// 2-thread pool. Counters: the fastest call of each (us), avx512_us / amx_us, and each one's
// GFLOP/s. Shapes: V2-Lite's bf16 prefill GEMMs (q_proj, kv_a_proj_with_mqa, o_proj, a routed
// expert's fused gate/up and its down) at m = 128, 1024, 2048 rows, and decode-sized m = 1, 4,
// 16 (AMX runs every m, so it must not lose there either). Skipped without AMX.
void LinearBf16AmxVsAvx512(benchmark::State& state) {
  const int64_t m = state.range(0), n = state.range(1), k = state.range(2);
  const CpuIsa before = ActiveCpuIsa();
  if (!CpuIsaAvailable(CpuIsa::kAmxBf16)) {
    state.SkipWithError("AMX-BF16 not available");
    return;
  }
  const int64_t copies = ColdCopies(n * k * 2);
  std::vector<uint16_t> wb(copies * n * k);
  std::mt19937 rng(1);
  for (auto& v : wb) v = static_cast<uint16_t>(0x3c00 + rng() % 256);  // finite, ~0.008-0.016
  std::vector<float> x(m * k), y(m * n);
  for (auto& v : x) v = static_cast<float>(rng() % 1000) * 1e-3f - 0.5f;
  auto pfor = Pfor();
  auto seconds = [](auto&& fn) {
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  double best[2] = {1e30, 1e30};
  int64_t c = 0;
  for (auto _ : state) {
    const uint16_t* w = wb.data() + (c++ % copies) * n * k;
    for (int q = 0; q < 2; ++q) {
      SetActiveCpuIsa(q == 0 ? CpuIsa::kAvx512Bf16 : CpuIsa::kAmxBf16);
      best[q] = std::min(best[q], seconds([&] {
        Linear({.x = x.data(), .w = w, .y = y.data(), .m = m, .n = n, .k = k, .w_bf16 = true},
               pfor);
      }));
    }
    benchmark::DoNotOptimize(y.data());
  }
  SetActiveCpuIsa(before);
  state.counters["avx512_us"] = best[0] * 1e6;
  state.counters["amx_us"] = best[1] * 1e6;
  state.counters["speedup"] = best[0] / best[1];
  state.counters["avx512_GFLOPs"] = 2.0 * m * n * k / best[0] / 1e9;
  state.counters["amx_GFLOPs"] = 2.0 * m * n * k / best[1] / 1e9;
}
BENCHMARK(LinearBf16AmxVsAvx512)
    ->ArgNames({"m", "n", "k"})
    ->ArgsProduct({{1, 4, 16, 128, 1024, 2048}, {3072}, {2048}})   // q_proj
    ->ArgsProduct({{1, 4, 16, 128, 1024, 2048}, {576}, {2048}})    // kv_a_proj_with_mqa
    ->ArgsProduct({{1, 4, 16, 128, 1024, 2048}, {2048}, {2048}})   // o_proj
    ->ArgsProduct({{1, 4, 16, 128, 1024, 2048}, {2816}, {2048}})   // expert gate_up (fused)
    ->ArgsProduct({{1, 4, 16, 128, 1024, 2048}, {2048}, {1408}})   // expert down
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

// FP4 (E2M1 codes, one E8M0 scale per 32 inputs) against FP8 (128 x 128 blocks) and bf16 weights
// of the same shape, all in the bf16 run's numerics (x rounded to bf16, f32 accumulation),
// interleaved call by call on cold weight copies as above: args m, n, k, threads. Counters: the
// fastest call of each (us), bf16_us / fp4_us and fp8_us / fp4_us, weight GB/s streamed.
void LinearFp4VsFp8(benchmark::State& state) {
  const int64_t m = state.range(0), n = state.range(1), k = state.range(2);
  const int64_t copies4 = ColdCopies(n * k / 2 + n * k / 32), copies8 = ColdCopies(n * k),
                copies16 = ColdCopies(n * k * 2);
  std::vector<uint16_t> wb(copies16 * n * k, 0x3c00);
  std::vector<uint8_t> w8(copies8 * n * k), w4(copies4 * n * k / 2), s4(copies4 * n * (k / 32));
  std::mt19937 rng(1);
  std::normal_distribution<float> d(0.f, 100.f);
  for (auto& v : w8) v = F32ToE4M3(d(rng));
  for (auto& v : w4) v = static_cast<uint8_t>(rng());
  for (auto& v : s4) v = static_cast<uint8_t>(120 + rng() % 8);
  const int64_t sn = (n + 127) / 128, sk = (k + 127) / 128;
  std::vector<float> scale8(copies8 * sn * sk, 1e-3f), x(m * k, 0.5f), y(m * n);
  auto pfor = PforOf(state.range(3));
  auto seconds = [](auto&& fn) {
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  double best[3] = {1e30, 1e30, 1e30};
  int64_t c = 0;
  for (auto _ : state) {
    const int64_t i4 = c % copies4, i8 = c % copies8, i16 = c % copies16;
    ++c;
    best[0] = std::min(best[0], seconds([&] {
      Linear({.x = x.data(), .w = wb.data() + i16 * n * k, .y = y.data(), .m = m, .n = n, .k = k,
              .w_bf16 = true},
             pfor);
    }));
    best[1] = std::min(best[1], seconds([&] {
      LinearFp8({.x = x.data(), .w = w8.data() + i8 * n * k, .scale_inv = scale8.data() + i8 * sn * sk,
                 .y = y.data(), .m = m, .n = n, .k = k, .round_bf16 = true},
                pfor);
    }));
    best[2] = std::min(best[2], seconds([&] {
      LinearFp4({.x = x.data(), .w = w4.data() + i4 * n * k / 2, .scale = s4.data() + i4 * n * (k / 32),
                 .y = y.data(), .m = m, .n = n, .k = k, .round_bf16 = true},
                pfor);
    }));
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["bf16_us"] = best[0] * 1e6;
  state.counters["fp8_us"] = best[1] * 1e6;
  state.counters["fp4_us"] = best[2] * 1e6;
  state.counters["bf16_over_fp4"] = best[0] / best[2];
  state.counters["fp8_over_fp4"] = best[1] / best[2];
  state.counters["fp4_GBps"] = (n * k / 2.0 + n * k / 32.0) / best[2] / 1e9;
}
// V4-Flash routed expert shapes (hidden 4096, moe_intermediate 2048): gate / up [2048, 4096],
// down [4096, 2048]; m = 1 and 8; 1 thread.
BENCHMARK(LinearFp4VsFp8)
    ->ArgNames({"m", "n", "k", "threads"})
    ->ArgsProduct({{1, 8}, {2048}, {4096}, {1}})
    ->ArgsProduct({{1, 8}, {4096}, {2048}, {1}})
    ->MinTime(1.0)
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

// Absorbed MLA decode over the paged latent cache (V2-Lite: 16 heads, 512 + 64).
void MlaDecodeBench(benchmark::State& state) {
  const int64_t B = state.range(0), T = state.range(1), H = 16, kvl = 512, rope = 64;
  const int64_t width = kvl + rope, blocks_per = (T + 63) / 64;
  std::vector<float> cache(B * blocks_per * 64 * width, 0.01f), ql(B * H * kvl, 0.1f),
      qp(B * H * rope, 0.1f), out(B * H * kvl);
  std::vector<int32_t> tables(B * blocks_per), lens(B, static_cast<int32_t>(T));
  for (int64_t i = 0; i < B * blocks_per; ++i) tables[i] = static_cast<int32_t>(i);
  auto pfor = Pfor();
  for (auto _ : state) {
    MlaDecode({.q_latent = ql.data(), .q_pe = qp.data(),
               .cache = {.data = cache.data(), .block_size = 64, .width = width},
               .block_tables = tables.data(), .max_blocks = blocks_per, .seq_lens = lens.data(),
               .out_latent = out.data(), .batch = B, .heads = H, .kv_lora = kvl, .rope = rope,
               .softmax_scale = 0.1f},
              pfor);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(state.iterations() * B * T * width * 4);
}
BENCHMARK(MlaDecodeBench)->Args({1, 1024})->Args({8, 1024})->Args({1, 4096})
    ->Unit(benchmark::kMicrosecond)->UseRealTime();

// The per-(query, head) MLA prefill that MlaPrefill replaced (main before the tiled kernel),
// kept here only as the speed baseline for MlaPrefillBench.
void MlaPrefillNaive(const MlaPrefillParams& p, const ParallelFor& pfor) {
  const int64_t qk = p.nope + p.rope, kvw = p.nope + p.v;
  const int64_t first = p.n_total - p.n_new;
  pfor(p.n_new * p.heads, [&](int64_t w0, int64_t w1) {
    std::vector<float> scores;
    for (int64_t w = w0; w < w1; ++w) {
      const int64_t i = w / p.heads, h = w % p.heads;
      const int64_t n = first + i + 1;
      const float* q = p.q + (i * p.heads + h) * qk;
      scores.resize(n);
      for (int64_t t = 0; t < n; ++t) {
        const float* k = p.kv + (t * p.heads + h) * kvw;
        scores[t] = (attention_math::Dot(q, k, p.nope) +
                     attention_math::Dot(q + p.nope, p.k_pe + t * p.ld_kpe, p.rope)) *
                    p.softmax_scale;
      }
      attention_math::Softmax(scores.data(), n);
      float* out = p.out + (i * p.heads + h) * p.v;
      std::fill(out, out + p.v, 0.f);
      for (int64_t t = 0; t < n; ++t)
        attention_math::Axpy(scores[t], p.kv + (t * p.heads + h) * kvw + p.nope, out, p.v);
    }
  });
}

// Expanded-form MLA prefill of n new tokens after `cached` ones (V2-Lite: 16 heads, nope 128,
// rope 64, v 128); arg 2: 0 = the naive loop above, 1 = MlaPrefill; arg 3: threads (1 or the
// 2-thread pool). FLOP/s counts the causal QK^T and PV products.
void MlaPrefillBench(benchmark::State& state) {
  const int64_t n = state.range(0), cached = state.range(1), H = 16, nope = 128, rope = 64,
                vd = 128, T = cached + n;
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::vector<float> q(n * H * (nope + rope)), kv(T * H * (nope + vd)), kpe(T * rope),
      out(n * H * vd);
  for (auto* v : {&q, &kv, &kpe})
    for (float& x : *v) x = u(rng);
  const MlaPrefillParams p{.q = q.data(), .kv = kv.data(), .k_pe = kpe.data(), .ld_kpe = rope,
                           .out = out.data(), .n_new = n, .n_total = T, .heads = H,
                           .nope = nope, .rope = rope, .v = vd, .softmax_scale = 0.07f};
  const auto pfor = state.range(3) == 1 ? ParallelFor(SerialFor) : Pfor();
  for (auto _ : state) {
    if (state.range(2) == 0) {
      MlaPrefillNaive(p, pfor);
    } else {
      MlaPrefill(p, pfor);
    }
    benchmark::DoNotOptimize(out.data());
  }
  double pairs = 0;  // (query, key) pairs under the causal mask
  for (int64_t i = 0; i < n; ++i) pairs += static_cast<double>(cached + i + 1);
  state.counters["FLOP/s"] = benchmark::Counter(
      pairs * H * 2.0 * (nope + rope + vd) * static_cast<double>(state.iterations()),
      benchmark::Counter::kIsRate);
}
BENCHMARK(MlaPrefillBench)
    ->ArgNames({"n", "cached", "tiled", "threads"})
    ->ArgsProduct({{512, 2048}, {0}, {0, 1}, {2}})
    ->Args({512, 0, 0, 1})->Args({512, 0, 1, 1})
    ->Args({1, 2047, 0, 2})->Args({1, 2047, 1, 2})
    ->Args({8, 2040, 0, 2})->Args({8, 2040, 1, 2})
    ->Args({16, 2032, 0, 2})->Args({16, 2032, 1, 2})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace
}  // namespace dsinfer::cpu

BENCHMARK_MAIN();
