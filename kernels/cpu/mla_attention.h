// Multi-head latent attention (DeepSeek-V2 MLA) over a paged latent KV cache.
// The cache holds, per token, the normalised latent c (kv_lora values) followed by the rotated
// shared rope key k_pe (rope values): one row of width kv_lora + rope, in blocks of block_size
// tokens addressed through a block table per sequence.
//
// Decode (absorbed form): W_UK is folded into the query beforehand (q_latent = q_nope · W_UK),
// so scores are q_latent·c + q_pe·k_pe straight over the cache, and the output stays latent
// (out_latent = Σ p·c) until W_UV is applied afterwards.
// Prefill (expanded form): keys and values are expanded from the latent through kv_b first.
#pragma once

#include <cstdint>

#include "kernels/cpu/parallel.h"

namespace dsinfer::cpu {

struct PagedLatentView {
  const float* data;             // [num_blocks, block_size, width]
  int64_t block_size;
  int64_t width;                 // kv_lora + rope
  const float* Row(const int32_t* block_table, int64_t t) const {
    return data + (static_cast<int64_t>(block_table[t / block_size]) * block_size +
                   t % block_size) * width;
  }
};

struct MlaDecodeParams {
  const float* q_latent;         // [batch, heads, kv_lora]
  const float* q_pe;             // [batch, heads, rope]
  PagedLatentView cache;
  const int32_t* block_tables;   // [batch, max_blocks] block ids per sequence
  int64_t max_blocks;
  const int32_t* seq_lens;       // [batch] tokens each query attends to (its own included)
  float* out_latent;             // [batch, heads, kv_lora]
  int64_t batch, heads, kv_lora, rope;
  float softmax_scale;
};

void MlaDecode(const MlaDecodeParams& p, const ParallelFor& pfor);

struct MlaPrefillParams {
  const float* q;                // [n_new, heads, nope + rope] (rope part rotated)
  const float* kv;               // [n_total, heads, nope + v]  k_nope and v expanded by kv_b
  const float* k_pe;             // [n_total, rope] rows with stride ld_kpe
  int64_t ld_kpe;
  float* out;                    // [n_new, heads, v]
  int64_t n_new, n_total;        // queries are positions n_total - n_new .. n_total - 1
  int64_t heads, nope, rope, v;
  float softmax_scale;
};

// Causal attention of the n_new queries over keys 0..their position (mla_prefill.cc: tiled,
// each output a fixed sequence of operations whatever the thread split or prefill chunking).
void MlaPrefill(const MlaPrefillParams& p, const ParallelFor& pfor);

// Copies rows [0, n) of one sequence out of the paged cache: dst [n, width].
void GatherPagedRows(const PagedLatentView& cache, const int32_t* block_table, int64_t n,
                     float* dst);

}  // namespace dsinfer::cpu
