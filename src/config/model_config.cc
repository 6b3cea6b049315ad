// config.json parsing: per-family HF defaults, then type checks, then consistency checks.
#include "src/config/model_config.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <optional>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "nlohmann/json.hpp"
#include "src/config/config_json.h"
#include "src/config/dense_config.h"
#include "src/config/v4_config.h"
#include "src/core/status_macros.h"

namespace dsinfer {
namespace {

using Json = nlohmann::json;
using namespace config_json;  // NOLINT: the shared field readers


// HF defaults: transformers' DeepseekV2Config / DeepseekV3Config, plus DeepSeek's own remote
// code for the keys transformers does not model (topk_method, scoring_func, moe_layer_freq).
void ApplyFamilyDefaults(ModelConfig* c) {
  if (c->model_type == "deepseek_v2") {
    c->vocab_size = 32000;
    c->hidden_size = 4096;
    c->intermediate_size = 11008;
    c->moe_intermediate_size = 1407;
    c->num_hidden_layers = 32;
    c->num_attention_heads = 32;
    c->q_lora_rank = 1536;
    c->kv_lora_rank = 512;
    c->qk_nope_head_dim = 128;
    c->qk_rope_head_dim = 64;
    c->v_head_dim = 128;
    c->n_routed_experts = 64;
    c->n_shared_experts = 2;
    c->num_experts_per_tok = 0;  // HF: None; must be given when experts exist
    c->n_group = 1;
    c->topk_group = 1;
    c->topk_method = TopkMethod::kGreedy;
    c->scoring_func = ScoringFunc::kSoftmax;
    c->norm_topk_prob = false;
    c->routed_scaling_factor = 1.0;
    c->first_k_dense_replace = 0;
    c->max_position_embeddings = 2048;
    c->bos_token_id = 1;
    c->eos_token_ids = {2};
  } else {  // deepseek_v3, kimi_k2
    c->vocab_size = 129280;
    c->hidden_size = 7168;
    c->intermediate_size = 18432;
    c->moe_intermediate_size = 2048;
    c->num_hidden_layers = 61;
    c->num_attention_heads = 128;
    c->q_lora_rank = 1536;
    c->kv_lora_rank = 512;
    c->qk_nope_head_dim = 128;
    c->qk_rope_head_dim = 64;
    c->v_head_dim = 128;
    c->n_routed_experts = 256;
    c->n_shared_experts = 1;
    c->num_experts_per_tok = 8;
    c->n_group = 8;
    c->topk_group = 4;
    c->topk_method = TopkMethod::kNoauxTc;
    c->scoring_func = ScoringFunc::kSigmoid;
    c->norm_topk_prob = true;
    c->routed_scaling_factor = 2.5;
    c->first_k_dense_replace = 3;
    c->max_position_embeddings = 4096;
    c->bos_token_id = 0;
    c->eos_token_ids = {1};
  }
  c->moe_layer_freq = 1;
  c->rms_norm_eps = 1e-6;
  c->rope_theta = 10000.0;
  c->tie_word_embeddings = false;
  c->num_nextn_predict_layers = 0;
}

absl::Status ParseRopeScaling(const Json& root, ModelConfig* c) {
  ASSIGN_OR_RETURN(RopeObject rope, FindRopeObject(root, &c->rope_theta));
  if (rope.obj == nullptr || rope.type == "default") return absl::OkStatus();
  const Json& rs = *rope.obj;
  const std::string& field = rope.field;
  if (rope.type != "yarn") {
    return FieldError(rope.type_field,
                      absl::StrCat("\"", rope.type, "\" is not supported (only yarn or default)"));
  }
  RopeScaling& y = c->rope_scaling;
  y.yarn = true;
  // DeepSeek's yarn implementation defaults original_max_position_embeddings to 4096.
  y.original_max_position_embeddings = 4096;
  auto name = [&](const char* k) { return absl::StrCat(field, ".", k); };
  RETURN_IF_ERROR(GetDouble(rs, "factor", name("factor"), &y.factor));
  RETURN_IF_ERROR(GetInt(rs, "original_max_position_embeddings",
                         name("original_max_position_embeddings"),
                         &y.original_max_position_embeddings));
  RETURN_IF_ERROR(GetDouble(rs, "beta_fast", name("beta_fast"), &y.beta_fast));
  RETURN_IF_ERROR(GetDouble(rs, "beta_slow", name("beta_slow"), &y.beta_slow));
  RETURN_IF_ERROR(GetDouble(rs, "mscale", name("mscale"), &y.mscale));
  RETURN_IF_ERROR(GetDouble(rs, "mscale_all_dim", name("mscale_all_dim"), &y.mscale_all_dim));
  if (!rs.contains("factor")) return FieldError(name("factor"), "is missing");
  if (!(y.factor >= 1.0)) {
    return FieldError(name("factor"), absl::StrCat("must be >= 1, got ", y.factor));
  }
  RETURN_IF_ERROR(CheckRange(name("original_max_position_embeddings"),
                             y.original_max_position_embeddings, 1, kMaxDim * 64));
  RETURN_IF_ERROR(CheckPositive(name("beta_fast"), y.beta_fast));
  RETURN_IF_ERROR(CheckPositive(name("beta_slow"), y.beta_slow));
  if (y.mscale < 0) return FieldError(name("mscale"), "must not be negative");
  if (y.mscale_all_dim < 0) return FieldError(name("mscale_all_dim"), "must not be negative");
  return absl::OkStatus();
}

// expert_dtype at top level or in quantization_config; both present must agree.
absl::Status ParseExpertDtype(const Json& root, ModelConfig* c) {
  std::optional<std::string> value;
  std::string field;
  for (bool in_quant : {false, true}) {
    const Json* obj = &root;
    if (in_quant) {
      auto q = root.find("quantization_config");
      if (q == root.end() || !q->is_object()) continue;
      obj = &*q;
    }
    const std::string name = in_quant ? "quantization_config.expert_dtype" : "expert_dtype";
    ASSIGN_OR_RETURN(std::optional<std::string> v, GetString(*obj, "expert_dtype", name));
    if (!v.has_value()) continue;
    if (*v != "fp4" && *v != "fp8" && *v != "bf16") {
      return FieldError(name, absl::StrCat("\"", *v, "\" is not supported (fp4, fp8 or bf16)"));
    }
    if (value.has_value() && *value != *v) {
      return FieldError(name, absl::StrCat("is \"", *v, "\" but ", field, " is \"", *value, "\""));
    }
    value = v;
    field = name;
  }
  c->fp8.experts_fp4 = value.has_value() && *value == "fp4";
  return absl::OkStatus();
}

absl::Status ParseQuantization(const Json& root, ModelConfig* c) {
  RETURN_IF_ERROR(ParseExpertDtype(root, c));
  auto it = root.find("quantization_config");
  if (it == root.end() || it->is_null()) return absl::OkStatus();
  const Json& q = *it;
  if (!q.is_object()) {
    return FieldError("quantization_config",
                      absl::StrCat("must be an object or null, got ", Describe(q)));
  }
  ASSIGN_OR_RETURN(std::optional<std::string> method,
                   GetString(q, "quant_method", "quantization_config.quant_method"));
  if (!method.has_value()) return FieldError("quantization_config.quant_method", "is missing");
  if (*method != "fp8") {
    return FieldError("quantization_config.quant_method",
                      absl::StrCat("\"", *method, "\" is not supported (only fp8)"));
  }
  ASSIGN_OR_RETURN(std::optional<std::string> fmt, GetString(q, "fmt", "quantization_config.fmt"));
  if (fmt.has_value() && *fmt != "e4m3") {
    return FieldError("quantization_config.fmt",
                      absl::StrCat("\"", *fmt, "\" is not supported (only e4m3)"));
  }
  ASSIGN_OR_RETURN(std::optional<std::string> act,
                   GetString(q, "activation_scheme", "quantization_config.activation_scheme"));
  if (act.has_value() && *act != "dynamic") {
    return FieldError("quantization_config.activation_scheme",
                      absl::StrCat("\"", *act, "\" is not supported (only dynamic)"));
  }
  ASSIGN_OR_RETURN(std::optional<std::string> scale_fmt,
                   GetString(q, "scale_fmt", "quantization_config.scale_fmt"));
  if (scale_fmt.has_value() && *scale_fmt != "ue8m0") {
    return FieldError("quantization_config.scale_fmt",
                      absl::StrCat("\"", *scale_fmt, "\" is not supported (only ue8m0)"));
  }
  c->fp8.scale_ue8m0 = scale_fmt.has_value();
  c->fp8.enabled = true;
  return GetWeightBlockSize(q, &c->fp8.block_n, &c->fp8.block_k);
}

// DeepSeek-V3.2's indexer fields (HF DeepseekV32Config defaults); refused on other families, and
// V3.2 variants this program does not run are named.
absl::Status ParseSparseAttention(const Json& root, ModelConfig* c) {
  SparseAttention& d = c->dsa;
  if (c->model_type != "deepseek_v32") {
    for (const char* key : {"index_topk", "index_n_heads", "index_head_dim"}) {
      if (root.contains(key) && !root[key].is_null())
        return FieldError(key, absl::StrCat("is a deepseek_v32 field, but model_type is ",
                                            c->model_type));
    }
    return absl::OkStatus();
  }
  d = {.enabled = true, .index_n_heads = 64, .index_head_dim = 128, .index_topk = 2048};
  RETURN_IF_ERROR(GetInt(root, "index_n_heads", "index_n_heads", &d.index_n_heads));
  RETURN_IF_ERROR(GetInt(root, "index_head_dim", "index_head_dim", &d.index_head_dim));
  RETURN_IF_ERROR(GetInt(root, "index_topk", "index_topk", &d.index_topk));
  RETURN_IF_ERROR(CheckRange("index_n_heads", d.index_n_heads, 1, 1 << 12));
  RETURN_IF_ERROR(CheckRange("index_topk", d.index_topk, 1, kMaxDim));
  if (c->q_lora_rank <= 0) {
    return FieldError("q_lora_rank", "must be positive for deepseek_v32 (the indexer's queries "
                                     "project the q-LoRA latent)");
  }
  if (d.index_head_dim != 128) {
    return FieldError("index_head_dim",
                      absl::StrCat("must be 128 (one FP8 block per index key, as DeepSeek's "
                                   "reference quantises it), got ", d.index_head_dim));
  }
  for (const char* key : {"index_share_topk", "index_topk_freq", "indexer_types"}) {
    if (root.contains(key) && !root[key].is_null())
      return FieldError(key, "is not supported (cross-layer top-k sharing is not DeepSeek-V3.2's)");
  }
  return absl::OkStatus();
}

// eos_token_id as an int, a list or null (null and absent: none).
absl::StatusOr<std::vector<int64_t>> ParseEosIds(const Json& root) {
  std::vector<int64_t> ids;
  auto it = root.find("eos_token_id");
  if (it == root.end() || it->is_null()) return ids;
  if (it->is_array()) {
    for (size_t i = 0; i < it->size(); ++i) {
      Json one = Json::object({{"v", (*it)[i]}});
      int64_t id = 0;
      RETURN_IF_ERROR(GetInt(one, "v", absl::StrCat("eos_token_id[", i, "]"), &id));
      ids.push_back(id);
    }
    return ids;
  }
  int64_t id = 0;
  RETURN_IF_ERROR(GetInt(root, "eos_token_id", "eos_token_id", &id));
  ids.push_back(id);
  return ids;
}

// "dtype" is the newer transformers spelling of "torch_dtype".
absl::Status ParseTorchDtype(const Json& root, ModelConfig* c) {
  const char* dtype_key = root.contains("torch_dtype") ? "torch_dtype" : "dtype";
  ASSIGN_OR_RETURN(std::optional<std::string> dtype, GetString(root, dtype_key, dtype_key));
  if (dtype.has_value()) {
    if (*dtype != "bfloat16" && *dtype != "float16" && *dtype != "float32") {
      return FieldError(dtype_key,
                        absl::StrCat("\"", *dtype, "\" is not one of bfloat16, float16, float32"));
    }
    c->torch_dtype = *dtype;
  }
  return absl::OkStatus();
}

absl::Status ParseTokens(const Json& root, ModelConfig* c) {
  RETURN_IF_ERROR(GetInt(root, "bos_token_id", "bos_token_id", &c->bos_token_id, -1));
  if (!root.contains("eos_token_id")) return absl::OkStatus();  // the family default stays
  ASSIGN_OR_RETURN(c->eos_token_ids, ParseEosIds(root));
  return absl::OkStatus();
}

absl::Status Validate(const ModelConfig& c) {
  RETURN_IF_ERROR(CheckRange("hidden_size", c.hidden_size, 1, kMaxDim));
  RETURN_IF_ERROR(CheckRange("intermediate_size", c.intermediate_size, 1, kMaxDim));
  RETURN_IF_ERROR(CheckRange("num_hidden_layers", c.num_hidden_layers, 1, 1 << 16));
  RETURN_IF_ERROR(CheckRange("num_attention_heads", c.num_attention_heads, 1, 1 << 16));
  RETURN_IF_ERROR(CheckRange("q_lora_rank", c.q_lora_rank, 0, kMaxDim));
  RETURN_IF_ERROR(CheckRange("kv_lora_rank", c.kv_lora_rank, 1, kMaxDim));
  RETURN_IF_ERROR(CheckRange("qk_nope_head_dim", c.qk_nope_head_dim, 1, 1 << 16));
  RETURN_IF_ERROR(CheckRange("qk_rope_head_dim", c.qk_rope_head_dim, 2, 1 << 16));
  if (c.qk_rope_head_dim % 2 != 0) {
    return FieldError("qk_rope_head_dim",
                      absl::StrCat("must be even (rotary pairs), got ", c.qk_rope_head_dim));
  }
  RETURN_IF_ERROR(CheckRange("v_head_dim", c.v_head_dim, 1, 1 << 16));
  RETURN_IF_ERROR(CheckRange("vocab_size", c.vocab_size, 1, kMaxDim));
  RETURN_IF_ERROR(
      CheckRange("max_position_embeddings", c.max_position_embeddings, 1, kMaxDim * 64));
  RETURN_IF_ERROR(CheckPositive("rms_norm_eps", c.rms_norm_eps));
  RETURN_IF_ERROR(CheckPositive("rope_theta", c.rope_theta));
  RETURN_IF_ERROR(CheckRange("num_nextn_predict_layers", c.num_nextn_predict_layers, 0, 1 << 16));

  RETURN_IF_ERROR(CheckRange("n_routed_experts", c.n_routed_experts, 0, 1 << 20));
  RETURN_IF_ERROR(CheckRange("n_shared_experts", c.n_shared_experts, 0, 1 << 16));
  if (c.n_routed_experts > 0) {
    RETURN_IF_ERROR(CheckRange("moe_intermediate_size", c.moe_intermediate_size, 1, kMaxDim));
    RETURN_IF_ERROR(CheckRange("first_k_dense_replace", c.first_k_dense_replace, 0, 1 << 16));
    RETURN_IF_ERROR(CheckRange("moe_layer_freq", c.moe_layer_freq, 1, 1 << 16));
    if (c.num_experts_per_tok <= 0) {
      return FieldError("num_experts_per_tok",
                        absl::StrCat("must be positive when n_routed_experts is ",
                                     c.n_routed_experts, ", got ", c.num_experts_per_tok));
    }
    if (c.num_experts_per_tok > c.n_routed_experts) {
      return FieldError("num_experts_per_tok", absl::StrCat("(", c.num_experts_per_tok,
                                                            ") must not exceed n_routed_experts (",
                                                            c.n_routed_experts, ")"));
    }
    RETURN_IF_ERROR(CheckRange("n_group", c.n_group, 1, c.n_routed_experts));
    if (c.n_routed_experts % c.n_group != 0) {
      return FieldError("n_group", absl::StrCat("(", c.n_group, ") must divide n_routed_experts (",
                                                c.n_routed_experts, ")"));
    }
    RETURN_IF_ERROR(CheckRange("topk_group", c.topk_group, 1, c.n_group));
    if (c.topk_method != TopkMethod::kGreedy) {
      int64_t per_group = c.n_routed_experts / c.n_group;
      if (c.num_experts_per_tok > c.topk_group * per_group) {
        return FieldError(
            "num_experts_per_tok",
            absl::StrCat("(", c.num_experts_per_tok, ") exceeds the ", c.topk_group * per_group,
                         " experts in topk_group (", c.topk_group, ") groups of ", per_group));
      }
      // noaux_tc ranks groups by the sum of their two best experts.
      if (c.topk_method == TopkMethod::kNoauxTc && c.n_group > 1 && per_group < 2) {
        return FieldError("n_group", absl::StrCat("(", c.n_group,
                                                  ") leaves fewer than 2 experts per group, "
                                                  "which noaux_tc needs"));
      }
    }
    if (!(c.routed_scaling_factor > 0)) {
      return FieldError("routed_scaling_factor",
                        absl::StrCat("must be positive, got ", c.routed_scaling_factor));
    }
  }
  return ValidateTokens(c);
}

}  // namespace

// Shared by every family (dense_config.cc too).
absl::Status ValidateTokens(const ModelConfig& c) {
  if (c.bos_token_id < -1 || c.bos_token_id >= c.vocab_size) {
    return FieldError(
        "bos_token_id",
        absl::StrCat("(", c.bos_token_id, ") is outside the vocabulary of ", c.vocab_size));
  }
  for (int64_t id : c.eos_token_ids) {
    if (id < 0 || id >= c.vocab_size) {
      return FieldError("eos_token_id",
                        absl::StrCat("(", id, ") is outside the vocabulary of ", c.vocab_size));
    }
  }
  return absl::OkStatus();
}

const char* TopkMethodName(TopkMethod m) {
  switch (m) {
    case TopkMethod::kGreedy:
      return "greedy";
    case TopkMethod::kGroupLimitedGreedy:
      return "group_limited_greedy";
    case TopkMethod::kNoauxTc:
      return "noaux_tc";
  }
  return "?";
}

const char* ScoringFuncName(ScoringFunc f) {
  switch (f) {
    case ScoringFunc::kSoftmax:
      return "softmax";
    case ScoringFunc::kSigmoid:
      return "sigmoid";
  }
  return "?";
}

bool ModelConfig::IsMoeLayer(int64_t layer) const {
  return n_routed_experts > 0 && layer >= first_k_dense_replace && moe_layer_freq > 0 &&
         layer % moe_layer_freq == 0;
}

absl::StatusOr<ModelConfig> ParseModelConfig(std::string_view json_text) {
  Json root = Json::parse(json_text.begin(), json_text.end(), nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded()) return absl::InvalidArgumentError("config.json: not valid JSON");
  if (!root.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat("config.json: top level must be an object, got ", root.type_name()));
  }

  ModelConfig c;
  ASSIGN_OR_RETURN(std::optional<std::string> model_type,
                   GetString(root, "model_type", "model_type"));
  if (!model_type.has_value()) return FieldError("model_type", "is missing");
  c.model_type = *model_type;
  if (c.IsDense()) {
    // The dense families (R1-Distill-Qwen / -Llama): their own fields and checks.
    RETURN_IF_ERROR(ParseDenseFields(root, &c));
    RETURN_IF_ERROR(ParseTorchDtype(root, &c));
    RETURN_IF_ERROR(ParseTokens(root, &c));
    RETURN_IF_ERROR(ValidateTokens(c));
    return c;
  }
  if (c.IsV4()) {
    RETURN_IF_ERROR(ParseV4Fields(root, &c));
    RETURN_IF_ERROR(ParseTorchDtype(root, &c));
    RETURN_IF_ERROR(ParseTokens(root, &c));
    RETURN_IF_ERROR(ValidateTokens(c));
    return c;
  }
  if (*model_type != "deepseek_v2" && *model_type != "deepseek_v3" &&
      *model_type != "deepseek_v32" && *model_type != "kimi_k2") {
    return FieldError("model_type", absl::StrCat("\"", *model_type,
                                                 "\" is not one of deepseek_v2, deepseek_v3, "
                                                 "deepseek_v32, deepseek_v4, kimi_k2, qwen2, llama"));
  }
  ApplyFamilyDefaults(&c);

  struct IntField {
    const char* key;
    int64_t* out;
    std::optional<int64_t> null_value;
  };
  const IntField ints[] = {
      {"hidden_size", &c.hidden_size, std::nullopt},
      {"intermediate_size", &c.intermediate_size, std::nullopt},
      {"moe_intermediate_size", &c.moe_intermediate_size, std::nullopt},
      {"num_hidden_layers", &c.num_hidden_layers, std::nullopt},
      {"num_attention_heads", &c.num_attention_heads, std::nullopt},
      {"q_lora_rank", &c.q_lora_rank, 0},
      {"kv_lora_rank", &c.kv_lora_rank, std::nullopt},
      {"qk_nope_head_dim", &c.qk_nope_head_dim, std::nullopt},
      {"qk_rope_head_dim", &c.qk_rope_head_dim, std::nullopt},
      {"v_head_dim", &c.v_head_dim, std::nullopt},
      {"n_routed_experts", &c.n_routed_experts, 0},
      {"n_shared_experts", &c.n_shared_experts, 0},
      {"num_experts_per_tok", &c.num_experts_per_tok, 0},
      {"n_group", &c.n_group, 1},
      {"topk_group", &c.topk_group, 1},
      {"first_k_dense_replace", &c.first_k_dense_replace, std::nullopt},
      {"moe_layer_freq", &c.moe_layer_freq, std::nullopt},
      {"max_position_embeddings", &c.max_position_embeddings, std::nullopt},
      {"vocab_size", &c.vocab_size, std::nullopt},
      {"num_nextn_predict_layers", &c.num_nextn_predict_layers, 0},
  };
  for (const IntField& f : ints) RETURN_IF_ERROR(GetInt(root, f.key, f.key, f.out, f.null_value));

  RETURN_IF_ERROR(
      GetDouble(root, "routed_scaling_factor", "routed_scaling_factor", &c.routed_scaling_factor));
  RETURN_IF_ERROR(GetDouble(root, "rms_norm_eps", "rms_norm_eps", &c.rms_norm_eps));
  RETURN_IF_ERROR(GetDouble(root, "rope_theta", "rope_theta", &c.rope_theta));
  RETURN_IF_ERROR(GetBool(root, "norm_topk_prob", "norm_topk_prob", &c.norm_topk_prob));
  RETURN_IF_ERROR(
      GetBool(root, "tie_word_embeddings", "tie_word_embeddings", &c.tie_word_embeddings));

  ASSIGN_OR_RETURN(std::optional<std::string> topk, GetString(root, "topk_method", "topk_method"));
  if (topk.has_value()) {
    if (*topk == "greedy") {
      c.topk_method = TopkMethod::kGreedy;
    } else if (*topk == "group_limited_greedy") {
      c.topk_method = TopkMethod::kGroupLimitedGreedy;
    } else if (*topk == "noaux_tc") {
      c.topk_method = TopkMethod::kNoauxTc;
    } else {
      return FieldError(
          "topk_method",
          absl::StrCat("\"", *topk, "\" is not one of greedy, group_limited_greedy, noaux_tc"));
    }
  }
  ASSIGN_OR_RETURN(std::optional<std::string> scoring,
                   GetString(root, "scoring_func", "scoring_func"));
  if (scoring.has_value()) {
    if (*scoring == "softmax") {
      c.scoring_func = ScoringFunc::kSoftmax;
    } else if (*scoring == "sigmoid") {
      c.scoring_func = ScoringFunc::kSigmoid;
    } else {
      return FieldError("scoring_func",
                        absl::StrCat("\"", *scoring, "\" is not one of softmax, sigmoid"));
    }
  }
  ASSIGN_OR_RETURN(std::optional<std::string> act, GetString(root, "hidden_act", "hidden_act"));
  if (act.has_value() && *act != "silu") {
    return FieldError("hidden_act", absl::StrCat("\"", *act, "\" is not supported (only silu)"));
  }
  bool attention_bias = false;
  RETURN_IF_ERROR(GetBool(root, "attention_bias", "attention_bias", &attention_bias));
  if (attention_bias) return FieldError("attention_bias", "true is not supported");

  RETURN_IF_ERROR(ParseTorchDtype(root, &c));

  RETURN_IF_ERROR(ParseRopeScaling(root, &c));
  RETURN_IF_ERROR(ParseQuantization(root, &c));
  RETURN_IF_ERROR(ParseSparseAttention(root, &c));
  RETURN_IF_ERROR(ParseTokens(root, &c));
  RETURN_IF_ERROR(Validate(c));
  return c;
}

namespace {

// The text of a file, NotFound when it does not exist.
absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return absl::InternalError(absl::StrCat("cannot read ", path));
  return text.str();
}

// Errors of the parsers above name "config.json: <field>"; from a file, name its path instead.
absl::Status AtPath(const absl::Status& s, const std::string& path) {
  return absl::Status(s.code(),
                      absl::StrCat(path, ": ", absl::StripPrefix(s.message(), "config.json: ")));
}

}  // namespace

absl::Status AddGenerationConfigEos(std::string_view json_text, ModelConfig* config) {
  Json root = Json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded()) return absl::InvalidArgumentError("config.json: not valid JSON");
  if (!root.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat("config.json: top level must be an object, got ", root.type_name()));
  }
  ASSIGN_OR_RETURN(std::vector<int64_t> ids, ParseEosIds(root));
  for (int64_t id : ids) {
    if (id < 0 || id >= config->vocab_size) {
      return FieldError("eos_token_id", absl::StrCat("(", id, ") is outside the vocabulary of ",
                                                     config->vocab_size));
    }
    if (std::find(config->eos_token_ids.begin(), config->eos_token_ids.end(), id) ==
        config->eos_token_ids.end()) {
      config->eos_token_ids.push_back(id);
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<ModelConfig> LoadModelConfig(const std::string& model_dir) {
  const std::string path = model_dir + "/config.json";
  ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  absl::StatusOr<ModelConfig> config = ParseModelConfig(text);
  if (!config.ok()) return AtPath(config.status(), path);
  const std::string gen_path = model_dir + "/generation_config.json";
  absl::StatusOr<std::string> gen = ReadFile(gen_path);
  if (absl::IsNotFound(gen.status())) return config;
  if (!gen.ok()) return gen.status();
  if (absl::Status s = AddGenerationConfigEos(*gen, &*config); !s.ok()) return AtPath(s, gen_path);
  return config;
}

}  // namespace dsinfer
