// Grouped-query attention (Ainslie et al., 2023: GQA; as Qwen2 and Llama use it) over a paged
// cache of K and V rows. The cache holds, per token and layer, one row [K (kv_heads * head_dim) |
// V (kv_heads * head_dim)] in blocks of block_size tokens addressed through a block table per
// sequence; query head h reads kv head h / (heads / kv_heads).
//
// One kernel serves decode tokens and prefill chunks alike: every query token attends causally
// to the keys at positions 0..its own position, which the caller has already appended.
#pragma once

#include <cstdint>

#include "kernels/cpu/parallel.h"

namespace dsinfer::cpu {

struct PagedKvView {
  const float* data;  // [num_blocks, block_size, 2 * kv_heads * head_dim]
  int64_t block_size;
  int64_t width;      // 2 * kv_heads * head_dim
  const float* Row(const int32_t* block_table, int64_t t) const {
    return data + (static_cast<int64_t>(block_table[t / block_size]) * block_size +
                   t % block_size) * width;
  }
};

struct GqaAttentionParams {
  const float* q;              // [n, heads, head_dim], rotated; row stride ld_q
  int64_t ld_q;
  PagedKvView cache;
  const int32_t* const* block_tables;  // [n] each query's sequence's blocks
  const int32_t* positions;    // [n] each query's position (attends keys 0..position)
  float* out;                  // [n, heads, head_dim], row stride ld_out
  int64_t ld_out;
  int64_t n, heads, kv_heads, head_dim;
  float softmax_scale;         // head_dim^-0.5
};

// Query rows of any sequences (a whole step). Softmax in f32 with the max subtracted (sum in double), as
// transformers' eager attention computes it in float32.
void GqaAttention(const GqaAttentionParams& p, const ParallelFor& pfor);

}  // namespace dsinfer::cpu
