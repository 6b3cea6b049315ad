// DeepSeek (V2 / V3 / Kimi-K2) weights in the layout the CPU forward pass uses, loaded from a
// Hugging Face checkpoint. Projections that read the same input are fused at load time
// (q_a|kv_a, gate|up) so each costs one GEMM.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "src/config/model_config.h"
#include "src/model/shard_layout.h"
#include "src/weights/weight_store.h"

namespace dsinfer {

enum class Precision : uint8_t { kF32, kBF16 };

absl::StatusOr<Precision> ParsePrecision(absl::string_view name);  // "f32" | "bf16"

// A [rows, cols] row-major weight matrix in the run's precision (HF [out, in] layout).
struct Matrix {
  int64_t rows = 0, cols = 0;
  bool bf16 = false;
  std::vector<float> f32;
  std::vector<uint16_t> b16;
  const void* data() const { return bf16 ? static_cast<const void*>(b16.data()) : f32.data(); }
  int64_t bytes() const { return rows * cols * (bf16 ? 2 : 4); }
};

struct MlpWeights {
  int64_t inter = 0;
  Matrix gate_up;  // [2 * inter, hidden]: gate_proj rows then up_proj rows
  Matrix down;     // [hidden, inter]
};

struct AttentionWeights {
  // Fused first projection of x: [q_a (q_lora_rank) or q (heads * qk_head_dim)] then
  // kv_a_proj_with_mqa (kv_lora_rank + qk_rope_head_dim): [qa_width + kv_lora + rope, hidden].
  Matrix qkv_a;
  std::vector<float> q_a_norm;   // [q_lora_rank] (q-LoRA only)
  Matrix q_b;                    // [heads * qk_head_dim, q_lora_rank] (q-LoRA only)
  std::vector<float> kv_a_norm;  // [kv_lora_rank]
  // kv_b_proj as f32 (bf16-rounded values in bf16 runs): [heads * (nope + v), kv_lora_rank].
  // Rows h*(nope+v) .. +nope are head h's W_UK, the next v rows its W_UV.
  std::vector<float> kv_b;
  Matrix o;                      // [hidden, heads * v_head_dim]
};

struct MoeWeights {
  std::vector<float> gate;       // [n_routed_experts, hidden] router, always f32
  std::vector<float> bias;       // [n_routed_experts] e_score_correction_bias, or empty
  // [n_routed_experts]; under expert parallelism only this rank's group is loaded (the others
  // are empty) and each holds this rank's slice of moe_intermediate_size.
  std::vector<MlpWeights> experts;
  MlpWeights shared;             // n_shared_experts fused into one MLP (inter = n * moe_inter)
};

struct LayerWeights {
  std::vector<float> input_norm, post_attention_norm;  // [hidden]
  AttentionWeights attn;
  bool is_moe = false;
  MlpWeights mlp;  // dense layers
  MoeWeights moe;  // MoE layers
};

// Under tensor parallelism (ShardLayout) a rank holds: its heads' rows of q / q_b and kv_b and
// columns of o; its slice of dense MLPs; its vocab rows of embed and lm_head.
struct ModelWeights {
  Precision precision = Precision::kF32;
  ShardLayout layout;
  Matrix embed;    // [vocab (this rank's rows), hidden]
  std::vector<LayerWeights> layers;
  std::vector<float> final_norm;
  Matrix lm_head;  // [vocab, hidden] (a copy of embed when tied)
  int64_t total_bytes = 0;
};

// Loads every tensor the forward pass needs (this rank's share of it under `layout`); MTP layers
// (index >= num_hidden_layers) are skipped.
absl::StatusOr<std::unique_ptr<ModelWeights>> LoadModelWeights(const ModelConfig& cfg,
                                                               const WeightStore& store,
                                                               Precision precision,
                                                               const ShardLayout& layout = {});

}  // namespace dsinfer
