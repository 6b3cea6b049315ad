// DeepSeek-V2 / V3 / V3.2 / Kimi-K2 weights: the schema (checkpoint tensor names, fusions, and the slice
// each rank of a ShardLayout reads) written once, and the loaded weights as backend storage.
// V3.2 adds the indexer's weights to each layer. Fusions: projections reading the same input are one weight ([q_a | kv_a] or [q | kv_a],
// [gate | up]); the multi-token-prediction (MTP) module, when config.mtp_layers is 1, is the
// decoder block stored as layer num_hidden_layers (appended to `layers`) plus its `mtp` extras.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "src/config/model_config.h"
#include "src/model/backend_ops.h"
#include "src/model/shard_layout.h"
#include "src/model/weight_desc.h"

namespace dsinfer {

template <typename T>
struct DeepseekLayerOf {
  T input_norm, post_attention_norm;  // [hidden]
  T qkv_a;      // [qa_width + kv_lora + rope, hidden]: q_a (q-LoRA) or this rank's q, then kv_a
  T q_a_norm;   // [q_lora_rank] (q-LoRA only)
  T q_b;        // [local heads * qk_head_dim, q_lora_rank] (q-LoRA only)
  T kv_a_norm;  // [kv_lora]
  T kv_b;       // [local heads * (nope + v), kv_lora]
  T o;          // [hidden, local heads * v]
  T gate_up, down;                 // dense layers: this rank's slice of the MLP
  T router, router_bias;           // MoE layers: [experts, hidden] f32, bias [experts] (noaux_tc)
  T experts;                       // MoE layers: this rank's expert group and inter slice
  T shared_gate_up, shared_down;   // MoE layers: shared experts (replicated)
  // DeepSeek-V3.2's lightning indexer (replicated on every rank): wq_b [index heads * 128,
  // q_lora_rank], wk [128, hidden], k_norm LayerNorm weight and bias [128], weights_proj
  // [index heads, hidden] (f32 GEMM, as the reference).
  T idx_wq_b, idx_wk, idx_k_norm, idx_k_norm_bias, idx_weights;
  bool is_moe = false;
  int64_t qa_width = 0;  // q_lora_rank, or local heads * qk_head_dim
};

// DeepSeek-V3's MTP module (paper section 2.2; checkpoint model.layers.<num_hidden_layers>.*):
// h' = eh_proj([enorm(embed(t_{i+1})); hnorm(h_i)]), then its decoder block, then shared_head.
// The embedding is the main model's (shared, as in the paper).
template <typename T>
struct MtpExtrasOf {
  T enorm, hnorm;  // [hidden]
  T eh_proj;       // [hidden, 2 * hidden]: columns [embedding | hidden state]
  T head_norm;     // shared_head.norm [hidden]
  T head;          // shared_head.head [vocab, hidden]; empty: the main lm_head
};

template <typename T>
struct DeepseekWeightsOf {
  T embed;    // [this rank's vocab rows, hidden]
  T lm_head;  // [this rank's vocab rows, hidden]
  T final_norm;
  std::vector<DeepseekLayerOf<T>> layers;  // decoder layers, then the MTP block (mtp_layers)
  MtpExtrasOf<T> mtp;                      // empty without MTP
};

using DeepseekSchema = DeepseekWeightsOf<WeightDesc>;
using DeepseekLayerWeights = DeepseekLayerOf<std::unique_ptr<BackendWeight>>;

struct DeepseekWeights : DeepseekWeightsOf<std::unique_ptr<BackendWeight>> {
  int64_t bytes = 0;      // this rank's weight memory
  int64_t fp8_bytes = 0;  // of which FP8 codes and scales
};

// Every weight of rank layout.rank; `tied_lm_head`: lm_head is the embedding (no lm_head tensor);
// `mtp_head`: the MTP module has its own shared_head.head (else it uses lm_head).
DeepseekSchema MakeDeepseekSchema(const ModelConfig& c, const ShardLayout& layout,
                                  bool tied_lm_head, bool mtp_head = true);

// Whether the loaded MTP module has its own shared_head.head (without a store: assumed, as in
// DeepSeek-V3's release).
bool HasMtpHead(const ModelConfig& c, const WeightStore* store);

// Calls f on every description (empty ones, e.g. q_b without q-LoRA, are skipped).
void ForEachWeight(const DeepseekSchema& s, const std::function<void(const WeightDesc&)>& f);

// Bytes of rank layout.rank's share as a checkpoint stores it, part by part from the schema:
// FP8 e4m3 codes plus their f32 block scales, else 2 (bf16) or 4 (f32) per element. With a
// store, each part's stored type comes from it; without one, DeepSeek-V3's release format is
// assumed from the config (layer projections FP8 when quantization_config says fp8 and
// fp8_kept, else bf16; norms, router, embedding and lm_head bf16; the correction bias f32).
// What loading reads and `dsinfer plan` budgets per GPU.
absl::StatusOr<int64_t> DeepseekStoredBytes(const ModelConfig& c, const ShardLayout& layout,
                                            const WeightStore* store, bool fp8_kept = true);

absl::StatusOr<DeepseekWeights> LoadDeepseekWeights(const ModelConfig& c,
                                                    const ShardLayout& layout,
                                                    const WeightStore& store, BackendOps& ops);

}  // namespace dsinfer
