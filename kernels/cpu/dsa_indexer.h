// DeepSeek Sparse Attention's lightning indexer on the CPU (DeepSeek-V3.2-Exp tech report, §2.1;
// DeepSeek's reference inference/model.py `Indexer` and kernel.py `act_quant` / `fp8_index`),
// the twin any GPU indexer is held to. Per layer and token:
//   k = rotate(rope_half(LayerNorm(x · wk)))            -> FP8 e4m3 + one scale per 128 values,
//   q_h = rotate(rope_half((q_lora_latent · wq_b)_h))   -> FP8 e4m3 + one scale per head,
//   w_h = ((x · weights_proj)_h * heads^-0.5 * q_scale_h) * head_dim^-0.5,
//   score(t) = k_scale(t) * Σ_h w_h * relu(q_fp8_h · k_fp8(t))      (t = 0 .. own position),
// where rope_half rotates the first rope_dim values as two halves (the reference's
// non-interleaved layout, unlike MLA's interleaved pairs) and rotate is the Hadamard transform
// scaled by n^-0.5. The top-k positions by score are the keys the token's attention may see.
#pragma once

#include <cstdint>

namespace dsinfer::cpu {

inline constexpr int64_t kIndexQuantBlock = 128;  // act_quant's block (values per scale)

// Bytes one index key takes in the cache: head_dim e4m3 codes, then its f32 block scales.
inline int64_t IndexKeyRowBytes(int64_t head_dim) {
  return head_dim + 4 * ((head_dim + kIndexQuantBlock - 1) / kIndexQuantBlock);
}

// In-place Walsh-Hadamard transform (Sylvester order) of n values, n a power of two, times scale.
// Butterflies of stride 1, 2, 4, ...: (a, b) -> (a + b, a - b).
void HadamardTransform(float* x, int64_t n, float scale);

// In-place LayerNorm of n values: (x - mean) / sqrt(var + eps) * w + b (biased variance).
void LayerNormRow(float* x, const float* w, const float* b, int64_t n, float eps);

// RoPE on x[0 : rope_dim) in the half-split layout: (x[i], x[i + rope_dim / 2]) rotates by
// pos * inv_freq[i]; cos and sin are scaled by attn_factor.
void RopeHalfRow(float* x, int32_t pos, const float* inv_freq, int64_t rope_dim,
                 float attn_factor);

// act_quant of one block of n <= 128 values: s = max(amax, 1e-4) * (1 / 448) (rounded up to a
// power of two when ue8m0), codes = e4m3(clamp(x / s, ±448)). Returns s.
float QuantizeIndexBlock(const float* x, int64_t n, bool ue8m0, uint8_t* codes);

// Index keys in a paged cache: row r (= block * block_size + offset) holds IndexKeyRowBytes(dim)
// bytes: dim e4m3 codes, then the f32 scale of each 128-value block.
struct PagedIndexView {
  uint8_t* data;
  int64_t block_size, dim;
  uint8_t* Row(const int32_t* block_table, int64_t t) const {
    return data + (static_cast<int64_t>(block_table[t / block_size]) * block_size +
                   t % block_size) * IndexKeyRowBytes(dim);
  }
};

struct IndexScoreParams {
  const uint8_t* q_codes = nullptr;   // [heads, dim] one query's e4m3 codes
  const float* head_weights = nullptr;  // [heads] w_h (q scales folded in)
  PagedIndexView keys{};
  const int32_t* block_table = nullptr;  // the query's sequence
  int64_t n_keys = 0;                    // positions 0 .. n_keys - 1
  int64_t heads = 0;
  float* scores = nullptr;               // [n_keys] out
};

// fp8_index for one query: per key, f32 sums of decoded code products per head, relu, times
// w_h, summed over heads in order, times the key's scale. Requires dim == 128 (one scale).
void IndexScores(const IndexScoreParams& p);

// The min(k, n) highest-scoring positions of scores[0 : n), ascending; ties go to the lower
// position. Returns how many were written to out.
int64_t TopKPositions(const float* scores, int64_t n, int64_t k, int32_t* out);

}  // namespace dsinfer::cpu
