// FP8 block-scaled GEMMs (kernels/cuda/fp8_gemm.h) at DeepSeek-V3 shapes, against cuBLAS bf16
// and cuBLASLt FP8 on the same shapes in the same run.
//
// BM_Fp8Dense/shape/m — dense projections y[m, n] = x[m, k] · W^T, shapes (n x k): 0 q_a
//   1536 x 7168, 1 q_b 24576 x 1536, 2 o_proj 7168 x 16384, 3 shared-expert gate/up 4096 x 7168.
//   Counters: TFLOPs and weight_GBps (FP8 weight bytes / time) of Fp8Gemm (suggested k-splits,
//   act_quant not included; act_quant_us reports it), bf16_TFLOPs (cuBLAS GemmEx, bf16 in, f32
//   out) and ratio_vs_bf16 = t_bf16 / t_fp8, lt_fp8_TFLOPs (cuBLASLt FP8, per-tensor scales,
//   bf16 out) and ratio_vs_lt, lt_block_TFLOPs (cuBLASLt with 1x128 / 128x128 block scales; 0
//   where this cuBLAS or GPU has none), copy_GBps (device-to-device copy, for scale).
// BM_Fp8Grouped/tokens/down — V3 routed experts (256 experts, hidden 7168, moe_inter 2048,
//   top-8, uniform random routing): gate/up with the SiLU epilogue (down = 0) or down (down = 1).
//   Counters: weight_GBps (FP8 bytes of the experts hit / time) and bw_ratio (over the d2d copy's
//   read + write rate, the `d2d_copy_GBps` context) for decode-sized token counts; TFLOPs, cublas_TFLOPs (bf16 dense GEMM of the same FLOPs)
//   and ratio_vs_dense; bf16_grouped_us and ratio_vs_bf16_grouped (GroupedGemm on bf16 weights).
#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_bf16.h>

#include <algorithm>
#include <numeric>
#include <random>
#include <set>
#include <vector>

#include "bench/cuda_bench_util.h"
#include "kernels/cuda/fp8_gemm.h"
#include "kernels/cuda/moe.h"

namespace dsinfer::cuda_bench {
namespace {

// A device buffer filled with a byte pattern (values do not matter for timing; 0x38 is 1.0 in
// E4M3 and a small positive bf16 / f32 pattern).
class Buffer {
 public:
  explicit Buffer(size_t bytes) {
    if (cudaMalloc(&ptr_, std::max<size_t>(bytes, 16)) != cudaSuccess) {
      cudaGetLastError();
      ptr_ = nullptr;
      return;
    }
    cudaMemset(ptr_, 0x38, bytes);
  }
  ~Buffer() {
    if (ptr_) cudaFree(ptr_);
  }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  template <typename T>
  T* as() const {
    return static_cast<T*>(ptr_);
  }
  bool ok() const { return ptr_ != nullptr; }

 private:
  void* ptr_ = nullptr;
};

// Scales of 1/448-ish magnitude as f32.
void FillScales(float* dev, int64_t count) {
  std::vector<float> h(count, 1.0f / 448);
  cudaMemcpy(dev, h.data(), count * sizeof(float), cudaMemcpyHostToDevice);
}

int NumSms() {
  int sms = 0;
  cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0);
  return std::max(sms, 1);
}

// cuBLASLt FP8 GEMM in the row-major convention y[m, n] = x[m, k] · W[n, k]^T, i.e. column-major
// D[n, m] = W^T(op T of [k, n]) · x([k, m]) — the "TN" layout FP8 requires. block = true asks for
// 128x128 weight scales and 1x128 activation scales. Returns the median ms, or 0 if cuBLASLt has
// no algorithm for it.
double TimeLtFp8(int64_t m, int64_t n, int64_t k, const uint8_t* x, const uint8_t* w,
                 const float* x_scale, const float* w_scale, __nv_bfloat16* y, bool block) {
  cublasLtHandle_t lt;
  if (cublasLtCreate(&lt) != CUBLAS_STATUS_SUCCESS) return 0;
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t la = nullptr, lb = nullptr, ld = nullptr;
  cublasLtMatmulPreference_t pref = nullptr;
  Buffer workspace(size_t{64} << 20);
  double ms = 0;
  bool ok = cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F) ==
            CUBLAS_STATUS_SUCCESS;
  const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
  ok = ok && cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta) ==
                 CUBLAS_STATUS_SUCCESS;
  ok = ok && cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb) ==
                 CUBLAS_STATUS_SUCCESS;
  if (ok && block) {
#if CUBLAS_VERSION >= 120900
    const int32_t a_mode = CUBLASLT_MATMUL_MATRIX_SCALE_BLK128x128_32F;
    const int32_t b_mode = CUBLASLT_MATMUL_MATRIX_SCALE_VEC128_32F;
    ok = cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_A_SCALE_MODE, &a_mode,
                                        sizeof a_mode) == CUBLAS_STATUS_SUCCESS &&
         cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_B_SCALE_MODE, &b_mode,
                                        sizeof b_mode) == CUBLAS_STATUS_SUCCESS &&
         cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &w_scale,
                                        sizeof w_scale) == CUBLAS_STATUS_SUCCESS &&
         cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &x_scale,
                                        sizeof x_scale) == CUBLAS_STATUS_SUCCESS;
#else
    ok = false;
#endif
  }
  ok = ok && cublasLtMatrixLayoutCreate(&la, CUDA_R_8F_E4M3, k, n, k) == CUBLAS_STATUS_SUCCESS;
  ok = ok && cublasLtMatrixLayoutCreate(&lb, CUDA_R_8F_E4M3, k, m, k) == CUBLAS_STATUS_SUCCESS;
  ok = ok && cublasLtMatrixLayoutCreate(&ld, CUDA_R_16BF, n, m, n) == CUBLAS_STATUS_SUCCESS;
  ok = ok && cublasLtMatmulPreferenceCreate(&pref) == CUBLAS_STATUS_SUCCESS;
  const size_t ws_bytes = size_t{64} << 20;
  ok = ok && workspace.ok() &&
       cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                            &ws_bytes, sizeof ws_bytes) == CUBLAS_STATUS_SUCCESS;
  cublasLtMatmulHeuristicResult_t heur{};
  int found = 0;
  ok = ok && cublasLtMatmulAlgoGetHeuristic(lt, desc, la, lb, ld, ld, pref, 1, &heur, &found) ==
                 CUBLAS_STATUS_SUCCESS &&
       found > 0;
  if (ok) {
    const float alpha = 1.0f, beta = 0.0f;
    cublasStatus_t st = CUBLAS_STATUS_SUCCESS;
    ms = TimeMs(
        [&] {
          st = cublasLtMatmul(lt, desc, &alpha, w, la, x, lb, &beta, y, ld, y, ld, &heur.algo,
                              workspace.as<void>(), ws_bytes, nullptr);
        },
        10);
    if (st != CUBLAS_STATUS_SUCCESS) ms = 0;
  }
  cudaGetLastError();
  if (pref) cublasLtMatmulPreferenceDestroy(pref);
  if (ld) cublasLtMatrixLayoutDestroy(ld);
  if (lb) cublasLtMatrixLayoutDestroy(lb);
  if (la) cublasLtMatrixLayoutDestroy(la);
  if (desc) cublasLtMatmulDescDestroy(desc);
  cublasLtDestroy(lt);
  return ms;
}

struct DenseShape {
  int64_t n, k;
};
constexpr DenseShape kDense[] = {{1536, 7168}, {24576, 1536}, {7168, 16384}, {4096, 7168}};

void BM_Fp8Dense(benchmark::State& state) {
  if (!HasGpu() || !cuda::Fp8GemmSupported()) {
    state.SkipWithError("no GPU with an sm_89+ FP8 binary");
    return;
  }
  const auto [n, k] = kDense[state.range(0)];
  const int64_t m = state.range(1), kb = (k + 127) / 128;
  const int64_t splits = cuda::Fp8GemmSplits(m, n, k, NumSms());
  // (Scale buffers padded for cuBLASLt's block-scale layouts.)
  const int64_t m_pad = (m + 127) / 128 * 128, n_pad = (n + 127) / 128 * 128;
  Buffer x(m * k * 2), xq(m * k), xs(m_pad * kb * 4), w(n * k), wb(n * k * 2),
      ws((n_pad / 128 + 4) * (kb + 4) * 4), y(m * n * 4), work(splits * m * n * 4);
  if (!x.ok() || !xq.ok() || !w.ok() || !wb.ok() || !y.ok() || !work.ok()) {
    state.SkipWithError("allocation failed");
    return;
  }
  FillScales(xs.as<float>(), m * kb);
  FillScales(ws.as<float>(), ((n + 127) / 128) * kb);
  cudaError_t err = cudaSuccess;
  const cuda::Fp8GemmParams p{.a = xq.as<uint8_t>(), .a_scale = xs.as<float>(),
                              .w = w.as<uint8_t>(), .w_scale = ws.as<float>(),
                              .y = y.as<float>(), .m = m, .n = n, .k = k, .k_splits = splits,
                              .workspace = work.as<float>()};
  double ms = 0;
  for (auto _ : state) {
    ms = TimeMs([&] { err = err != cudaSuccess ? err : cuda::Fp8Gemm(p, nullptr); }, 10);
    state.SetIterationTime(ms * 1e-3);
  }
  const double quant_ms = TimeMs(
      [&] {
        err = err != cudaSuccess ? err
                                 : cuda::ActQuantFp8({.x = x.as<__nv_bfloat16>(),
                                                      .q = xq.as<uint8_t>(),
                                                      .scale = xs.as<float>(), .m = m, .k = k},
                                                     nullptr);
      },
      10);
  cublasHandle_t handle;
  cublasCreate(&handle);
  const float alpha = 1.f, beta = 0.f;
  const double bf16_ms = TimeMs(
      [&] {
        cublasGemmEx(handle, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(n), static_cast<int>(m),
                     static_cast<int>(k), &alpha, wb.as<void>(), CUDA_R_16BF, static_cast<int>(k),
                     x.as<void>(), CUDA_R_16BF, static_cast<int>(k), &beta, y.as<void>(),
                     CUDA_R_32F, static_cast<int>(n), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
      },
      10);
  cublasDestroy(handle);
  const double lt_ms = TimeLtFp8(m, n, k, xq.as<uint8_t>(), w.as<uint8_t>(), nullptr, nullptr,
                                 y.as<__nv_bfloat16>(), false);
  const double lt_block_ms = TimeLtFp8(m, n, k, xq.as<uint8_t>(), w.as<uint8_t>(),
                                       xs.as<float>(), ws.as<float>(), y.as<__nv_bfloat16>(), true);
  if (err != cudaSuccess || cudaDeviceSynchronize() != cudaSuccess) {
    state.SkipWithError(cudaGetErrorString(err != cudaSuccess ? err : cudaGetLastError()));
    return;
  }
  const double flops = 2.0 * m * n * k;
  auto tflops = [&](double t) { return t > 0 ? flops / (t * 1e-3) / 1e12 : 0.0; };
  state.counters["TFLOPs"] = tflops(ms);
  state.counters["weight_GBps"] = static_cast<double>(n) * k / (ms * 1e-3) / 1e9;
  state.counters["act_quant_us"] = quant_ms * 1e3;
  state.counters["bf16_TFLOPs"] = tflops(bf16_ms);
  state.counters["ratio_vs_bf16"] = bf16_ms / ms;
  state.counters["lt_fp8_TFLOPs"] = tflops(lt_ms);
  state.counters["ratio_vs_lt"] = lt_ms / ms;
  state.counters["lt_block_TFLOPs"] = tflops(lt_block_ms);
  state.counters["copy_GBps"] = CopyBandwidthGBps();
  state.counters["splits"] = static_cast<double>(splits);
}

BENCHMARK(BM_Fp8Dense)
    ->ArgNames({"shape", "m"})
    ->ArgsProduct({{0, 1, 2, 3}, {1, 32, 128, 4096}})
    ->UseManualTime()
    ->Iterations(3)
    ->Unit(benchmark::kMicrosecond);

void BM_Fp8Grouped(benchmark::State& state) {
  if (!HasGpu() || !cuda::Fp8GemmSupported()) {
    state.SkipWithError("no GPU with an sm_89+ FP8 binary");
    return;
  }
  const int64_t E = 256, hidden = 7168, inter = 2048, K = 8;
  const int64_t tokens = state.range(0);
  const bool down = state.range(1) != 0;
  const int64_t rows = tokens * K;
  const int64_t n = down ? hidden : 2 * inter, k = down ? inter : hidden, kb = (k + 127) / 128;
  const int64_t scale_rows = (down ? 1 : 2) * ((n + 127) / 128);
  std::mt19937_64 rng(7);
  std::vector<int32_t> ids(rows), perm(E);
  std::iota(perm.begin(), perm.end(), 0);
  for (int64_t t = 0; t < tokens; ++t) {
    for (int64_t j = 0; j < K; ++j) std::swap(perm[j], perm[j + rng() % (E - j)]);
    std::copy(perm.begin(), perm.begin() + K, ids.begin() + t * K);
  }
  const int64_t experts_hit = static_cast<int64_t>(std::set<int32_t>(ids.begin(), ids.end()).size());
  Buffer w(E * n * k), wb(E * n * k * 2), ws(E * scale_rows * kb * 4), a(rows * k),
      ab(rows * k * 2), as(rows * kb * 4), c(rows * n * 4),
      meta((4 * rows + 2 * (E + 1)) * 4);
  if (!w.ok() || !wb.ok() || !a.ok() || !ab.ok() || !c.ok() || !meta.ok()) {
    state.SkipWithError("allocation failed");
    return;
  }
  FillScales(ws.as<float>(), E * scale_rows * kb);
  FillScales(as.as<float>(), rows * kb);
  int32_t* d_ids = meta.as<int32_t>();
  int32_t *slot_of = d_ids + rows, *row_token = d_ids + 2 * rows;
  int32_t *offsets = d_ids + 4 * rows, *tiles = offsets + E + 1;
  cudaMemcpy(d_ids, ids.data(), rows * 4, cudaMemcpyHostToDevice);
  cudaError_t err = cuda::MoePermute({.topk_ids = d_ids, .tokens = tokens, .top_k = K,
                                      .n_experts = E, .expert_offsets = offsets,
                                      .tile_offsets = tiles, .slot_of = slot_of,
                                      .row_token = row_token},
                                     nullptr);
  const int64_t max_tiles = cuda::GroupedGemmMaxTiles(rows, E);
  const auto epi = down ? cuda::GroupedEpilogue::kStoreF32 : cuda::GroupedEpilogue::kSiluMul;
  // Gate/up gathers token rows (A has `tokens` rows); down reads the permuted rows in order.
  const cuda::Fp8GroupedGemmParams p{
      .a = a.as<uint8_t>(), .a_scale = as.as<float>(),
      .a_row_index = down ? nullptr : row_token, .w = w.as<uint8_t>(), .w_scale = ws.as<float>(),
      .expert_offsets = offsets, .tile_offsets = tiles, .n_experts = E, .n = n, .k = k,
      .max_tiles = max_tiles, .epilogue = epi, .c = c.as<float>(),
      .act = c.as<__nv_bfloat16>(), .ldc = down ? n : inter};
  double ms = 0;
  for (auto _ : state) {
    ms = TimeMs([&] { err = err != cudaSuccess ? err : cuda::Fp8GroupedGemm(p, nullptr); }, 5);
    state.SetIterationTime(ms * 1e-3);
  }
  const cuda::GroupedGemmParams pb{
      .a = ab.as<__nv_bfloat16>(), .a_row_index = down ? nullptr : row_token,
      .w = wb.as<__nv_bfloat16>(), .expert_offsets = offsets, .tile_offsets = tiles,
      .n_experts = E, .n = n, .k = k, .lda = k, .max_tiles = max_tiles, .epilogue = epi,
      .c = c.as<float>(), .act = c.as<__nv_bfloat16>(), .ldc = down ? n : inter};
  const double bf16_grouped_ms =
      TimeMs([&] { err = err != cudaSuccess ? err : cuda::GroupedGemm(pb, nullptr); }, 5);
  cublasHandle_t handle;
  cublasCreate(&handle);
  const float alpha = 1.f, beta = 0.f;
  const double blas_ms = TimeMs(
      [&] {
        cublasGemmEx(handle, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(n),
                     static_cast<int>(rows), static_cast<int>(k), &alpha, wb.as<void>(),
                     CUDA_R_16BF, static_cast<int>(k), ab.as<void>(), CUDA_R_16BF,
                     static_cast<int>(k), &beta, c.as<void>(), CUDA_R_32F, static_cast<int>(n),
                     CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
      },
      5);
  cublasDestroy(handle);
  if (err != cudaSuccess || cudaDeviceSynchronize() != cudaSuccess) {
    state.SkipWithError(cudaGetErrorString(err != cudaSuccess ? err : cudaGetLastError()));
    return;
  }
  const double flops = 2.0 * rows * n * k;
  const double weight_gbps = static_cast<double>(experts_hit) * n * k / (ms * 1e-3) / 1e9;
  state.counters["weight_GBps"] = weight_gbps;
  state.counters["bw_ratio"] = weight_gbps / CopyBandwidthGBps();
  state.counters["TFLOPs"] = flops / (ms * 1e-3) / 1e12;
  state.counters["cublas_TFLOPs"] = flops / (blas_ms * 1e-3) / 1e12;
  state.counters["ratio_vs_dense"] = blas_ms / ms;
  state.counters["bf16_grouped_us"] = bf16_grouped_ms * 1e3;
  state.counters["ratio_vs_bf16_grouped"] = bf16_grouped_ms / ms;
  state.counters["experts_hit"] = static_cast<double>(experts_hit);
}

BENCHMARK(BM_Fp8Grouped)
    ->ArgNames({"tokens", "down"})
    ->ArgsProduct({{1, 8, 32, 128, 4096, 8192}, {0, 1}})
    ->UseManualTime()
    ->Iterations(3)
    ->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace dsinfer::cuda_bench
