// config.json of the dense families: Qwen2ForCausalLM (model_type qwen2) and LlamaForCausalLM
// (llama), as DeepSeek-R1-Distill-Qwen-1.5B..32B and -Llama-8B/70B ship them. Defaults are
// transformers' Qwen2Config / LlamaConfig; what the dense program does not implement is refused
// naming the field.
#include <string>

#include "absl/strings/str_cat.h"
#include "src/config/config_json.h"
#include "src/config/dense_config.h"
#include "src/core/status_macros.h"

namespace dsinfer {
namespace {

using Json = nlohmann::json;
using namespace config_json;  // NOLINT: the shared field readers

void ApplyDenseDefaults(ModelConfig* c) {
  const bool qwen = c->model_type == "qwen2";
  c->vocab_size = qwen ? 151936 : 32000;
  c->hidden_size = 4096;
  c->intermediate_size = qwen ? 22016 : 11008;
  c->num_hidden_layers = 32;
  c->num_attention_heads = 32;
  c->num_key_value_heads = 0;  // absent or null: num_attention_heads
  c->max_position_embeddings = qwen ? 32768 : 2048;
  c->rms_norm_eps = 1e-6;
  c->rope_theta = 10000.0;
  c->tie_word_embeddings = false;
  c->bos_token_id = qwen ? -1 : 1;
  c->eos_token_ids = qwen ? std::vector<int64_t>{} : std::vector<int64_t>{2};
  // No MLA, no experts: the DeepSeek fields stay 0 and nothing reads them.
  c->q_lora_rank = c->kv_lora_rank = c->qk_nope_head_dim = c->qk_rope_head_dim = 0;
  c->v_head_dim = c->n_routed_experts = c->n_shared_experts = c->num_experts_per_tok = 0;
  c->first_k_dense_replace = 0;
}

// rope_scaling (or transformers 5's rope_parameters): default, or llama3 (Llama-3.1's
// frequency-dependent interpolation). Anything else is refused by name.
absl::Status ParseDenseRope(const Json& root, ModelConfig* c) {
  ASSIGN_OR_RETURN(RopeObject rope, FindRopeObject(root, &c->rope_theta));
  if (rope.obj == nullptr || rope.type == "default") return absl::OkStatus();
  const Json& rs = *rope.obj;
  auto name = [&](const char* k) { return absl::StrCat(rope.field, ".", k); };
  if (rope.type != "llama3") {
    return FieldError(rope.type_field, absl::StrCat("\"", rope.type, "\" is not supported for ",
                                                    c->model_type, " (only default or llama3)"));
  }
  RopeScaling& r = c->rope_scaling;
  r.llama3 = true;
  for (const char* k : {"factor", "low_freq_factor", "high_freq_factor",
                        "original_max_position_embeddings"}) {
    if (!rs.contains(k)) return FieldError(name(k), "is missing (rope type llama3)");
  }
  RETURN_IF_ERROR(GetDouble(rs, "factor", name("factor"), &r.factor));
  RETURN_IF_ERROR(GetDouble(rs, "low_freq_factor", name("low_freq_factor"), &r.low_freq_factor));
  RETURN_IF_ERROR(
      GetDouble(rs, "high_freq_factor", name("high_freq_factor"), &r.high_freq_factor));
  RETURN_IF_ERROR(GetInt(rs, "original_max_position_embeddings",
                         name("original_max_position_embeddings"),
                         &r.original_max_position_embeddings));
  if (!(r.factor >= 1.0)) {
    return FieldError(name("factor"), absl::StrCat("must be >= 1, got ", r.factor));
  }
  RETURN_IF_ERROR(CheckPositive(name("low_freq_factor"), r.low_freq_factor));
  if (!(r.high_freq_factor > r.low_freq_factor)) {
    return FieldError(name("high_freq_factor"),
                      absl::StrCat("(", r.high_freq_factor, ") must exceed low_freq_factor (",
                                   r.low_freq_factor, ")"));
  }
  return CheckRange(name("original_max_position_embeddings"), r.original_max_position_embeddings,
                    1, kMaxDim * 64);
}

// Sliding-window attention is not implemented: refused when any layer would use it.
absl::Status CheckNoSlidingWindow(const Json& root) {
  bool sliding = false;
  RETURN_IF_ERROR(GetBool(root, "use_sliding_window", "use_sliding_window", &sliding));
  if (sliding) return FieldError("use_sliding_window", "true is not supported (no sliding window)");
  auto it = root.find("layer_types");
  if (it == root.end() || it->is_null()) return absl::OkStatus();
  if (!it->is_array()) {
    return FieldError("layer_types", absl::StrCat("must be a list, got ", Describe(*it)));
  }
  for (size_t i = 0; i < it->size(); ++i) {
    const Json& t = (*it)[i];
    if (!t.is_string() || t.get<std::string>() != "full_attention") {
      return FieldError(absl::StrCat("layer_types[", i, "]"),
                        absl::StrCat("must be \"full_attention\", got ", Describe(t)));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateDense(const ModelConfig& c) {
  RETURN_IF_ERROR(CheckRange("hidden_size", c.hidden_size, 1, kMaxDim));
  RETURN_IF_ERROR(CheckRange("intermediate_size", c.intermediate_size, 1, kMaxDim));
  RETURN_IF_ERROR(CheckRange("num_hidden_layers", c.num_hidden_layers, 1, 1 << 16));
  RETURN_IF_ERROR(CheckRange("num_attention_heads", c.num_attention_heads, 1, 1 << 16));
  RETURN_IF_ERROR(
      CheckRange("num_key_value_heads", c.num_key_value_heads, 1, c.num_attention_heads));
  if (c.num_attention_heads % c.num_key_value_heads != 0) {
    return FieldError("num_key_value_heads",
                      absl::StrCat("(", c.num_key_value_heads,
                                   ") must divide num_attention_heads (", c.num_attention_heads,
                                   ")"));
  }
  RETURN_IF_ERROR(CheckRange("head_dim", c.head_dim, 2, 1 << 12));
  if (c.head_dim % 2 != 0) {
    return FieldError("head_dim", absl::StrCat("must be even (rotary halves), got ", c.head_dim));
  }
  RETURN_IF_ERROR(CheckRange("vocab_size", c.vocab_size, 1, kMaxDim));
  RETURN_IF_ERROR(
      CheckRange("max_position_embeddings", c.max_position_embeddings, 1, kMaxDim * 64));
  RETURN_IF_ERROR(CheckPositive("rms_norm_eps", c.rms_norm_eps));
  return CheckPositive("rope_theta", c.rope_theta);
}

}  // namespace

absl::Status ParseDenseFields(const Json& root, ModelConfig* c) {
  ApplyDenseDefaults(c);
  struct IntField {
    const char* key;
    int64_t* out;
    std::optional<int64_t> null_value;
  };
  const IntField ints[] = {
      {"hidden_size", &c->hidden_size, std::nullopt},
      {"intermediate_size", &c->intermediate_size, std::nullopt},
      {"num_hidden_layers", &c->num_hidden_layers, std::nullopt},
      {"num_attention_heads", &c->num_attention_heads, std::nullopt},
      {"num_key_value_heads", &c->num_key_value_heads, 0},
      {"head_dim", &c->head_dim, 0},
      {"max_position_embeddings", &c->max_position_embeddings, std::nullopt},
      {"vocab_size", &c->vocab_size, std::nullopt},
  };
  for (const IntField& f : ints) RETURN_IF_ERROR(GetInt(root, f.key, f.key, f.out, f.null_value));
  if (c->num_key_value_heads == 0) c->num_key_value_heads = c->num_attention_heads;
  if (c->head_dim == 0 && c->num_attention_heads > 0) {
    c->head_dim = c->hidden_size / c->num_attention_heads;
  }
  RETURN_IF_ERROR(GetDouble(root, "rms_norm_eps", "rms_norm_eps", &c->rms_norm_eps));
  RETURN_IF_ERROR(GetDouble(root, "rope_theta", "rope_theta", &c->rope_theta));
  RETURN_IF_ERROR(
      GetBool(root, "tie_word_embeddings", "tie_word_embeddings", &c->tie_word_embeddings));

  ASSIGN_OR_RETURN(std::optional<std::string> act, GetString(root, "hidden_act", "hidden_act"));
  if (act.has_value() && *act != "silu") {
    return FieldError("hidden_act", absl::StrCat("\"", *act, "\" is not supported (only silu)"));
  }
  if (c->model_type == "qwen2") {
    c->qkv_bias = true;  // Qwen2Attention: q/k/v with bias, o_proj without
  } else {
    bool attention_bias = false;
    RETURN_IF_ERROR(GetBool(root, "attention_bias", "attention_bias", &attention_bias));
    c->qkv_bias = c->o_bias = attention_bias;
    int64_t pretraining_tp = 1;
    RETURN_IF_ERROR(GetInt(root, "pretraining_tp", "pretraining_tp", &pretraining_tp));
    if (pretraining_tp != 1) {
      return FieldError("pretraining_tp",
                        absl::StrCat("must be 1 (the sliced reference path), got ", pretraining_tp));
    }
  }
  bool mlp_bias = false;
  RETURN_IF_ERROR(GetBool(root, "mlp_bias", "mlp_bias", &mlp_bias));
  if (mlp_bias) return FieldError("mlp_bias", "true is not supported");
  RETURN_IF_ERROR(CheckNoSlidingWindow(root));
  RETURN_IF_ERROR(ParseDenseRope(root, c));
  if (root.contains("quantization_config") && !root["quantization_config"].is_null()) {
    return FieldError("quantization_config",
                      absl::StrCat("is not supported for ", c->model_type, " (bf16/f16/f32 only)"));
  }
  return ValidateDense(*c);
}

}  // namespace dsinfer
