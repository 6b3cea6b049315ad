// DeepSeek Sparse Attention's lightning indexer on the GPU (DeepSeek-V3.2-Exp tech report §2.1;
// the reference inference/model.py `Indexer`, kernel.py `act_quant` / `fp8_index`), the twin of
// kernels/cpu/dsa_indexer.h, whose header has the formulas. Four kernels per layer and step:
//   IndexKeyAppend:   LayerNorm, half-split RoPE, Hadamard rotation and act_quant of each new
//                     token's key, stored as [dim e4m3 codes | f32 scale] in the paged index cache;
//   IndexQueryPrep:   the same RoPE / rotation / act_quant of every query head, and the head
//                     weights w_h with the query's scale folded in;
//   IndexScores:      per (token, key) k_scale * Σ_h w_h * relu(q_h · k) over decoded codes;
//   IndexTopK:        the min(k, n) best positions of each token, ascending, -1 padded (ties go to
//                     the lower position, as cpu::TopKPositions).
// Every length is read on the device (n = positions[i] + 1) and every grid depends only on the
// token count, so one launch sequence serves every decode step of a batch size (CUDA graphs).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace dsinfer::cuda {

struct IndexKeyAppendParams {
  const float* k = nullptr;  // [tokens, dim] x · wk, row stride ld_k
  int64_t ld_k = 0;
  const float* norm_w = nullptr;       // [dim] LayerNorm weight
  const float* norm_b = nullptr;       // [dim] LayerNorm bias
  const int32_t* positions = nullptr;  // [tokens]
  const int32_t* slots = nullptr;      // [tokens] cache row of each token
  const float* inv_freq = nullptr;     // [rope / 2]
  uint8_t* cache = nullptr;            // [num_blocks * block_size, cpu::IndexKeyRowBytes(dim)]
  int64_t tokens = 0, dim = 0, rope = 0;
  float eps = 1e-6f, attn_factor = 1.0f;
  float rot_scale = 1.0f;  // dim^-0.5 (computed on the host as the CPU backend does)
  bool ue8m0 = false;      // power-of-two scales
};
cudaError_t IndexKeyAppend(const IndexKeyAppendParams& p, cudaStream_t stream);

struct IndexQueryPrepParams {
  const float* q = nullptr;  // [tokens, heads * dim] q-LoRA latent · wq_b (row stride ld_q)
  int64_t ld_q = 0;
  const float* w = nullptr;  // [tokens, heads] x · weights_proj (row stride ld_w)
  int64_t ld_w = 0;
  const int32_t* positions = nullptr;  // [tokens]
  const float* inv_freq = nullptr;     // [rope / 2]
  uint8_t* q_codes = nullptr;          // [tokens, heads, dim] out
  float* head_weights = nullptr;       // [tokens, heads] out: w * head_scale * q_scale * softmax
  int64_t tokens = 0, heads = 0, dim = 0, rope = 0;
  float attn_factor = 1.0f, rot_scale = 1.0f;
  float head_scale = 1.0f;     // heads^-0.5
  float softmax_scale = 1.0f;  // dim^-0.5
  bool ue8m0 = false;
};
cudaError_t IndexQueryPrep(const IndexQueryPrepParams& p, cudaStream_t stream);

struct IndexScoresParams {
  const uint8_t* q_codes = nullptr;       // [tokens, heads, dim]
  const float* head_weights = nullptr;    // [tokens, heads]
  const uint8_t* cache = nullptr;         // one layer's index cache (IndexKeyAppend's layout)
  const int32_t* block_tables = nullptr;  // block ids of all sequences
  const int32_t* token_table = nullptr;   // [tokens] offset of each token's table in block_tables
  const int32_t* positions = nullptr;     // [tokens] token i scores keys 0 .. positions[i]
  float* scores = nullptr;                // [tokens, ld_scores] out
  int64_t ld_scores = 0;                  // >= positions[i] + 1 for every token
  int64_t tokens = 0, heads = 0, dim = 0, block_size = 0;
  int32_t splits = 1;  // CTAs per token (keys strided over them); choose from tokens only
};
// Requires dim == 128 (one scale per key, as the CPU twin).
cudaError_t IndexScores(const IndexScoresParams& p, cudaStream_t stream);

struct IndexTopKParams {
  const float* scores = nullptr;  // [tokens, ld_scores]
  int64_t ld_scores = 0;
  const int32_t* positions = nullptr;  // [tokens] n = positions[i] + 1 scores per token
  int32_t* out = nullptr;              // [tokens, ld_out] out: k columns
  int64_t ld_out = 0;
  int64_t tokens = 0, k = 0;
};
cudaError_t IndexTopK(const IndexTopKParams& p, cudaStream_t stream);

}  // namespace dsinfer::cuda
