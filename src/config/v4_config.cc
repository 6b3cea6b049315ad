// config.json of DeepSeek-V4 (V4-Flash, V4-Pro, V4.1). Defaults are transformers'
// DeepseekV4Config (V4-Flash sizes); both its field names and the legacy names of DeepSeek's own
// config.json are read (compress_ratios -> layer_types, num_hash_layers -> mlp_layer_types,
// qk_rope_head_dim -> partial_rotary_factor, a flat rope_scaling -> the compressed branches' YaRN).
#include "src/config/v4_config.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "src/config/config_json.h"
#include "src/core/status_macros.h"

namespace dsinfer {
namespace {

using Json = nlohmann::json;
using namespace config_json;  // NOLINT: the shared field readers

void ApplyV4Defaults(ModelConfig* c) {
  c->vocab_size = 129280;
  c->hidden_size = 4096;
  c->moe_intermediate_size = 2048;
  c->intermediate_size = 2048;  // the shared expert's width (HF maps it to moe_intermediate_size)
  c->num_hidden_layers = 43;
  c->num_attention_heads = 64;
  c->num_key_value_heads = 1;
  c->head_dim = 512;
  c->q_lora_rank = 1024;
  c->qk_rope_head_dim = 64;
  c->num_experts_per_tok = 6;
  c->n_routed_experts = 256;
  c->n_shared_experts = 1;
  c->norm_topk_prob = true;
  c->routed_scaling_factor = 1.5;
  c->max_position_embeddings = 1048576;
  c->rope_theta = 10000.0;
  c->rms_norm_eps = 1e-6;
  c->bos_token_id = 0;
  c->eos_token_ids = {1};
  c->tie_word_embeddings = false;
  c->num_nextn_predict_layers = 1;
  c->first_k_dense_replace = 0;
  c->moe_layer_freq = 1;
  // MLA's fields stay 0: V4 has a single shared K=V head of head_dim, no kv LoRA.
  c->kv_lora_rank = c->qk_nope_head_dim = c->v_head_dim = 0;
}

// A list field of strings, one per layer.
absl::StatusOr<std::vector<std::string>> GetLayerList(const Json& root, const char* key,
                                                      int64_t layers) {
  std::vector<std::string> out;
  const Json& v = root[key];
  if (!v.is_array()) {
    return FieldError(key, absl::StrCat("must be a list, got ", Describe(v)));
  }
  if (static_cast<int64_t>(v.size()) < layers) {
    return FieldError(key, absl::StrCat("has ", v.size(), " entries for num_hidden_layers (",
                                        layers, ")"));
  }
  for (int64_t i = 0; i < layers; ++i) {
    if (!v[i].is_string() && !v[i].is_number_integer()) {
      return FieldError(absl::StrCat(key, "[", i, "]"),
                        absl::StrCat("must be a string, got ", Describe(v[i])));
    }
    out.push_back(v[i].is_string() ? v[i].get<std::string>() : std::to_string(v[i].get<int64_t>()));
  }
  return out;
}

absl::Status ParseLayerSchedule(const Json& root, ModelConfig* c) {
  V4Config& v = c->v4;
  const int64_t n = c->num_hidden_layers;
  // compress_rates (or the legacy compress_rate_csa / compress_rate_hca).
  if (auto it = root.find("compress_rates"); it != root.end() && !it->is_null()) {
    if (!it->is_object()) {
      return FieldError("compress_rates", absl::StrCat("must be an object, got ", Describe(*it)));
    }
    for (const auto& [k, val] : it->items()) {
      if (k != "compressed_sparse_attention" && k != "heavily_compressed_attention") {
        return FieldError(absl::StrCat("compress_rates.", k),
                          "is not a V4 layer type (compressed_sparse_attention, "
                          "heavily_compressed_attention)");
      }
    }
    RETURN_IF_ERROR(GetInt(*it, "compressed_sparse_attention",
                           "compress_rates.compressed_sparse_attention", &v.csa_rate));
    RETURN_IF_ERROR(GetInt(*it, "heavily_compressed_attention",
                           "compress_rates.heavily_compressed_attention", &v.hca_rate));
  }
  RETURN_IF_ERROR(GetInt(root, "compress_rate_csa", "compress_rate_csa", &v.csa_rate));
  RETURN_IF_ERROR(GetInt(root, "compress_rate_hca", "compress_rate_hca", &v.hca_rate));
  RETURN_IF_ERROR(CheckRange("compress_rates.compressed_sparse_attention", v.csa_rate, 1, 1 << 16));
  RETURN_IF_ERROR(
      CheckRange("compress_rates.heavily_compressed_attention", v.hca_rate, 1, 1 << 16));

  v.attn.clear();
  if (root.contains("layer_types") && !root["layer_types"].is_null()) {
    ASSIGN_OR_RETURN(auto types, GetLayerList(root, "layer_types", n));
    for (int64_t i = 0; i < n; ++i) {
      if (types[i] == "sliding_attention") {
        v.attn.push_back(V4Attn::kSliding);
      } else if (types[i] == "compressed_sparse_attention") {
        v.attn.push_back(V4Attn::kCsa);
      } else if (types[i] == "heavily_compressed_attention") {
        v.attn.push_back(V4Attn::kHca);
      } else {
        return FieldError(absl::StrCat("layer_types[", i, "]"),
                          absl::StrCat("\"", types[i], "\" is not one of sliding_attention, "
                                       "compressed_sparse_attention, heavily_compressed_attention"));
      }
    }
  } else if (root.contains("compress_ratios") && !root["compress_ratios"].is_null()) {
    const Json& r = root["compress_ratios"];
    if (!r.is_array() || static_cast<int64_t>(r.size()) < n) {
      return FieldError("compress_ratios",
                        absl::StrCat("must be a list of num_hidden_layers (", n, ") ints"));
    }
    for (int64_t i = 0; i < n; ++i) {
      const std::string f = absl::StrCat("compress_ratios[", i, "]");
      Json one = Json::object({{"v", r[i]}});
      int64_t ratio = -1;
      RETURN_IF_ERROR(GetInt(one, "v", f, &ratio));
      if (ratio == 0) {
        v.attn.push_back(V4Attn::kSliding);
      } else if (ratio == v.csa_rate) {
        v.attn.push_back(V4Attn::kCsa);
      } else if (ratio == v.hca_rate) {
        v.attn.push_back(V4Attn::kHca);
      } else {
        return FieldError(f, absl::StrCat("(", ratio, ") is not 0, the CSA rate (", v.csa_rate,
                                          ") or the HCA rate (", v.hca_rate, ")"));
      }
    }
  } else {
    // HF's default: two HCA layers, then CSA / HCA interleaved (V4-Pro).
    for (int64_t i = 0; i < n; ++i)
      v.attn.push_back(i < 2 ? V4Attn::kHca : (i - 2) % 2 ? V4Attn::kCsa : V4Attn::kHca);
  }

  v.hash_moe.assign(n, false);
  if (root.contains("mlp_layer_types") && !root["mlp_layer_types"].is_null()) {
    ASSIGN_OR_RETURN(auto types, GetLayerList(root, "mlp_layer_types", n));
    for (int64_t i = 0; i < n; ++i) {
      if (types[i] != "hash_moe" && types[i] != "moe") {
        return FieldError(absl::StrCat("mlp_layer_types[", i, "]"),
                          absl::StrCat("\"", types[i], "\" is not one of hash_moe, moe"));
      }
      v.hash_moe[i] = types[i] == "hash_moe";
    }
  } else {
    int64_t hash_layers = 3;
    RETURN_IF_ERROR(GetInt(root, "num_hash_layers", "num_hash_layers", &hash_layers));
    RETURN_IF_ERROR(CheckRange("num_hash_layers", hash_layers, 0, 1 << 16));
    for (int64_t i = 0; i < n && i < hash_layers; ++i) v.hash_moe[i] = true;
  }
  return absl::OkStatus();
}

// V4 keeps two rotaries: "main" (sliding-window layers: plain RoPE with rope_theta) and
// "compress" (CSA / HCA layers and their compressors: compress_rope_theta, YaRN when given).
// Transformers nests them in rope_parameters {main, compress}; DeepSeek's config.json has a flat
// rope_scaling for the compressed one.
absl::Status ParseV4Rope(const Json& root, ModelConfig* c) {
  RETURN_IF_ERROR(GetDouble(root, "rope_theta", "rope_theta", &c->rope_theta));
  RETURN_IF_ERROR(GetDouble(root, "compress_rope_theta", "compress_rope_theta",
                            &c->v4.compress_rope_theta));
  const Json* compress = nullptr;
  std::string field;
  if (auto it = root.find("rope_parameters"); it != root.end() && it->is_object() &&
                                             it->contains("main")) {
    const Json& main = (*it)["main"];
    if (!main.is_object()) return FieldError("rope_parameters.main", "must be an object");
    ASSIGN_OR_RETURN(auto type, GetString(main, "rope_type", "rope_parameters.main.rope_type"));
    if (type.has_value() && *type != "default") {
      return FieldError("rope_parameters.main.rope_type",
                        absl::StrCat("\"", *type, "\" is not supported (only default)"));
    }
    RETURN_IF_ERROR(GetDouble(main, "rope_theta", "rope_parameters.main.rope_theta",
                              &c->rope_theta));
    if (!it->contains("compress") || !(*it)["compress"].is_object()) {
      return FieldError("rope_parameters.compress", "is missing");
    }
    compress = &(*it)["compress"];
    field = "rope_parameters.compress";
    RETURN_IF_ERROR(GetDouble(*compress, "rope_theta", field + ".rope_theta",
                              &c->v4.compress_rope_theta));
  } else {
    for (const char* key : {"rope_scaling", "rope_parameters"}) {
      if (auto f = root.find(key); f != root.end() && !f->is_null()) {
        if (!f->is_object()) return FieldError(key, "must be an object");
        compress = &*f;
        field = key;
        break;
      }
    }
  }
  if (compress == nullptr) return absl::OkStatus();
  auto name = [&](const char* k) { return absl::StrCat(field, ".", k); };
  const char* type_key = compress->contains("rope_type") ? "rope_type" : "type";
  ASSIGN_OR_RETURN(auto type, GetString(*compress, type_key, name(type_key)));
  if (!type.has_value() || *type == "default") return absl::OkStatus();
  if (*type != "yarn") {
    return FieldError(name(type_key),
                      absl::StrCat("\"", *type, "\" is not supported (only yarn or default)"));
  }
  RopeScaling& y = c->rope_scaling;
  y.yarn = true;
  y.original_max_position_embeddings = 4096;
  if (!compress->contains("factor")) return FieldError(name("factor"), "is missing");
  RETURN_IF_ERROR(GetDouble(*compress, "factor", name("factor"), &y.factor));
  RETURN_IF_ERROR(GetInt(*compress, "original_max_position_embeddings",
                         name("original_max_position_embeddings"),
                         &y.original_max_position_embeddings));
  RETURN_IF_ERROR(GetDouble(*compress, "beta_fast", name("beta_fast"), &y.beta_fast));
  RETURN_IF_ERROR(GetDouble(*compress, "beta_slow", name("beta_slow"), &y.beta_slow));
  if (!(y.factor >= 1.0)) {
    return FieldError(name("factor"), absl::StrCat("must be >= 1, got ", y.factor));
  }
  RETURN_IF_ERROR(CheckRange(name("original_max_position_embeddings"),
                             y.original_max_position_embeddings, 1, kMaxDim * 64));
  RETURN_IF_ERROR(CheckPositive(name("beta_fast"), y.beta_fast));
  RETURN_IF_ERROR(CheckPositive(name("beta_slow"), y.beta_slow));
  // DeepSeek's V4 reference does not scale cos / sin by YaRN's mscale (transformers pins
  // attention_factor to 1.0 for the same reason); a config asking otherwise is refused.
  double attention_factor = 1.0;
  RETURN_IF_ERROR(GetDouble(*compress, "attention_factor", name("attention_factor"),
                            &attention_factor));
  if (attention_factor != 1.0) {
    return FieldError(name("attention_factor"),
                      absl::StrCat("must be 1.0 (V4 does not scale its rotary), got ",
                                   attention_factor));
  }
  for (const char* k : {"mscale", "mscale_all_dim"}) {
    double m = 0;
    RETURN_IF_ERROR(GetDouble(*compress, k, name(k), &m));
    if (compress->contains(k) && m != 0 && m != 1) {
      return FieldError(name(k), "is not supported for deepseek_v4 (no YaRN softmax scaling)");
    }
  }
  return absl::OkStatus();
}

absl::Status ParseV4Quantization(const Json& root, ModelConfig* c) {
  auto it = root.find("quantization_config");
  std::optional<std::string> expert_dtype;
  ASSIGN_OR_RETURN(expert_dtype, GetString(root, "expert_dtype", "expert_dtype"));
  if (it == root.end() || it->is_null()) {
    if (expert_dtype.has_value() && *expert_dtype != "bf16" && *expert_dtype != "bfloat16") {
      return FieldError("expert_dtype", absl::StrCat("\"", *expert_dtype,
                                                     "\" without a quantization_config"));
    }
    return absl::OkStatus();
  }
  const Json& q = *it;
  if (!q.is_object()) return FieldError("quantization_config", "must be an object or null");
  ASSIGN_OR_RETURN(auto method, GetString(q, "quant_method", "quantization_config.quant_method"));
  if (!method.has_value() || *method != "fp8") {
    return FieldError("quantization_config.quant_method", "must be fp8");
  }
  ASSIGN_OR_RETURN(auto fmt, GetString(q, "fmt", "quantization_config.fmt"));
  if (fmt.has_value() && *fmt != "e4m3") {
    return FieldError("quantization_config.fmt", absl::StrCat("\"", *fmt, "\" is not e4m3"));
  }
  ASSIGN_OR_RETURN(auto scale_fmt, GetString(q, "scale_fmt", "quantization_config.scale_fmt"));
  if (scale_fmt.has_value() && *scale_fmt != "ue8m0") {
    return FieldError("quantization_config.scale_fmt",
                      absl::StrCat("\"", *scale_fmt, "\" is not supported (only ue8m0)"));
  }
  c->fp8.scale_ue8m0 = scale_fmt.has_value();
  if (auto q_expert = q.find("expert_dtype"); q_expert != q.end() && !q_expert->is_null()) {
    ASSIGN_OR_RETURN(expert_dtype, GetString(q, "expert_dtype", "quantization_config.expert_dtype"));
  }
  if (expert_dtype.has_value() && *expert_dtype != "fp4" && *expert_dtype != "fp8" &&
      *expert_dtype != "bf16" && *expert_dtype != "bfloat16") {
    return FieldError("quantization_config.expert_dtype",
                      absl::StrCat("\"", *expert_dtype, "\" is not supported (fp4, fp8 or bf16)"));
  }
  // FP4 routed experts (E2M1 codes + E8M0 scales per 32 inputs), checked by their value shape
  // at load as for V3.
  c->fp8.experts_fp4 = expert_dtype.has_value() && *expert_dtype == "fp4";
  c->fp8.enabled = true;
  return GetWeightBlockSize(q, &c->fp8.block_n, &c->fp8.block_k);
}

}  // namespace

absl::Status ParseV4Fields(const Json& root, ModelConfig* c) {
  ApplyV4Defaults(c);
  V4Config& v = c->v4;
  v = V4Config{};
  v.enabled = true;
  struct IntField {
    const char* key;
    int64_t* out;
  };
  const IntField ints[] = {
      {"vocab_size", &c->vocab_size},
      {"hidden_size", &c->hidden_size},
      {"moe_intermediate_size", &c->moe_intermediate_size},
      {"num_hidden_layers", &c->num_hidden_layers},
      {"num_attention_heads", &c->num_attention_heads},
      {"num_key_value_heads", &c->num_key_value_heads},
      {"head_dim", &c->head_dim},
      {"q_lora_rank", &c->q_lora_rank},
      {"num_experts_per_tok", &c->num_experts_per_tok},
      {"n_routed_experts", &c->n_routed_experts},
      {"n_shared_experts", &c->n_shared_experts},
      {"max_position_embeddings", &c->max_position_embeddings},
      {"num_nextn_predict_layers", &c->num_nextn_predict_layers},
      {"hc_mult", &v.hc_mult},
      {"hc_sinkhorn_iters", &v.hc_sinkhorn_iters},
      {"sliding_window", &v.sliding_window},
      {"o_groups", &v.o_groups},
      {"o_lora_rank", &v.o_lora_rank},
      {"index_n_heads", &v.index_n_heads},
      {"index_head_dim", &v.index_head_dim},
      {"index_topk", &v.index_topk},
  };
  for (const IntField& f : ints) RETURN_IF_ERROR(GetInt(root, f.key, f.key, f.out));
  RETURN_IF_ERROR(GetDouble(root, "routed_scaling_factor", "routed_scaling_factor",
                            &c->routed_scaling_factor));
  RETURN_IF_ERROR(GetDouble(root, "rms_norm_eps", "rms_norm_eps", &c->rms_norm_eps));
  RETURN_IF_ERROR(GetDouble(root, "hc_eps", "hc_eps", &v.hc_eps));
  if (root.contains("swiglu_limit") && root["swiglu_limit"].is_null()) {
    v.swiglu_limit = 0;
  } else {
    RETURN_IF_ERROR(GetDouble(root, "swiglu_limit", "swiglu_limit", &v.swiglu_limit));
  }
  RETURN_IF_ERROR(GetBool(root, "norm_topk_prob", "norm_topk_prob", &c->norm_topk_prob));
  RETURN_IF_ERROR(
      GetBool(root, "tie_word_embeddings", "tie_word_embeddings", &c->tie_word_embeddings));
  c->intermediate_size = c->moe_intermediate_size;

  RETURN_IF_ERROR(CheckRange("hidden_size", c->hidden_size, 1, kMaxDim));
  RETURN_IF_ERROR(CheckRange("num_hidden_layers", c->num_hidden_layers, 1, 1 << 16));
  RETURN_IF_ERROR(CheckRange("num_attention_heads", c->num_attention_heads, 1, 1 << 16));
  RETURN_IF_ERROR(CheckRange("head_dim", c->head_dim, 2, 1 << 16));
  RETURN_IF_ERROR(CheckRange("q_lora_rank", c->q_lora_rank, 1, kMaxDim));
  RETURN_IF_ERROR(CheckRange("vocab_size", c->vocab_size, 1, kMaxDim));
  RETURN_IF_ERROR(
      CheckRange("max_position_embeddings", c->max_position_embeddings, 1, kMaxDim * 64));
  RETURN_IF_ERROR(CheckRange("num_nextn_predict_layers", c->num_nextn_predict_layers, 0, 1 << 16));
  RETURN_IF_ERROR(CheckPositive("rms_norm_eps", c->rms_norm_eps));
  if (c->num_key_value_heads != 1) {
    return FieldError("num_key_value_heads",
                      absl::StrCat("must be 1 (V4 shares one K=V head), got ",
                                   c->num_key_value_heads));
  }

  // Partial rotary: qk_rope_head_dim (DeepSeek) or partial_rotary_factor * head_dim (HF).
  if (root.contains("qk_rope_head_dim") && !root["qk_rope_head_dim"].is_null()) {
    RETURN_IF_ERROR(GetInt(root, "qk_rope_head_dim", "qk_rope_head_dim", &c->qk_rope_head_dim));
  } else if (root.contains("partial_rotary_factor") && !root["partial_rotary_factor"].is_null()) {
    double f = 0;
    RETURN_IF_ERROR(GetDouble(root, "partial_rotary_factor", "partial_rotary_factor", &f));
    if (!(f > 0 && f <= 1)) {
      return FieldError("partial_rotary_factor", absl::StrCat("must be in (0, 1], got ", f));
    }
    c->qk_rope_head_dim = static_cast<int64_t>(c->head_dim * f);
  }
  RETURN_IF_ERROR(CheckRange("qk_rope_head_dim", c->qk_rope_head_dim, 2, c->head_dim));
  if (c->qk_rope_head_dim % 2 != 0) {
    return FieldError("qk_rope_head_dim",
                      absl::StrCat("must be even (rotary pairs), got ", c->qk_rope_head_dim));
  }

  // mHC, sliding window, grouped output projection, indexer.
  RETURN_IF_ERROR(CheckRange("hc_mult", v.hc_mult, 1, 64));
  RETURN_IF_ERROR(CheckRange("hc_sinkhorn_iters", v.hc_sinkhorn_iters, 1, 1 << 10));
  RETURN_IF_ERROR(CheckPositive("hc_eps", v.hc_eps));
  RETURN_IF_ERROR(CheckRange("sliding_window", v.sliding_window, 1, kMaxDim));
  RETURN_IF_ERROR(CheckRange("o_groups", v.o_groups, 1, c->num_attention_heads));
  if (c->num_attention_heads % v.o_groups != 0) {
    return FieldError("o_groups", absl::StrCat("(", v.o_groups,
                                               ") must divide num_attention_heads (",
                                               c->num_attention_heads, ")"));
  }
  RETURN_IF_ERROR(CheckRange("o_lora_rank", v.o_lora_rank, 1, kMaxDim));
  RETURN_IF_ERROR(CheckRange("index_n_heads", v.index_n_heads, 1, 1 << 12));
  RETURN_IF_ERROR(CheckRange("index_head_dim", v.index_head_dim, 1, 1 << 16));
  RETURN_IF_ERROR(CheckRange("index_topk", v.index_topk, 1, kMaxDim));
  if (v.index_head_dim < c->qk_rope_head_dim) {
    return FieldError("index_head_dim", absl::StrCat("(", v.index_head_dim,
                                                     ") is narrower than qk_rope_head_dim (",
                                                     c->qk_rope_head_dim, ")"));
  }
  if (v.swiglu_limit < 0) {
    return FieldError("swiglu_limit", absl::StrCat("must not be negative, got ", v.swiglu_limit));
  }

  // MoE: every layer routed (hash or top-k), one shared expert.
  RETURN_IF_ERROR(CheckRange("n_routed_experts", c->n_routed_experts, 1, 1 << 20));
  RETURN_IF_ERROR(CheckRange("moe_intermediate_size", c->moe_intermediate_size, 1, kMaxDim));
  RETURN_IF_ERROR(CheckRange("num_experts_per_tok", c->num_experts_per_tok, 1,
                             c->n_routed_experts));
  if (c->n_shared_experts != 1) {
    return FieldError("n_shared_experts",
                      absl::StrCat("must be 1 (one shared expert of moe_intermediate_size), got ",
                                   c->n_shared_experts));
  }
  if (!c->norm_topk_prob) {
    return FieldError("norm_topk_prob", "false is not supported (V4 normalises the top-k weights)");
  }
  if (!(c->routed_scaling_factor > 0)) {
    return FieldError("routed_scaling_factor", "must be positive");
  }
  for (const char* key : {"n_group", "topk_group"}) {
    int64_t g = 1;
    RETURN_IF_ERROR(GetInt(root, key, key, &g, 1));
    if (g != 1) return FieldError(key, absl::StrCat("must be 1 (V4 routes without groups), got ", g));
  }
  ASSIGN_OR_RETURN(auto scoring, GetString(root, "scoring_func", "scoring_func"));
  if (scoring.has_value()) {
    if (*scoring == "sqrtsoftplus") {
      v.scoring = V4Scoring::kSqrtSoftplus;
    } else if (*scoring == "softmax") {
      v.scoring = V4Scoring::kSoftmax;
    } else if (*scoring == "sigmoid") {
      v.scoring = V4Scoring::kSigmoid;
    } else {
      return FieldError("scoring_func", absl::StrCat("\"", *scoring,
                                                     "\" is not one of sqrtsoftplus, softmax, "
                                                     "sigmoid"));
    }
  }
  c->scoring_func = v.scoring == V4Scoring::kSoftmax ? ScoringFunc::kSoftmax
                                                     : ScoringFunc::kSigmoid;
  ASSIGN_OR_RETURN(auto act, GetString(root, "hidden_act", "hidden_act"));
  if (act.has_value() && *act != "silu") {
    return FieldError("hidden_act", absl::StrCat("\"", *act, "\" is not supported (only silu)"));
  }
  for (const char* key : {"attention_bias", "mlp_bias"}) {
    bool b = false;
    RETURN_IF_ERROR(GetBool(root, key, key, &b));
    if (b) return FieldError(key, "true is not supported");
  }

  RETURN_IF_ERROR(ParseLayerSchedule(root, c));
  RETURN_IF_ERROR(ParseV4Rope(root, c));
  return ParseV4Quantization(root, c);
}

}  // namespace dsinfer
