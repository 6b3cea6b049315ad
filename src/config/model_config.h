// Model hyper-parameters read from a Hugging Face config.json (DeepSeek-V2/V3/V3.2, Kimi-K2;
// the dense R1 distills' qwen2 and llama).
// Parsing validates every field once, here; the rest of the code trusts a ModelConfig.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace dsinfer {

// How the MoE router picks experts (config.json "topk_method").
enum class TopkMethod { kGreedy, kGroupLimitedGreedy, kNoauxTc };
// How router logits become scores (config.json "scoring_func").
enum class ScoringFunc { kSoftmax, kSigmoid };

const char* TopkMethodName(TopkMethod m);
const char* ScoringFuncName(ScoringFunc f);

// config.json "rope_scaling" of type yarn (DeepSeek) or llama3 (llama); neither: plain RoPE.
struct RopeScaling {
  bool yarn = false;
  bool llama3 = false;  // Llama-3.1's frequency-dependent scaling (factor, low/high_freq_factor)
  double low_freq_factor = 1, high_freq_factor = 4;
  double factor = 1.0;
  int64_t original_max_position_embeddings = 0;
  double beta_fast = 32, beta_slow = 1, mscale = 1, mscale_all_dim = 0;
};

// config.json "quantization_config" (block-wise FP8 E4M3 weights, DeepSeek-V3 style).
struct Fp8Quant {
  bool enabled = false;
  int64_t block_n = 128, block_k = 128;  // weight_block_size [n, k]: rows, columns per scale
  // scale_fmt "ue8m0": activation scales are rounded up to powers of two (DeepSeek-V3.2's
  // act_quant with round_scale); what the V3.2 indexer applies to its FP8 index keys.
  bool scale_ue8m0 = false;
  // expert_dtype "fp4" (top level, or in quantization_config as V4.1 ships it): routed experts
  // stored as packed FP4 E2M1 with E8M0 scales per 32 inputs (DeepSeek-V4); "fp8" / "bf16"
  // (or absent): stored as the other weights.
  bool experts_fp4 = false;
};

// DeepSeek Sparse Attention (model_type deepseek_v32): the lightning indexer of every layer.
struct SparseAttention {
  bool enabled = false;       // model_type deepseek_v32
  int64_t index_n_heads = 0;  // indexer heads (64 in the release)
  int64_t index_head_dim = 0; // 128: one FP8 block per index key, as the reference requires
  int64_t index_topk = 0;     // key positions each query attends to (2048 in the release)
};

// DeepSeek-V4 (model_type deepseek_v4; src/config/v4_config.cc has the config.json fields).
enum class V4Attn : uint8_t { kSliding, kCsa, kHca };  // layer_types
enum class V4Scoring : uint8_t { kSqrtSoftplus, kSoftmax, kSigmoid };
struct V4Config {
  bool enabled = false;
  std::vector<V4Attn> attn;       // [num_hidden_layers]
  std::vector<bool> hash_moe;     // [num_hidden_layers]: tid2eid routing (mlp_layer_types)
  int64_t csa_rate = 4, hca_rate = 128;  // compress_rates
  double compress_rope_theta = 160000.0;  // the compressed branches' rotary (with rope YaRN)
  int64_t hc_mult = 4, hc_sinkhorn_iters = 20;
  double hc_eps = 1e-6;
  double swiglu_limit = 10.0;  // 0: no clipping
  int64_t sliding_window = 128;
  int64_t o_groups = 8, o_lora_rank = 1024;
  int64_t index_n_heads = 64, index_head_dim = 128, index_topk = 512;
  V4Scoring scoring = V4Scoring::kSqrtSoftplus;
  int64_t rate(int64_t layer) const {
    return attn[layer] == V4Attn::kCsa ? csa_rate : attn[layer] == V4Attn::kHca ? hca_rate : 0;
  }
};

// MTP draft tokens per step (the one MTP layer chained k times) may be 1 .. this: past a few
// drafts acceptance of chained drafts falls off while every verified row costs a decode row.
inline constexpr int32_t kMaxMtpDraftTokens = 8;

struct ModelConfig {
  std::string model_type;  // deepseek_v2, deepseek_v3, deepseek_v32, deepseek_v4, kimi_k2, qwen2
                           // or llama
  int64_t hidden_size = 0, intermediate_size = 0, moe_intermediate_size = 0;
  int64_t num_hidden_layers = 0, num_attention_heads = 0;
  int64_t q_lora_rank = 0;  // 0 when null: plain q_proj
  int64_t kv_lora_rank = 0, qk_nope_head_dim = 0, qk_rope_head_dim = 0, v_head_dim = 0;
  int64_t n_routed_experts = 0, n_shared_experts = 0, num_experts_per_tok = 0;
  int64_t n_group = 1, topk_group = 1;
  TopkMethod topk_method = TopkMethod::kGreedy;
  ScoringFunc scoring_func = ScoringFunc::kSoftmax;
  bool norm_topk_prob = false;
  double routed_scaling_factor = 1.0;
  int64_t first_k_dense_replace = 0, moe_layer_freq = 1;
  double rms_norm_eps = 1e-6, rope_theta = 10000.0;
  RopeScaling rope_scaling;
  int64_t max_position_embeddings = 0, vocab_size = 0;
  bool tie_word_embeddings = false;
  int64_t bos_token_id = -1;           // -1 when null
  std::vector<int64_t> eos_token_ids;  // config.json (an int or a list) + generation_config.json
  Fp8Quant fp8;
  SparseAttention dsa;
  V4Config v4;  // deepseek_v4 (head_dim, q_lora_rank, qk_rope_head_dim and the MoE fields shared)
  int64_t num_nextn_predict_layers = 0;  // MTP layers stored after the decoder layers
  // MTP layers the program loads and runs (0 or 1): a load-time choice (LoadOptions::mtp), not
  // a config.json key. Counted by the KV cache spec and the weight schema.
  int64_t mtp_layers = 0;
  std::string torch_dtype;               // "" when absent
  // Dense families (qwen2, llama): grouped-query attention, no MLA / MoE fields.
  int64_t num_key_value_heads = 0;  // divides num_attention_heads
  int64_t head_dim = 0;             // config.json head_dim, else hidden_size / num_attention_heads
  bool qkv_bias = false;            // q/k/v projections have biases (qwen2; llama attention_bias)
  bool o_bias = false;              // o_proj has a bias (llama attention_bias)

  int64_t qk_head_dim() const { return qk_nope_head_dim + qk_rope_head_dim; }
  // qwen2 / llama: a dense decoder with GQA (src/model/dense_program.h), not MLA + MoE.
  bool IsDense() const { return model_type == "qwen2" || model_type == "llama"; }
  bool IsV4() const { return model_type == "deepseek_v4"; }
  // DeepSeek's rule: routed experts exist, past the leading dense layers, every moe_layer_freq.
  bool IsMoeLayer(int64_t layer) const;
};

// Parses config.json text. Unsupported or inconsistent values give InvalidArgument naming the
// field; unknown keys are ignored (HF configs carry many).
absl::StatusOr<ModelConfig> ParseModelConfig(std::string_view json_text);

// Adds the eos_token_id (an int or a list) of a generation_config.json to config's stop ids:
// HF's generate() stops at those (Kimi-K2's chat turns end with <|im_end|>, not config.json's
// [EOS]), so the model stops at either file's. Ids outside the vocabulary are InvalidArgument.
absl::Status AddGenerationConfigEos(std::string_view json_text, ModelConfig* config);

// Reads and parses model_dir/config.json, plus model_dir/generation_config.json's eos_token_id
// when that file exists. Errors name the file's path and the field.
absl::StatusOr<ModelConfig> LoadModelConfig(const std::string& model_dir);

}  // namespace dsinfer
