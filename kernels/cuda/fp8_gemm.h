// FP8 GEMMs on the GPU, DeepSeek-V3 style (technical report §3.3, fine-grained quantization;
// DeepGEMM's promotion): activations quantised per row in 1 x 128 blocks, weights E4M3 with
// 128 x 128 block scales as stored in checkpoints; tensor-core E4M3 products (mma.sync m16n8k32,
// f32 accumulation) summed per 128-wide k-block, then promoted into f32 registers scaled by
// a_scale * w_scale_inv. CPU twin: kernels/cpu/fp8_gemm.h (ActQuantFp8, Fp8BlockGemmRef).
//
// The GEMMs need an sm_89+ binary of this library (the FP8 MMA): the default build's sm_90a
// one serves Hopper; an Ada (sm_89) GPU needs 89-real in CMAKE_CUDA_ARCHITECTURES (an sm_80
// binary compiles the GEMM kernels out). Without one they return cudaErrorNotSupported;
// Fp8GemmSupported() asks first. ActQuantFp8 runs everywhere (sm_80+).
//
// Layout rules: k % 16 == 0; A and W row strides multiples of 16 bytes and 16-byte-aligned
// bases (cp.async); k and n need not be multiples of 128 (partial blocks are zero-filled).
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/cuda/moe.h"

namespace dsinfer::cuda {

inline constexpr int64_t kFp8Block = 128;  // activation block width, weight block side

// Whether this library has an FP8 GEMM binary for the current device (sm_89+).
bool Fp8GemmSupported();

// x [m, k] -> E4M3 codes and per-row block scales: for each row and 128-column block,
// s = max(amax, 1e-4) / 448 and code = e4m3(x / s) (nearest even, saturating), bit for bit the
// CPU twin's rule. One warp per block.
struct ActQuantFp8Params {
  const void* x = nullptr;  // [m, k] bf16 (or f32 when x_f32), row stride ldx
  bool x_f32 = false;
  uint8_t* q = nullptr;      // [m, k] out: E4M3 codes, row stride ldq
  float* scale = nullptr;    // [m, ceil(k / 128)] out, row stride ld_scale
  int64_t m = 0, k = 0;
  int64_t ldx = 0, ldq = 0;  // 0 means k
  int64_t ld_scale = 0;      // 0 means ceil(k / 128)
};

cudaError_t ActQuantFp8(const ActQuantFp8Params& p, cudaStream_t stream);

// Dense y[m, n] (+)= act_quant(x) · W^T. CTA tile 64 x 128 x 128 (one scale block per k-step).
// Decode-shaped calls have few tiles: k_splits > 1 spreads the k-blocks over that many CTAs
// per tile, writing f32 partials to `workspace` that a second kernel sums in split order
// (deterministic); Fp8GemmSplits suggests a count.
struct Fp8GemmParams {
  const uint8_t* a = nullptr;      // [m, k] E4M3 codes (ActQuantFp8), row stride lda
  const float* a_scale = nullptr;  // [m, ceil(k / 128)] row stride ld_a_scale
  const uint8_t* w = nullptr;      // [n, k] E4M3 codes, row stride ldw
  const float* w_scale = nullptr;  // [ceil(n / 128), ceil(k / 128)] scale_inv, stride ld_w_scale
  float* y = nullptr;              // [m, n] f32 out, row stride ldy; or
  __nv_bfloat16* y_bf16 = nullptr; // [m, n] bf16 out, row stride ldy (exactly one of the two)
  int64_t m = 0, n = 0, k = 0;
  int64_t lda = 0, ldw = 0;    // 0 means k (a column slice: its first column starts a block)
  int64_t ld_a_scale = 0;      // 0 means ceil(k / 128)
  int64_t ld_w_scale = 0;      // 0 means ceil(k / 128)
  int64_t ldy = 0;             // 0 means n
  bool accumulate = false;     // y += (f32 out only)
  int64_t k_splits = 1;
  float* workspace = nullptr;  // [k_splits, m, n] when k_splits > 1
};

cudaError_t Fp8Gemm(const Fp8GemmParams& p, cudaStream_t stream);

// A k_splits that fills about two waves of `num_sms` with at least 2 k-blocks per split (1 when
// the tiles alone fill the device).
int64_t Fp8GemmSplits(int64_t m, int64_t n, int64_t k, int num_sms);

// The MoE grouped GEMM of moe.h (same permutation inputs, epilogues and grid bound) on FP8:
// C[rows of e] = act_quant(A)[rows of e] · W_e^T. A's codes and scales are gathered together by
// a_row_index. Weight scales by epilogue:
//   kStoreF32: w_scale [n_experts, ceil(n / 128), ceil(k / 128)], the checkpoint's blocks;
//   kSiluMul:  W rows interleaved by InterleaveGateUpFp8 and w_scale
//              [n_experts, 2 * ceil(n / 128), ceil(k / 128)]: the interleaved 128-row tile t
//              (features [64t, 64t + w), w gate rows then w up rows) has scale rows 2t (gate)
//              and 2t + 1 (up). A 64-feature block lies inside one 128-row checkpoint block,
//              so both rows are copies of checkpoint scale rows.
struct Fp8GroupedGemmParams {
  const uint8_t* a = nullptr;            // [*, k] E4M3 codes, row stride lda
  const float* a_scale = nullptr;        // [*, ceil(k / 128)] row stride ld_a_scale
  const int32_t* a_row_index = nullptr;  // [rows] A row of each permuted row, or nullptr
  const uint8_t* w = nullptr;            // [n_experts, n, k] E4M3 codes
  const float* w_scale = nullptr;        // see above
  const int32_t* expert_offsets = nullptr;  // [n_experts + 1] (device)
  const int32_t* tile_offsets = nullptr;    // [n_experts + 1] (device), tiles of kGroupedTileM
  int64_t n_experts = 0, n = 0, k = 0;
  int64_t lda = 0;         // 0 means k
  int64_t ld_a_scale = 0;  // 0 means ceil(k / 128)
  int64_t max_tiles = 0;   // grid bound >= tile_offsets[n_experts] (GroupedGemmMaxTiles)
  GroupedEpilogue epilogue = GroupedEpilogue::kStoreF32;
  float* c = nullptr;            // kStoreF32: [rows, n] row stride ldc
  __nv_bfloat16* act = nullptr;  // kSiluMul: [rows, n / 2] row stride ldc
  int64_t ldc = 0;
};

cudaError_t Fp8GroupedGemm(const Fp8GroupedGemmParams& p, cudaStream_t stream);

// Host helper: one expert's FP8 [gate; up] in kSiluMul's interleaved row order (as
// InterleaveGateUp) with its interleaved scales.
//   gate, up:   [inter, k] E4M3 codes;  gate_scale, up_scale: [ceil(inter / 128), ceil(k / 128)]
//   dst:        [2 * inter, k];         dst_scale: [2 * ceil(inter / 64), ceil(k / 128)]
void InterleaveGateUpFp8(const uint8_t* gate, const float* gate_scale, const uint8_t* up,
                         const float* up_scale, int64_t inter, int64_t k, uint8_t* dst,
                         float* dst_scale);

}  // namespace dsinfer::cuda
