// qwen2 / llama (the DeepSeek-R1 distills) weights: the schema (HF checkpoint names and fusions)
// and the loaded weights as backend storage. Fusions: [q; k; v] as one projection, [gate; up].
// Biases (qwen2's q/k/v, llama's attention_bias) are separate f32 vectors. A rank of tp holds
// the slices of shard_layout.h (heads, KV heads, intermediate, vocabulary).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "src/config/model_config.h"
#include "src/model/backend_ops.h"
#include "src/model/shard_layout.h"
#include "src/model/weight_desc.h"

namespace dsinfer {

template <typename T>
struct DenseLayerOf {
  T input_norm, post_attention_norm;  // [hidden]
  T qkv;                              // [(heads + 2 kv_heads) * head_dim, hidden]
  T q_bias, k_bias, v_bias;           // [heads * head_dim], [kv_heads * head_dim] (qkv_bias)
  T o;                                // [hidden, heads * head_dim]
  T o_bias;                           // [hidden] (o_bias)
  T gate_up, down;                    // [2 * intermediate, hidden], [hidden, intermediate]
};

template <typename T>
struct DenseWeightsOf {
  T embed, lm_head, final_norm;
  std::vector<DenseLayerOf<T>> layers;
};

using DenseSchema = DenseWeightsOf<WeightDesc>;

struct DenseWeights : DenseWeightsOf<std::unique_ptr<BackendWeight>> {
  int64_t bytes = 0, fp8_bytes = 0;
};

// `tied_lm_head`: lm_head is the embedding (tie_word_embeddings and no lm_head tensor).
DenseSchema MakeDenseSchema(const ModelConfig& c, const ShardLayout& layout, bool tied_lm_head);
void ForEachDenseWeight(const DenseSchema& s, const std::function<void(const WeightDesc&)>& f);
absl::StatusOr<DenseWeights> LoadDenseWeights(const ModelConfig& c, const ShardLayout& layout,
                                              const WeightStore& store, BackendOps& ops);

}  // namespace dsinfer
