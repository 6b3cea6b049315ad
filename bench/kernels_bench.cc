// CPU kernel micro-benchmarks. Linear reports weight bytes streamed per second (decode is
// memory bound) and FLOP/s; compare with the memory bandwidth from `MemcpyBandwidth`.
// FP8-vs-bf16 rows (LinearFp8Cold / LinearBf16Cold) cycle through enough weight copies to
// exceed the last-level cache, as a model's weights do in decode.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <vector>

#include "kernels/cpu/linear.h"
#include "kernels/cpu/fp8.h"
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

// Parallel read bandwidth (2 threads), as a decode GEMV sees memory.
void ReadBandwidth(benchmark::State& state) {
  const size_t n = (256 << 20) / sizeof(float);
  std::vector<float> a(n, 1.0f);
  auto pfor = Pfor();
  for (auto _ : state) {
    std::vector<float> part(2, 0.f);
    pfor(2, [&](int64_t b, int64_t e) {
      for (int64_t t = b; t < e; ++t) {
        float s = 0;
        for (size_t i = t * n / 2; i < (t + 1) * n / 2; ++i) s += a[i];
        part[t] = s;
      }
    });
    benchmark::DoNotOptimize(part.data());
  }
  state.SetBytesProcessed(state.iterations() * n * sizeof(float));
}
BENCHMARK(ReadBandwidth)->Unit(benchmark::kMillisecond)->UseRealTime();

// y[m, n] = x[m, k] · w[n, k]^T, bf16 weights; V2-Lite expert and projection shapes.
void LinearBf16(benchmark::State& state) {
  const int64_t m = state.range(0), n = state.range(1), k = state.range(2);
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
}
BENCHMARK(LinearBf16)
    ->Args({1, 2816, 2048})
    ->Args({1, 2048, 1408})
    ->Args({1, 102400, 2048})
    ->Args({8, 2816, 2048})
    ->Args({32, 2816, 2048})
    ->Args({128, 2816, 2048})
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

// bf16 baseline on cold weights: args m, n, k, threads.
void LinearBf16Cold(benchmark::State& state) {
  const int64_t m = state.range(0), n = state.range(1), k = state.range(2);
  const int64_t copies = ColdCopies(n * k * 2);
  std::vector<uint16_t> w(copies * n * k, 0x3c00);
  std::vector<float> x(m * k, 0.5f), y(m * n);
  auto pfor = PforOf(state.range(3));
  int64_t c = 0;
  for (auto _ : state) {
    Linear({.x = x.data(), .w = w.data() + (c++ % copies) * n * k, .y = y.data(), .m = m, .n = n,
            .k = k, .w_bf16 = true},
           pfor);
    benchmark::DoNotOptimize(y.data());
  }
  state.SetBytesProcessed(state.iterations() * n * k * 2);
  state.counters["FLOP/s"] = benchmark::Counter(2.0 * m * n * k * state.iterations(),
                                                benchmark::Counter::kIsRate);
}

// FP8 weights (128 x 128 block scales) on cold weights: args m, n, k, round_bf16, threads. Bytes
// are the FP8 codes streamed (half of bf16's for the same shape).
void LinearFp8Cold(benchmark::State& state) {
  const int64_t m = state.range(0), n = state.range(1), k = state.range(2);
  const bool bf16 = state.range(3) != 0;
  const int64_t copies = ColdCopies(n * k);
  std::vector<uint8_t> w(copies * n * k);
  std::mt19937 rng(1);
  std::normal_distribution<float> d(0.f, 100.f);  // codes of Gaussian weights, amax ~ 4.5 sigma
  for (auto& v : w) v = F32ToE4M3(d(rng));
  const int64_t sn = (n + 127) / 128, sk = (k + 127) / 128;
  std::vector<float> scale(copies * sn * sk, 1e-3f);
  std::vector<float> x(m * k, 0.5f), y(m * n);
  auto pfor = PforOf(state.range(4));
  int64_t c = 0;
  for (auto _ : state) {
    const int64_t i = c++ % copies;
    LinearFp8({.x = x.data(), .w = w.data() + i * n * k, .scale_inv = scale.data() + i * sn * sk,
               .y = y.data(), .m = m, .n = n, .k = k, .round_bf16 = bf16},
              pfor);
    benchmark::DoNotOptimize(y.data());
  }
  state.SetBytesProcessed(state.iterations() * n * k);
  state.counters["FLOP/s"] = benchmark::Counter(2.0 * m * n * k * state.iterations(),
                                                benchmark::Counter::kIsRate);
}

// Shapes: a V3-like projection [2048, 7168] and a V2-Lite expert [1408, 2048]; m = 1, 8, 32;
// 1 and 2 threads.
void Fp8Shapes(benchmark::internal::Benchmark* b, bool with_mode) {
  for (int64_t threads : {1, 2})
    for (int64_t m : {1, 8, 32})
      for (auto [n, k] : {std::pair<int64_t, int64_t>{2048, 7168}, {1408, 2048}}) {
        if (with_mode) {
          b->Args({m, n, k, 1, threads});
          b->Args({m, n, k, 0, threads});
        } else {
          b->Args({m, n, k, threads});
        }
      }
}
BENCHMARK(LinearBf16Cold)->Apply([](auto* b) { Fp8Shapes(b, false); })
    ->ArgNames({"m", "n", "k", "threads"})->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(LinearFp8Cold)->Apply([](auto* b) { Fp8Shapes(b, true); })
    ->ArgNames({"m", "n", "k", "bf16", "threads"})->Unit(benchmark::kMicrosecond)->UseRealTime();

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

}  // namespace
}  // namespace dsinfer::cpu

BENCHMARK_MAIN();
