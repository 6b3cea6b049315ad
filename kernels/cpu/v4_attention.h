// DeepSeek-V4's attention pieces (V4 paper §2.3; transformers' modeling_deepseek_v4.py):
// - one shared K=V head of head_dim per token, partial RoPE on its trailing rope_dim channels
//   (DeepSeek's interleaved pairs), undone on the output's trailing channels (rotation by -pos);
// - a sliding window of the last `window` tokens (the query's own included), plus compressed
//   entries (CSA: the indexer's top-k; HCA: every closed one), plus a learned per-head sink
//   logit that takes softmax mass but has no value;
// - the KV compressor: each closed window of `rate` tokens becomes one entry, a per-channel
//   softmax over the window's gate logits (+ a learned position bias) weighting its kv rows;
//   CSA overlaps windows (entry w pools window w-1's first-half channels with window w's
//   second-half channels, 2·rate slots), HCA does not;
// - the lightning indexer: score_t = Σ_h w_h · relu(q_h · k_t) · index_head_dim^-0.5 over the
//   closed compressed index keys, the top-k chosen.
#pragma once

#include <cstdint>

namespace dsinfer::cpu {

// Rotates the trailing rope_dim channels of each head (x[r, h, head_dim - rope_dim + 2i],
// x[..., + 1]) by angle sign · positions[r] · inv_freq[i] (sign -1: the inverse rotation).
struct TrailingRopeParams {
  float* x;                  // [rows, heads, head_dim], row stride row_stride
  const int32_t* positions;  // [rows]
  const float* inv_freq;     // [rope_dim / 2]
  int64_t rows, heads, head_dim, rope_dim, row_stride;
  bool inverse = false;
};
void TrailingRope(const TrailingRopeParams& p);

// One compressed entry from a closed window (before its RMSNorm and RoPE).
struct CompressWindowParams {
  const float* kv;       // [rate, width] the window's kv projections (width: 2·dim overlap, dim)
  const float* gate;     // [rate, width] its gate projections
  const float* prev_kv;  // [rate, width] the previous window's (overlap only; nullptr: none)
  const float* prev_gate;
  const float* position_bias;  // [rate, width]
  int64_t rate, dim;
  bool overlap;
  float* out;  // [dim]
};
void CompressWindow(const CompressWindowParams& p);

// Attention of one query token over a key set (K = V): out[h] = Σ_j p_hj · key_j with
// p_hj = exp(s_hj - m) / (Σ_i exp(s_hi - m) + exp(sink_h - m)), s_hj = scale · q_h · key_j.
struct SinkAttentionParams {
  const float* q;            // [heads, head_dim] (rotated)
  const float* const* keys;  // [n_keys] pointers to rows [head_dim] (rotated)
  int64_t n_keys;
  const float* sinks;        // [heads]
  int64_t heads, head_dim;
  float scale;
  float* out;                // [heads, head_dim]
};
void SinkAttention(const SinkAttentionParams& p);

// The indexer's choice for one query: the min(topk, n_valid) best of keys [0, n_valid), in
// descending score (ties: the lower index first). Returns how many were written to `chosen`.
struct IndexerTopkParams {
  const float* q;       // [heads, head_dim] (rotated)
  const float* w;       // [heads] the query's head weights (weights_proj · heads^-0.5)
  const float* const* keys;  // [n_valid] pointers to compressed index keys [head_dim]
  int64_t n_valid, heads, head_dim, topk;
  int32_t* chosen;      // [topk] out: key indices
  float* scores;        // [n_valid] scratch
};
int64_t IndexerTopk(const IndexerTopkParams& p);

}  // namespace dsinfer::cpu
