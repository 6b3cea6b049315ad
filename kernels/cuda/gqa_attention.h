// Grouped-query attention (Ainslie et al., 2023; as Qwen2 and Llama use it) over a paged cache of
// [K | V] bf16 rows, the twin of kernels/cpu/gqa_attention.h (and of the CPU backend's RoPE and
// append around it). Two kernels per layer and step:
//   GqaAppend:    RoPE on q and k in HF's rotate_half layout (pairs (i, i + head_dim / 2)), in
//                 place in f32, and each token's [k | v] row stored in bf16 at its cache slot;
//   GqaAttention: every query token attends causally to its sequence's keys 0 .. its position
//                 (decode tokens and prefill chunks alike); query head h reads kv head
//                 h / (heads / kv_heads). One warp per (token, head), CTAs of 4 heads of one token
//                 (a group's heads read the same rows); lengths are read on the device and the
//                 grid depends only on tokens and heads (CUDA graphs).
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

namespace dsinfer::cuda {

struct GqaAppendParams {
  float* q = nullptr;  // [tokens, heads * head_dim] rotated in place (row stride ld_q)
  int64_t ld_q = 0;
  float* k = nullptr;  // [tokens, kv_heads * head_dim] rotated in place (row stride ld_k)
  int64_t ld_k = 0;
  const float* v = nullptr;  // [tokens, kv_heads * head_dim] (row stride ld_v)
  int64_t ld_v = 0;
  const int32_t* positions = nullptr;  // [tokens]
  const int32_t* slots = nullptr;      // [tokens] cache row of each token
  const float* inv_freq = nullptr;     // [head_dim / 2]
  __nv_bfloat16* cache = nullptr;      // [num_blocks * block_size, 2 * kv_heads * head_dim]
  int64_t tokens = 0, heads = 0, kv_heads = 0, head_dim = 0;
};
cudaError_t GqaAppend(const GqaAppendParams& p, cudaStream_t stream);

struct GqaAttentionParams {
  const float* q = nullptr;  // [tokens, heads * head_dim] rotated (row stride ld_q)
  int64_t ld_q = 0;
  const __nv_bfloat16* cache = nullptr;   // [num_blocks * block_size, 2 * kv_heads * head_dim]
  const int32_t* block_tables = nullptr;  // block ids of all sequences
  const int32_t* token_table = nullptr;   // [tokens] offset of each token's table
  const int32_t* positions = nullptr;     // [tokens] token i attends keys 0 .. positions[i]
  __nv_bfloat16* out = nullptr;           // [tokens, heads * head_dim] (row stride ld_out)
  int64_t ld_out = 0;
  int64_t tokens = 0, heads = 0, kv_heads = 0, head_dim = 0, block_size = 0;
  float softmax_scale = 0;  // head_dim^-0.5
};
cudaError_t GqaAttention(const GqaAttentionParams& p, cudaStream_t stream);

}  // namespace dsinfer::cuda
