// MLA over each token's selected key positions (DeepSeek Sparse Attention, DeepSeek-V3.2-Exp; as
// FlashMLA's sparse decoding reads a top-k index list per query), absorbed form over the paged
// latent cache: the twin of the CPU backend's sparse path (cpu::MlaDecode over the token's
// gathered rows). Query rows are (token, head) pairs [q_nope · W_UK | rope(q_pe)]; token i
// attends to the cached rows at positions topk[i, 0 ..] up to the first -1, whatever their order.
//
// One warp per query row, CTAs of 8 heads of one token (they read the same rows, so the rows
// come from L1 after the first warp). Lengths are read on the device and the grid depends only
// on tokens and heads (CUDA graphs).
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

namespace dsinfer::cuda {

struct SparseMlaParams {
  // [tokens * heads, kv_lora + rope] query rows: bf16, or f32 when q_f32 is set.
  const __nv_bfloat16* q = nullptr;
  const float* q_f32 = nullptr;
  const __nv_bfloat16* cache = nullptr;   // [num_blocks * block_size, kv_lora + rope] one layer
  const int32_t* block_tables = nullptr;  // block ids of all sequences
  const int32_t* token_table = nullptr;   // [tokens] offset of each token's table
  const int32_t* topk = nullptr;          // [tokens, ld_topk] positions, -1 padded
  int64_t ld_topk = 0, topk_count = 0;    // topk_count columns are read at most
  // [tokens * heads, kv_lora] normalised latent output: bf16, or f32 when out_f32 is set.
  __nv_bfloat16* out = nullptr;
  float* out_f32 = nullptr;
  int64_t tokens = 0, heads = 0, kv_lora = 0, rope = 0, block_size = 0;
  float softmax_scale = 0;
};

cudaError_t SparseMlaAttention(const SparseMlaParams& p, cudaStream_t stream);

}  // namespace dsinfer::cuda
