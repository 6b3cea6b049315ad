// Grouped GEMM over MoE experts with FP4 E2M1 weights and E8M0 scales per 32 inputs
// (DeepSeek-V4's routed experts, kernels/cpu/fp4.h) and bf16 activations, f32 accumulation:
//   c[row, o] = sum_j a[row, j] * e2m1(code_e(o, j)) * 2^(scale_e[o][j / 32] - 127)
// for every row of expert e (rows [expert_offsets[e], expert_offsets[e + 1]), permuted as
// MoePermute leaves them). The weights are decoded in registers and never dequantised whole.
// Its CPU twin is cpu::LinearFp4 (round_bf16) on each expert's gathered rows; they agree up to
// f32 summation order (tests/gpu/fp4_grouped_gemm_gpu_test.cc). Runs on sm_80 and sm_90a
// (plain CUDA cores: the FP4 tensor-core MMAs are Blackwell's).
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

namespace dsinfer::cuda {

struct Fp4GroupedGemmParams {
  const __nv_bfloat16* a = nullptr;         // [*, k] row stride lda
  const int32_t* a_row_index = nullptr;     // [rows] A row of each permuted row, or nullptr
  const uint8_t* w = nullptr;               // [n_experts, n, k / 2] packed E2M1, low nibble first
  const uint8_t* scale = nullptr;           // [n_experts, n, ceil(k / 32)] E8M0
  const int32_t* expert_offsets = nullptr;  // [n_experts + 1] (device)
  float* c = nullptr;                       // [rows, n] row stride ldc
  int64_t lda = 0, ldc = 0;                 // 0 means k, n
  int64_t n_experts = 0, n = 0, k = 0;      // k even
};

// cudaErrorInvalidValue for null pointers, odd k or non-positive sizes (checked on the host,
// before any launch).
cudaError_t Fp4GroupedGemm(const Fp4GroupedGemmParams& p, cudaStream_t stream);

}  // namespace dsinfer::cuda
