// Mixture-of-experts on the GPU: the fused router (twin of kernels/cpu/moe_router.h), token
// permutation into expert-contiguous order, a grouped GEMM over the experts (bf16 mma.sync,
// f32 accumulation; expert row counts read on the device, so no host sync), and the
// unpermute that sums each token's expert outputs with its routing weights.
//
// Flow of one MoE layer over `tokens` rows:
//   MoeRoute -> topk_ids/weights;  MoePermute -> expert_offsets, tile_offsets, slot_of, row_token;
//   GroupedGemm(x gathered by row_token, W_gate_up, kSiluMul) -> act [tokens*top_k, inter] bf16;
//   GroupedGemm(act, W_down, kStoreF32) -> y [tokens*top_k, hidden] f32;
//   MoeUnpermute(y, shared expert output) -> x += sum_k w_k y_k (+ shared)
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

namespace dsinfer::cuda {

enum class MoeScoring : int32_t { kSoftmax, kSigmoid };
enum class MoeGroupScore : int32_t { kMax, kTop2Sum };

inline constexpr int64_t kMoeMaxExperts = 512;
inline constexpr int64_t kMoeMaxTopK = 16;

struct MoeRouteParams {
  const float* logits = nullptr;  // [tokens, n_experts] gate logits (f32)
  const float* bias = nullptr;    // [n_experts] selection-only correction bias, or nullptr
  int32_t* topk_ids = nullptr;    // [tokens, top_k] out
  float* topk_weights = nullptr;  // [tokens, top_k] out
  int64_t tokens = 0, n_experts = 0, top_k = 0;
  int64_t n_group = 1, topk_group = 1;
  MoeScoring scoring = MoeScoring::kSoftmax;
  MoeGroupScore group_score = MoeGroupScore::kMax;
  bool normalize = false;             // weights /= sum (when top_k > 1)
  float scale = 1.0f;                 // routed_scaling_factor
  bool scale_when_normalized = true;  // false: DeepSeek-V2 (scale only un-normalised weights)
};

cudaError_t MoeRoute(const MoeRouteParams& p, cudaStream_t stream);

// Rows per m-tile of the grouped GEMM: an expert with c rows takes ceil(c / kGroupedTileM) tiles.
inline constexpr int64_t kGroupedTileM = 64;

struct MoePermuteParams {
  const int32_t* topk_ids = nullptr;  // [tokens, top_k]
  int64_t tokens = 0, top_k = 0, n_experts = 0;
  int32_t* expert_offsets =
      nullptr;  // [n_experts + 1] out: expert e owns permuted rows [off[e], off[e+1])
  int32_t* tile_offsets =
      nullptr;                   // [n_experts + 1] out: m-tiles of the grouped GEMM before expert e
  int32_t* slot_of = nullptr;    // [tokens, top_k] out: permuted row of (token, k)
  int32_t* row_token = nullptr;  // [tokens * top_k] out: token of each permuted row
  int64_t* expert_load = nullptr;  // [n_experts] += rows per expert (statistics), or nullptr
};

// One CTA; rows within an expert come in no particular order (the GEMM is row-independent).
cudaError_t MoePermute(const MoePermuteParams& p, cudaStream_t stream);

// Upper bound of tile_offsets[n_experts] for `rows` = tokens * top_k routed rows.
inline int64_t GroupedGemmMaxTiles(int64_t rows, int64_t n_experts) {
  const int64_t nonempty = rows < n_experts ? rows : n_experts;
  const int64_t bound = (rows + kGroupedTileM - 1) / kGroupedTileM + nonempty;
  return bound < rows ? bound : rows;
}

enum class GroupedEpilogue : int32_t {
  kStoreF32,  // c[row, n] = acc (f32)
  kSiluMul,   // act[row, j] = silu(gate_j) * up_j (bf16): W rows interleaved, see below
};

// C = A · W_e^T for every expert e over its rows. W is [n_experts, n, k] bf16 (HF [out, in]).
// kSiluMul expects the gate/up rows of each expert interleaved in blocks of 64 features: block j
// (features [64j, 64j + w), w = min(64, n/2 - 64j)) holds w gate rows then w up rows, at rows
// [128j, 128j + 2w) — see InterleaveGateUp. Requires k % 8 == 0.
struct GroupedGemmParams {
  const __nv_bfloat16* a = nullptr;      // [*, k] row stride lda
  const int32_t* a_row_index = nullptr;  // [rows] A row of each permuted row (a gather), or nullptr
  const __nv_bfloat16* w = nullptr;      // [n_experts, n, k]
  const int32_t* expert_offsets = nullptr;  // [n_experts + 1] (device)
  const int32_t* tile_offsets = nullptr;    // [n_experts + 1] (device)
  int64_t n_experts = 0, n = 0, k = 0, lda = 0;
  int64_t max_tiles = 0;  // grid bound >= tile_offsets[n_experts] (GroupedGemmMaxTiles)
  GroupedEpilogue epilogue = GroupedEpilogue::kStoreF32;
  float* c = nullptr;            // kStoreF32: [rows, n] row stride ldc
  __nv_bfloat16* act = nullptr;  // kSiluMul: [rows, n / 2] row stride ldc
  int64_t ldc = 0;
};

cudaError_t GroupedGemm(const GroupedGemmParams& p, cudaStream_t stream);

// Host helper: writes one expert's [gate; up] ([2 * inter, k] rows, gate first) in the interleaved
// row order kSiluMul expects. dst and src are [2 * inter, k] bf16 (as uint16_t bits).
void InterleaveGateUp(const uint16_t* gate, const uint16_t* up, int64_t inter, int64_t k,
                      uint16_t* dst);

struct MoeUnpermuteParams {
  const float* y = nullptr;             // [tokens * top_k, dim] expert outputs, permuted order
  const int32_t* slot_of = nullptr;     // [tokens, top_k]
  const int32_t* topk_ids = nullptr;    // [tokens, top_k] (sums run in ascending expert id)
  const float* topk_weights = nullptr;  // [tokens, top_k]
  const float* shared =
      nullptr;         // [tokens, dim] shared-expert output added after the routed sum, or nullptr
  float* x = nullptr;  // [tokens, dim] residual stream: x += sum (+ shared)
  int64_t tokens = 0, top_k = 0, dim = 0;
};

cudaError_t MoeUnpermute(const MoeUnpermuteParams& p, cudaStream_t stream);

}  // namespace dsinfer::cuda
