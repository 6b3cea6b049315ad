// MLA decode over the paged latent cache (tensor-core kernel, per-step plan, split-KV and
// combine): achieved bytes/s of latent cache read against the device-to-device copy bandwidth
// measured in the same run, at batch 1..128 and context 1k..32k, 16 heads (V2-Lite) and 128
// heads (V2 / V3). Counters: GBps (cache bytes / time), frac_of_copy, TFLOPs, work_items.
#include <cuda_bf16.h>

#include <vector>

#include "bench/cuda_bench_util.h"
#include "kernels/cuda/mla_attention.h"

namespace dsinfer::cuda_bench {
namespace {

constexpr int64_t kW = 576, kLat = 512, kRope = 64, kBs = 64;
constexpr int64_t kMaxTokens = 128 * 32768;

// One allocation for the largest case, reused (its values do not matter for timing).
__nv_bfloat16* Cache() {
  static __nv_bfloat16* cache = [] {
    __nv_bfloat16* p = nullptr;
    if (cudaMalloc(&p, kMaxTokens * kW * 2) != cudaSuccess)
      return static_cast<__nv_bfloat16*>(nullptr);
    cudaMemset(p, 0x3c, kMaxTokens * kW * 2);  // ~0.0115 everywhere
    return p;
  }();
  return cache;
}

template <typename T>
T* Upload(const std::vector<T>& v) {
  T* p = nullptr;
  cudaMalloc(&p, std::max<size_t>(1, v.size()) * sizeof(T));
  cudaMemcpy(p, v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice);
  return p;
}

void BM_MlaDecode(benchmark::State& state) {
  const int64_t batch = state.range(0), ctx = state.range(1), heads = state.range(2);
  if (!HasGpu()) {
    state.SkipWithError("no CUDA device");
    return;
  }
  if (!cuda::MlaTensorCoreSupported(kLat, kRope, kBs, 0)) {
    state.SkipWithError("tensor-core MLA kernel not supported on this GPU");
    return;
  }
  __nv_bfloat16* cache = Cache();
  if (!cache || batch * ctx > kMaxTokens) {
    state.SkipWithError("cache allocation failed");
    return;
  }
  int sms = 0;
  cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0);
  const int64_t nb = (ctx + kBs - 1) / kBs;
  std::vector<int32_t> tables(batch * nb), n_new(batch, 1),
      start(batch, static_cast<int32_t>(ctx - 1));
  std::vector<cuda::MlaSeqDesc> seqs;
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t i = 0; i < nb; ++i) tables[b * nb + i] = static_cast<int32_t>(b * nb + i);
    seqs.push_back({static_cast<int32_t>(b * heads), static_cast<int32_t>(heads),
                    static_cast<int32_t>(ctx - 1), static_cast<int32_t>(b * nb)});
  }
  const int64_t max_partials = 8 * sms;
  const cuda::MlaPlan plan = cuda::MakeMlaPlan({.heads = heads,
                                                .kv_lora = kLat,
                                                .rope = kRope,
                                                .block_size = kBs,
                                                .num_sms = sms,
                                                .max_partials = max_partials,
                                                .tensor_core = true},
                                               n_new.data(), start.data(), batch);
  __nv_bfloat16 *q = nullptr, *out = nullptr;
  float *part = nullptr, *lse = nullptr;
  cudaMalloc(&q, batch * heads * kW * 2);
  cudaMemset(q, 0x3c, batch * heads * kW * 2);
  cudaMalloc(&out, batch * heads * kLat * 2);
  cudaMalloc(&part, max_partials * cuda::MlaMaxTileRows() * kLat * 4);
  cudaMalloc(&lse, max_partials * cuda::MlaMaxTileRows() * 4);
  int32_t* dtables = Upload(tables);
  auto* dseqs = Upload(seqs);
  auto* dwork = Upload(plan.work);
  auto* dcombine = Upload(plan.combine);
  const cuda::MlaAttentionParams p{.q = q,
                                   .cache = cache,
                                   .block_tables = dtables,
                                   .seqs = dseqs,
                                   .work = dwork,
                                   .num_work = static_cast<int32_t>(plan.work.size()),
                                   .combine = dcombine,
                                   .num_combine = static_cast<int32_t>(plan.combine.size()),
                                   .partial_out = part,
                                   .partial_lse = lse,
                                   .out = out,
                                   .kernel = plan.kernel,
                                   .tile_rows = plan.tile_rows,
                                   .heads = heads,
                                   .kv_lora = kLat,
                                   .rope = kRope,
                                   .block_size = kBs,
                                   .softmax_scale = 0.1f};
  double ms = 0;
  cudaError_t err = cudaSuccess;
  for (auto _ : state) {
    ms = TimeMs([&] { err = cuda::MlaAttention(p, nullptr); }, 5);
    state.SetIterationTime(ms * 1e-3);
  }
  if (err != cudaSuccess || cudaDeviceSynchronize() != cudaSuccess) {
    state.SkipWithError(cudaGetErrorString(err != cudaSuccess ? err : cudaGetLastError()));
  }
  const double bytes = static_cast<double>(batch) * ctx * kW * 2;
  const double gbps = bytes / (ms * 1e-3) / 1e9;
  state.counters["GBps"] = gbps;
  state.counters["frac_of_copy"] = gbps / CopyBandwidthGBps();
  state.counters["TFLOPs"] = 2.0 * batch * heads * ctx * (kW + kLat) / (ms * 1e-3) / 1e12;
  state.counters["work_items"] = static_cast<double>(plan.work.size());
  state.counters["tile_rows"] = plan.tile_rows;
  for (void* ptr : {static_cast<void*>(q), static_cast<void*>(out), static_cast<void*>(part),
                    static_cast<void*>(lse), static_cast<void*>(dtables), static_cast<void*>(dseqs),
                    static_cast<void*>(dwork), static_cast<void*>(dcombine)})
    cudaFree(ptr);
}

BENCHMARK(BM_MlaDecode)
    ->ArgNames({"batch", "ctx", "heads"})
    ->ArgsProduct({{1, 8, 32, 64, 128}, {1024, 4096, 16384, 32768}, {16, 128}})
    ->UseManualTime()
    ->Iterations(3)
    ->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace dsinfer::cuda_bench
