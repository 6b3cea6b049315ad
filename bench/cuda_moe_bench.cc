// MoE grouped GEMM (routed experts) against cuBLAS dense GEMM with the same total FLOPs in the
// same run, at DeepSeek-V2-Lite (64 experts, 2048 -> 1408, top-6) and V3 (256 experts,
// 7168 -> 2048, top-8) expert shapes, with uniformly random routing of 128 / 512 / 4096 tokens
// (decode-like to prefill-like rows per expert). gemm 0: gate/up with the SiLU epilogue
// (n = 2 * inter, k = hidden), gemm 1: down (n = hidden, k = inter).
// Counters: TFLOPs (grouped), cublas_TFLOPs (dense M = routed rows), ratio, rows_per_expert.
#include <cublas_v2.h>
#include <cuda_bf16.h>

#include <algorithm>
#include <numeric>
#include <random>
#include <vector>

#include "bench/cuda_bench_util.h"
#include "kernels/cuda/moe.h"

namespace dsinfer::cuda_bench {
namespace {

struct Shape {
  int64_t experts, hidden, inter, top_k;
};
constexpr Shape kShapes[] = {{64, 2048, 1408, 6}, {256, 7168, 2048, 8}};

// Grows-only device scratch (values do not matter for timing).
void* Scratch(int slot, size_t bytes) {
  static void* ptr[4] = {};
  static size_t size[4] = {};
  if (size[slot] < bytes) {
    if (ptr[slot]) cudaFree(ptr[slot]);
    ptr[slot] = nullptr;
    size[slot] = 0;
    if (cudaMalloc(&ptr[slot], bytes) != cudaSuccess) {
      cudaGetLastError();
      return nullptr;
    }
    cudaMemset(ptr[slot], 0x3c, bytes);
    size[slot] = bytes;
  }
  return ptr[slot];
}

void BM_GroupedGemm(benchmark::State& state) {
  const Shape s = kShapes[state.range(0)];
  const int64_t tokens = state.range(1);
  const bool gate_up = state.range(2) == 0;
  if (!HasGpu()) {
    state.SkipWithError("no CUDA device");
    return;
  }
  const int64_t E = s.experts, K = s.top_k, rows = tokens * K;
  const int64_t n = gate_up ? 2 * s.inter : s.hidden, k = gate_up ? s.hidden : s.inter;
  // Uniformly random routing: top_k distinct experts per token.
  std::mt19937_64 rng(7);
  std::vector<int32_t> ids(rows), perm(E);
  std::iota(perm.begin(), perm.end(), 0);
  for (int64_t t = 0; t < tokens; ++t) {
    for (int64_t j = 0; j < K; ++j) std::swap(perm[j], perm[j + rng() % (E - j)]);
    std::copy(perm.begin(), perm.begin() + K, ids.begin() + t * K);
  }
  auto* w = static_cast<__nv_bfloat16*>(Scratch(0, static_cast<size_t>(E * n * k) * 2));
  auto* a = static_cast<__nv_bfloat16*>(Scratch(1, static_cast<size_t>(rows * k) * 2));
  auto* c = static_cast<float*>(Scratch(2, static_cast<size_t>(rows * n) * 4));
  auto* meta = static_cast<int32_t*>(Scratch(3, static_cast<size_t>(4 * rows + 2 * (E + 1)) * 4));
  if (!w || !a || !c || !meta) {
    state.SkipWithError("allocation failed");
    return;
  }
  int32_t *d_ids = meta, *slot_of = meta + rows, *row_token = meta + 2 * rows;
  int32_t *offsets = meta + 4 * rows, *tiles = offsets + E + 1;
  cudaMemcpy(d_ids, ids.data(), rows * 4, cudaMemcpyHostToDevice);
  cudaError_t err = cuda::MoePermute({.topk_ids = d_ids,
                                      .tokens = tokens,
                                      .top_k = K,
                                      .n_experts = E,
                                      .expert_offsets = offsets,
                                      .tile_offsets = tiles,
                                      .slot_of = slot_of,
                                      .row_token = row_token},
                                     nullptr);
  cuda::GroupedGemmParams p{
      .a = a,
      .a_row_index = gate_up ? row_token : nullptr,
      .w = w,
      .expert_offsets = offsets,
      .tile_offsets = tiles,
      .n_experts = E,
      .n = n,
      .k = k,
      .lda = k,
      .max_tiles = cuda::GroupedGemmMaxTiles(rows, E),
      .epilogue = gate_up ? cuda::GroupedEpilogue::kSiluMul : cuda::GroupedEpilogue::kStoreF32,
      .c = c,
      .act = reinterpret_cast<__nv_bfloat16*>(c),
      .ldc = gate_up ? s.inter : n};
  cublasHandle_t handle;
  cublasCreate(&handle);
  const float alpha = 1.f, beta = 0.f;
  double ms = 0, ms_blas = 0;
  for (auto _ : state) {
    ms = TimeMs([&] { err = err != cudaSuccess ? err : cuda::GroupedGemm(p, nullptr); }, 5);
    state.SetIterationTime(ms * 1e-3);
  }
  // Dense baseline: [rows, k] x [k, n], bf16 in, f32 accumulate and out.
  ms_blas = TimeMs(
      [&] {
        cublasGemmEx(handle, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(n), static_cast<int>(rows),
                     static_cast<int>(k), &alpha, w, CUDA_R_16BF, static_cast<int>(k), a,
                     CUDA_R_16BF, static_cast<int>(k), &beta, c, CUDA_R_32F, static_cast<int>(n),
                     CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
      },
      5);
  cublasDestroy(handle);
  if (err != cudaSuccess || cudaDeviceSynchronize() != cudaSuccess) {
    state.SkipWithError(cudaGetErrorString(err != cudaSuccess ? err : cudaGetLastError()));
    return;
  }
  const double flops = 2.0 * rows * n * k;
  state.counters["TFLOPs"] = flops / (ms * 1e-3) / 1e12;
  state.counters["cublas_TFLOPs"] = flops / (ms_blas * 1e-3) / 1e12;
  state.counters["ratio"] = ms_blas / ms;
  state.counters["rows_per_expert"] = static_cast<double>(rows) / E;
  state.counters["weight_GBps"] = static_cast<double>(E) * n * k * 2 / (ms * 1e-3) / 1e9;
}

BENCHMARK(BM_GroupedGemm)
    ->ArgNames({"v3", "tokens", "down"})
    ->ArgsProduct({{0, 1}, {128, 512, 4096}, {0, 1}})
    ->UseManualTime()
    ->Iterations(3)
    ->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace dsinfer::cuda_bench
