// Tests for config.json parsing: real-shaped configs, HF defaults, and every rejection path.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "src/config/model_config.h"

namespace dsinfer {
namespace {

using ::testing::HasSubstr;
using Json = nlohmann::json;

// Shaped like deepseek-ai/DeepSeek-V2-Lite's config.json.
constexpr char kDeepSeekV2Lite[] = R"({
  "architectures": ["DeepseekV2ForCausalLM"],
  "attention_bias": false,
  "attention_dropout": 0.0,
  "auto_map": {"AutoConfig": "configuration_deepseek.DeepseekV2Config",
               "AutoModel": "modeling_deepseek.DeepseekV2Model"},
  "aux_loss_alpha": 0.001,
  "bos_token_id": 100000,
  "eos_token_id": 100001,
  "first_k_dense_replace": 1,
  "hidden_act": "silu",
  "hidden_size": 2048,
  "initializer_range": 0.02,
  "intermediate_size": 10944,
  "kv_lora_rank": 512,
  "max_position_embeddings": 163840,
  "model_type": "deepseek_v2",
  "moe_intermediate_size": 1408,
  "moe_layer_freq": 1,
  "n_group": 1,
  "n_routed_experts": 64,
  "n_shared_experts": 2,
  "norm_topk_prob": false,
  "num_attention_heads": 16,
  "num_experts_per_tok": 6,
  "num_hidden_layers": 27,
  "num_key_value_heads": 16,
  "pretraining_tp": 1,
  "q_lora_rank": null,
  "qk_nope_head_dim": 128,
  "qk_rope_head_dim": 64,
  "rms_norm_eps": 1e-06,
  "rope_scaling": {"beta_fast": 32, "beta_slow": 1, "factor": 40, "mscale": 0.707,
                   "mscale_all_dim": 0.707, "original_max_position_embeddings": 4096,
                   "type": "yarn"},
  "rope_theta": 10000,
  "routed_scaling_factor": 1.0,
  "scoring_func": "softmax",
  "seq_aux": true,
  "tie_word_embeddings": false,
  "topk_group": 1,
  "topk_method": "greedy",
  "torch_dtype": "bfloat16",
  "transformers_version": "4.33.1",
  "use_cache": true,
  "v_head_dim": 128,
  "vocab_size": 102400
})";

// Shaped like deepseek-ai/DeepSeek-V3's config.json.
constexpr char kDeepSeekV3[] = R"({
  "architectures": ["DeepseekV3ForCausalLM"],
  "attention_bias": false,
  "attention_dropout": 0.0,
  "auto_map": {"AutoConfig": "configuration_deepseek.DeepseekV3Config"},
  "aux_loss_alpha": 0.001,
  "bos_token_id": 0,
  "eos_token_id": 1,
  "ep_size": 1,
  "first_k_dense_replace": 3,
  "hidden_act": "silu",
  "hidden_size": 7168,
  "initializer_range": 0.02,
  "intermediate_size": 18432,
  "kv_lora_rank": 512,
  "max_position_embeddings": 163840,
  "model_type": "deepseek_v3",
  "moe_intermediate_size": 2048,
  "moe_layer_freq": 1,
  "n_group": 8,
  "n_routed_experts": 256,
  "n_shared_experts": 1,
  "norm_topk_prob": true,
  "num_attention_heads": 128,
  "num_experts_per_tok": 8,
  "num_hidden_layers": 61,
  "num_key_value_heads": 128,
  "num_nextn_predict_layers": 1,
  "pretraining_tp": 1,
  "q_lora_rank": 1536,
  "qk_nope_head_dim": 128,
  "qk_rope_head_dim": 64,
  "quantization_config": {"activation_scheme": "dynamic", "fmt": "e4m3", "quant_method": "fp8",
                          "weight_block_size": [128, 128]},
  "rms_norm_eps": 1e-06,
  "rope_scaling": {"beta_fast": 32, "beta_slow": 1, "factor": 40, "mscale": 1.0,
                   "mscale_all_dim": 1.0, "original_max_position_embeddings": 4096,
                   "type": "yarn"},
  "rope_theta": 10000,
  "routed_scaling_factor": 2.5,
  "scoring_func": "sigmoid",
  "seq_aux": true,
  "tie_word_embeddings": false,
  "topk_group": 4,
  "topk_method": "noaux_tc",
  "torch_dtype": "bfloat16",
  "transformers_version": "4.46.3",
  "use_cache": true,
  "v_head_dim": 128,
  "vocab_size": 129280
})";

// Shaped like moonshotai/Kimi-K2-Instruct's config.json (DeepSeek-V3 architecture).
constexpr char kKimiK2[] = R"({
  "architectures": ["DeepseekV3ForCausalLM"],
  "attention_bias": false,
  "attention_dropout": 0.0,
  "aux_loss_alpha": 0.001,
  "bos_token_id": 163584,
  "eos_token_id": 163585,
  "first_k_dense_replace": 1,
  "hidden_act": "silu",
  "hidden_size": 7168,
  "initializer_range": 0.02,
  "intermediate_size": 18432,
  "kv_lora_rank": 512,
  "max_position_embeddings": 131072,
  "model_type": "kimi_k2",
  "moe_intermediate_size": 2048,
  "moe_layer_freq": 1,
  "n_group": 1,
  "n_routed_experts": 384,
  "n_shared_experts": 1,
  "norm_topk_prob": true,
  "num_attention_heads": 64,
  "num_experts_per_tok": 8,
  "num_hidden_layers": 61,
  "num_key_value_heads": 64,
  "num_nextn_predict_layers": 0,
  "pretraining_tp": 1,
  "q_lora_rank": 1536,
  "qk_nope_head_dim": 128,
  "qk_rope_head_dim": 64,
  "quantization_config": {"activation_scheme": "dynamic", "fmt": "e4m3", "quant_method": "fp8",
                          "weight_block_size": [128, 128]},
  "rms_norm_eps": 1e-06,
  "rope_scaling": {"beta_fast": 1.0, "beta_slow": 1.0, "factor": 32.0, "mscale": 1.0,
                   "mscale_all_dim": 1.0, "original_max_position_embeddings": 4096,
                   "type": "yarn"},
  "rope_theta": 50000.0,
  "routed_scaling_factor": 2.827,
  "scoring_func": "sigmoid",
  "seq_aux": true,
  "tie_word_embeddings": false,
  "topk_group": 1,
  "topk_method": "noaux_tc",
  "torch_dtype": "bfloat16",
  "transformers_version": "4.48.3",
  "use_cache": true,
  "v_head_dim": 128,
  "vocab_size": 163840
})";

ModelConfig MustParse(const std::string& text) {
  absl::StatusOr<ModelConfig> c = ParseModelConfig(text);
  EXPECT_TRUE(c.ok()) << c.status();
  return c.ok() ? *c : ModelConfig{};
}

TEST(ModelConfigTest, DeepSeekV2Lite) {
  ModelConfig c = MustParse(kDeepSeekV2Lite);
  EXPECT_EQ(c.model_type, "deepseek_v2");
  EXPECT_EQ(c.hidden_size, 2048);
  EXPECT_EQ(c.intermediate_size, 10944);
  EXPECT_EQ(c.moe_intermediate_size, 1408);
  EXPECT_EQ(c.num_hidden_layers, 27);
  EXPECT_EQ(c.num_attention_heads, 16);
  EXPECT_EQ(c.q_lora_rank, 0);  // null: plain q_proj
  EXPECT_EQ(c.kv_lora_rank, 512);
  EXPECT_EQ(c.qk_head_dim(), 192);
  EXPECT_EQ(c.v_head_dim, 128);
  EXPECT_EQ(c.n_routed_experts, 64);
  EXPECT_EQ(c.n_shared_experts, 2);
  EXPECT_EQ(c.num_experts_per_tok, 6);
  EXPECT_EQ(c.n_group, 1);
  EXPECT_EQ(c.topk_group, 1);
  EXPECT_EQ(c.topk_method, TopkMethod::kGreedy);
  EXPECT_EQ(c.scoring_func, ScoringFunc::kSoftmax);
  EXPECT_FALSE(c.norm_topk_prob);
  EXPECT_DOUBLE_EQ(c.routed_scaling_factor, 1.0);
  EXPECT_TRUE(c.rope_scaling.yarn);
  EXPECT_DOUBLE_EQ(c.rope_scaling.factor, 40);
  EXPECT_DOUBLE_EQ(c.rope_scaling.mscale, 0.707);
  EXPECT_DOUBLE_EQ(c.rope_scaling.mscale_all_dim, 0.707);
  EXPECT_EQ(c.rope_scaling.original_max_position_embeddings, 4096);
  EXPECT_EQ(c.max_position_embeddings, 163840);
  EXPECT_EQ(c.vocab_size, 102400);
  EXPECT_EQ(c.bos_token_id, 100000);
  EXPECT_THAT(c.eos_token_ids, ::testing::ElementsAre(100001));
  EXPECT_FALSE(c.fp8.enabled);
  EXPECT_EQ(c.num_nextn_predict_layers, 0);
  EXPECT_EQ(c.torch_dtype, "bfloat16");
  EXPECT_FALSE(c.IsMoeLayer(0));
  EXPECT_TRUE(c.IsMoeLayer(1));
  EXPECT_TRUE(c.IsMoeLayer(26));
}

TEST(ModelConfigTest, DeepSeekV3) {
  ModelConfig c = MustParse(kDeepSeekV3);
  EXPECT_EQ(c.model_type, "deepseek_v3");
  EXPECT_EQ(c.hidden_size, 7168);
  EXPECT_EQ(c.q_lora_rank, 1536);
  EXPECT_EQ(c.n_routed_experts, 256);
  EXPECT_EQ(c.n_group, 8);
  EXPECT_EQ(c.topk_group, 4);
  EXPECT_EQ(c.topk_method, TopkMethod::kNoauxTc);
  EXPECT_EQ(c.scoring_func, ScoringFunc::kSigmoid);
  EXPECT_TRUE(c.norm_topk_prob);
  EXPECT_DOUBLE_EQ(c.routed_scaling_factor, 2.5);
  EXPECT_EQ(c.first_k_dense_replace, 3);
  EXPECT_TRUE(c.fp8.enabled);
  EXPECT_EQ(c.fp8.block_n, 128);
  EXPECT_EQ(c.fp8.block_k, 128);
  EXPECT_EQ(c.num_nextn_predict_layers, 1);
  EXPECT_DOUBLE_EQ(c.rms_norm_eps, 1e-6);
  EXPECT_DOUBLE_EQ(c.rope_theta, 10000);
  EXPECT_DOUBLE_EQ(c.rope_scaling.mscale_all_dim, 1.0);
  EXPECT_DOUBLE_EQ(c.rope_scaling.beta_fast, 32);
  EXPECT_DOUBLE_EQ(c.rope_scaling.beta_slow, 1);
  EXPECT_EQ(c.bos_token_id, 0);
  EXPECT_THAT(c.eos_token_ids, ::testing::ElementsAre(1));
  EXPECT_FALSE(c.tie_word_embeddings);
  for (int64_t layer = 0; layer < 3; ++layer) EXPECT_FALSE(c.IsMoeLayer(layer)) << layer;
  for (int64_t layer = 3; layer < 61; ++layer) EXPECT_TRUE(c.IsMoeLayer(layer)) << layer;
}

TEST(ModelConfigTest, KimiK2) {
  ModelConfig c = MustParse(kKimiK2);
  EXPECT_EQ(c.model_type, "kimi_k2");
  EXPECT_EQ(c.num_attention_heads, 64);
  EXPECT_EQ(c.n_routed_experts, 384);
  EXPECT_EQ(c.n_group, 1);
  EXPECT_EQ(c.topk_group, 1);
  EXPECT_EQ(c.topk_method, TopkMethod::kNoauxTc);
  EXPECT_DOUBLE_EQ(c.routed_scaling_factor, 2.827);
  EXPECT_DOUBLE_EQ(c.rope_theta, 50000);
  EXPECT_DOUBLE_EQ(c.rope_scaling.factor, 32);
  EXPECT_DOUBLE_EQ(c.rope_scaling.beta_fast, 1);
  EXPECT_EQ(c.vocab_size, 163840);
  EXPECT_EQ(c.bos_token_id, 163584);
  EXPECT_THAT(c.eos_token_ids, ::testing::ElementsAre(163585));
  EXPECT_EQ(c.num_nextn_predict_layers, 0);
  EXPECT_FALSE(c.IsMoeLayer(0));
  EXPECT_TRUE(c.IsMoeLayer(1));
}

TEST(ModelConfigTest, V3DefaultsFollowHf) {
  ModelConfig c = MustParse(R"({"model_type": "deepseek_v3"})");
  EXPECT_EQ(c.vocab_size, 129280);
  EXPECT_EQ(c.hidden_size, 7168);
  EXPECT_EQ(c.intermediate_size, 18432);
  EXPECT_EQ(c.moe_intermediate_size, 2048);
  EXPECT_EQ(c.num_hidden_layers, 61);
  EXPECT_EQ(c.num_attention_heads, 128);
  EXPECT_EQ(c.q_lora_rank, 1536);
  EXPECT_EQ(c.kv_lora_rank, 512);
  EXPECT_EQ(c.qk_nope_head_dim, 128);
  EXPECT_EQ(c.qk_rope_head_dim, 64);
  EXPECT_EQ(c.v_head_dim, 128);
  EXPECT_EQ(c.n_routed_experts, 256);
  EXPECT_EQ(c.n_shared_experts, 1);
  EXPECT_EQ(c.num_experts_per_tok, 8);
  EXPECT_EQ(c.n_group, 8);
  EXPECT_EQ(c.topk_group, 4);
  EXPECT_EQ(c.first_k_dense_replace, 3);
  EXPECT_EQ(c.moe_layer_freq, 1);
  EXPECT_TRUE(c.norm_topk_prob);
  EXPECT_EQ(c.topk_method, TopkMethod::kNoauxTc);
  EXPECT_EQ(c.scoring_func, ScoringFunc::kSigmoid);
  EXPECT_DOUBLE_EQ(c.routed_scaling_factor, 2.5);
  EXPECT_EQ(c.max_position_embeddings, 4096);
  EXPECT_DOUBLE_EQ(c.rms_norm_eps, 1e-6);
  EXPECT_DOUBLE_EQ(c.rope_theta, 10000);
  EXPECT_FALSE(c.rope_scaling.yarn);
  EXPECT_EQ(c.bos_token_id, 0);
  EXPECT_THAT(c.eos_token_ids, ::testing::ElementsAre(1));
  EXPECT_FALSE(c.fp8.enabled);
  EXPECT_EQ(c.num_nextn_predict_layers, 0);
  EXPECT_EQ(c.torch_dtype, "");
  EXPECT_EQ(MustParse(R"({"model_type": "kimi_k2"})").hidden_size, 7168);
}

// DeepSeek-V3.2: V3's fields plus the indexer's (HF DeepseekV32Config defaults) and ue8m0 scales.
TEST(ModelConfigTest, DeepSeekV32) {
  ModelConfig d = MustParse(R"({"model_type": "deepseek_v32"})");
  EXPECT_TRUE(d.dsa.enabled);
  EXPECT_EQ(d.dsa.index_n_heads, 64);
  EXPECT_EQ(d.dsa.index_head_dim, 128);
  EXPECT_EQ(d.dsa.index_topk, 2048);
  EXPECT_EQ(d.hidden_size, 7168);
  ModelConfig c = MustParse(R"({"model_type": "deepseek_v32", "index_topk": 24, "index_n_heads": 8,
      "quantization_config": {"quant_method": "fp8", "fmt": "e4m3", "scale_fmt": "ue8m0",
                              "weight_block_size": [128, 128]}})");
  EXPECT_EQ(c.dsa.index_topk, 24);
  EXPECT_EQ(c.dsa.index_n_heads, 8);
  EXPECT_TRUE(c.fp8.scale_ue8m0);
  EXPECT_FALSE(MustParse(R"({"model_type": "deepseek_v3"})").dsa.enabled);
}

TEST(ModelConfigTest, V2DefaultsFollowHf) {
  ModelConfig c = MustParse(R"({"model_type": "deepseek_v2", "num_experts_per_tok": 6})");
  EXPECT_EQ(c.vocab_size, 32000);
  EXPECT_EQ(c.hidden_size, 4096);
  EXPECT_EQ(c.intermediate_size, 11008);
  EXPECT_EQ(c.moe_intermediate_size, 1407);
  EXPECT_EQ(c.num_hidden_layers, 32);
  EXPECT_EQ(c.num_attention_heads, 32);
  EXPECT_EQ(c.q_lora_rank, 1536);
  EXPECT_EQ(c.n_routed_experts, 64);
  EXPECT_EQ(c.n_shared_experts, 2);
  EXPECT_EQ(c.n_group, 1);
  EXPECT_EQ(c.topk_group, 1);
  EXPECT_EQ(c.first_k_dense_replace, 0);
  EXPECT_EQ(c.topk_method, TopkMethod::kGreedy);
  EXPECT_EQ(c.scoring_func, ScoringFunc::kSoftmax);
  EXPECT_FALSE(c.norm_topk_prob);
  EXPECT_DOUBLE_EQ(c.routed_scaling_factor, 1.0);
  EXPECT_EQ(c.max_position_embeddings, 2048);
  EXPECT_EQ(c.bos_token_id, 1);
  EXPECT_THAT(c.eos_token_ids, ::testing::ElementsAre(2));
  EXPECT_TRUE(c.IsMoeLayer(0));
}

Json V3() { return Json::parse(kDeepSeekV3); }

TEST(ModelConfigTest, NullsMeanAbsentFeatures) {
  Json j = V3();
  j["n_routed_experts"] = nullptr;  // a dense model
  j["num_experts_per_tok"] = nullptr;
  j["n_group"] = nullptr;
  j["topk_group"] = nullptr;
  j["rope_scaling"] = nullptr;
  j["quantization_config"] = nullptr;
  j["bos_token_id"] = nullptr;
  j["eos_token_id"] = nullptr;
  j["torch_dtype"] = nullptr;
  ModelConfig c = MustParse(j.dump());
  EXPECT_EQ(c.n_routed_experts, 0);
  EXPECT_EQ(c.n_group, 1);
  EXPECT_EQ(c.topk_group, 1);
  EXPECT_FALSE(c.rope_scaling.yarn);
  EXPECT_FALSE(c.fp8.enabled);
  EXPECT_EQ(c.bos_token_id, -1);
  EXPECT_TRUE(c.eos_token_ids.empty());
  EXPECT_EQ(c.torch_dtype, "");
  for (int64_t layer = 0; layer < 61; ++layer) EXPECT_FALSE(c.IsMoeLayer(layer));
}

TEST(ModelConfigTest, EosListAndMoeLayerFreq) {
  Json j = V3();
  j["eos_token_id"] = {1, 128, 5};
  j["moe_layer_freq"] = 2;
  j["first_k_dense_replace"] = 1;
  ModelConfig c = MustParse(j.dump());
  EXPECT_THAT(c.eos_token_ids, ::testing::ElementsAre(1, 128, 5));
  EXPECT_FALSE(c.IsMoeLayer(0));
  EXPECT_FALSE(c.IsMoeLayer(1));
  EXPECT_TRUE(c.IsMoeLayer(2));
  EXPECT_FALSE(c.IsMoeLayer(3));
  EXPECT_TRUE(c.IsMoeLayer(4));
}

TEST(ModelConfigTest, AcceptsNewerHfSpellings) {
  Json j = V3();
  j.erase("rope_scaling");
  j.erase("rope_theta");
  j.erase("torch_dtype");
  j["dtype"] = "bfloat16";
  j["rope_parameters"] = {{"rope_type", "default"}, {"rope_theta", 50000.0}};
  ModelConfig c = MustParse(j.dump());
  EXPECT_FALSE(c.rope_scaling.yarn);
  EXPECT_DOUBLE_EQ(c.rope_theta, 50000);
  EXPECT_EQ(c.torch_dtype, "bfloat16");

  j["rope_parameters"] = {{"rope_type", "yarn"}, {"factor", 8.0}, {"rope_theta", 10000}};
  c = MustParse(j.dump());
  EXPECT_TRUE(c.rope_scaling.yarn);
  EXPECT_DOUBLE_EQ(c.rope_scaling.factor, 8.0);
  EXPECT_EQ(c.rope_scaling.original_max_position_embeddings, 4096);  // DeepSeek's default
  EXPECT_DOUBLE_EQ(c.rope_scaling.beta_fast, 32);
  EXPECT_DOUBLE_EQ(c.rope_scaling.mscale_all_dim, 0);

  j = V3();
  j["weight_block_size_unrelated"] = {1, 2, 3};
  j["hidden_size"] = 7168.0;  // integral float
  j["quantization_config"]["weight_block_size"] = {64, 32};
  c = MustParse(j.dump());
  EXPECT_EQ(c.hidden_size, 7168);
  EXPECT_EQ(c.fp8.block_n, 64);
  EXPECT_EQ(c.fp8.block_k, 32);
}

TEST(ModelConfigTest, ExpertDtypeTopLevelOrInQuantizationConfig) {
  Json j = V3();
  EXPECT_FALSE(MustParse(j.dump()).fp8.experts_fp4);
  j["expert_dtype"] = "fp4";
  EXPECT_TRUE(MustParse(j.dump()).fp8.experts_fp4);
  j.erase("expert_dtype");
  j["quantization_config"]["expert_dtype"] = "fp4";
  EXPECT_TRUE(MustParse(j.dump()).fp8.experts_fp4);
  j["quantization_config"]["expert_dtype"] = "fp8";
  EXPECT_FALSE(MustParse(j.dump()).fp8.experts_fp4);
  j["quantization_config"] = nullptr;
  j["expert_dtype"] = "fp4";
  EXPECT_TRUE(MustParse(j.dump()).fp8.experts_fp4);
}

struct BadCase {
  const char* label;
  std::function<void(Json&)> edit;
  const char* message;
};

class ModelConfigRejects : public ::testing::TestWithParam<BadCase> {};

TEST_P(ModelConfigRejects, WithFieldName) {
  Json j = V3();
  GetParam().edit(j);
  absl::StatusOr<ModelConfig> c = ParseModelConfig(j.dump());
  ASSERT_FALSE(c.ok()) << GetParam().label;
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(c.status().message()), HasSubstr(GetParam().message));
}

const BadCase kBadCases[] = {
    {"topk_method", [](Json& j) { j["topk_method"] = "foo"; },
     "config.json: topk_method \"foo\" is not one of greedy, group_limited_greedy, noaux_tc"},
    {"scoring_func", [](Json& j) { j["scoring_func"] = "relu"; },
     "scoring_func \"relu\" is not one of softmax, sigmoid"},
    {"model_type", [](Json& j) { j["model_type"] = "mistral"; },
     "model_type \"mistral\" is not one of deepseek_v2, deepseek_v3, deepseek_v32, deepseek_v4, kimi_k2, qwen2, llama"},
    {"index_field_on_v3", [](Json& j) { j["index_topk"] = 16; },
     "index_topk is a deepseek_v32 field, but model_type is deepseek_v3"},
    {"v32_index_head_dim", [](Json& j) { j["model_type"] = "deepseek_v32"; j["index_head_dim"] = 64; },
     "index_head_dim must be 128"},
    {"v32_index_topk", [](Json& j) { j["model_type"] = "deepseek_v32"; j["index_topk"] = 0; },
     "index_topk must be in [1, "},
    {"v32_topk_sharing", [](Json& j) { j["model_type"] = "deepseek_v32"; j["index_topk_freq"] = 4; },
     "index_topk_freq is not supported"},
    {"v32_no_q_lora", [](Json& j) { j["model_type"] = "deepseek_v32"; j["q_lora_rank"] = nullptr; },
     "q_lora_rank must be positive for deepseek_v32"},
    {"expert_dtype", [](Json& j) { j["expert_dtype"] = "fp6"; },
     "expert_dtype \"fp6\" is not supported (fp4, fp8 or bf16)"},
    {"quant_expert_dtype", [](Json& j) { j["quantization_config"]["expert_dtype"] = "int4"; },
     "quantization_config.expert_dtype \"int4\" is not supported"},
    {"expert_dtype_disagree",
     [](Json& j) { j["expert_dtype"] = "fp8"; j["quantization_config"]["expert_dtype"] = "fp4"; },
     "quantization_config.expert_dtype is \"fp4\" but expert_dtype is \"fp8\""},
    {"scale_fmt", [](Json& j) { j["quantization_config"]["scale_fmt"] = "e5m2"; },
     "quantization_config.scale_fmt \"e5m2\" is not supported (only ue8m0)"},
    {"no_model_type", [](Json& j) { j.erase("model_type"); }, "model_type is missing"},
    {"rope_type", [](Json& j) { j["rope_scaling"]["type"] = "linear"; },
     "rope_scaling.type \"linear\" is not supported"},
    {"rope_no_type", [](Json& j) { j["rope_scaling"].erase("type"); },
     "rope_scaling.rope_type is missing"},
    {"rope_not_object", [](Json& j) { j["rope_scaling"] = "yarn"; },
     "rope_scaling must be an object"},
    {"rope_factor_missing", [](Json& j) { j["rope_scaling"].erase("factor"); },
     "rope_scaling.factor is missing"},
    {"rope_factor_small", [](Json& j) { j["rope_scaling"]["factor"] = 0.5; },
     "rope_scaling.factor must be >= 1"},
    {"rope_factor_string", [](Json& j) { j["rope_scaling"]["factor"] = "40"; },
     "rope_scaling.factor must be a number"},
    {"rope_orig", [](Json& j) { j["rope_scaling"]["original_max_position_embeddings"] = 0; },
     "rope_scaling.original_max_position_embeddings must be in"},
    {"quant_method", [](Json& j) { j["quantization_config"]["quant_method"] = "gptq"; },
     "quantization_config.quant_method \"gptq\" is not supported"},
    {"quant_no_method", [](Json& j) { j["quantization_config"].erase("quant_method"); },
     "quantization_config.quant_method is missing"},
    {"quant_fmt", [](Json& j) { j["quantization_config"]["fmt"] = "e5m2"; },
     "quantization_config.fmt \"e5m2\" is not supported"},
    {"quant_act", [](Json& j) { j["quantization_config"]["activation_scheme"] = "static"; },
     "quantization_config.activation_scheme \"static\" is not supported"},
    {"quant_block_arity", [](Json& j) { j["quantization_config"]["weight_block_size"] = {128}; },
     "quantization_config.weight_block_size must be a list [n, k]"},
    {"quant_block_zero",
     [](Json& j) {
       j["quantization_config"]["weight_block_size"] = {0, 128};
     },
     "quantization_config.weight_block_size[0] must be in"},
    {"quant_block_type",
     [](Json& j) {
       j["quantization_config"]["weight_block_size"] = {128, "x"};
     },
     "quantization_config.weight_block_size[1] must be an integer"},
    {"quant_not_object", [](Json& j) { j["quantization_config"] = Json::array(); },
     "quantization_config must be an object"},
    {"hidden_string", [](Json& j) { j["hidden_size"] = "7168"; },
     "hidden_size must be an integer, got string"},
    {"hidden_fraction", [](Json& j) { j["hidden_size"] = 1.5; }, "hidden_size must be an integer"},
    {"hidden_null", [](Json& j) { j["hidden_size"] = nullptr; },
     "hidden_size must be an integer, got null"},
    {"hidden_zero", [](Json& j) { j["hidden_size"] = 0; }, "hidden_size must be in [1, "},
    {"hidden_negative", [](Json& j) { j["hidden_size"] = -5; }, "hidden_size must be in"},
    {"hidden_huge", [](Json& j) { j["hidden_size"] = 18446744073709551615ull; },
     "hidden_size is out of range"},
    {"vocab_huge", [](Json& j) { j["vocab_size"] = int64_t{1} << 40; }, "vocab_size must be in"},
    {"heads", [](Json& j) { j["num_attention_heads"] = 0; }, "num_attention_heads must be in"},
    {"layers", [](Json& j) { j["num_hidden_layers"] = -1; }, "num_hidden_layers must be in"},
    {"intermediate", [](Json& j) { j["intermediate_size"] = 0; }, "intermediate_size must be in"},
    {"moe_intermediate", [](Json& j) { j["moe_intermediate_size"] = 0; },
     "moe_intermediate_size must be in"},
    {"kv_lora", [](Json& j) { j["kv_lora_rank"] = 0; }, "kv_lora_rank must be in"},
    {"q_lora", [](Json& j) { j["q_lora_rank"] = -1; }, "q_lora_rank must be in"},
    {"nope", [](Json& j) { j["qk_nope_head_dim"] = 0; }, "qk_nope_head_dim must be in"},
    {"rope_odd", [](Json& j) { j["qk_rope_head_dim"] = 63; }, "qk_rope_head_dim must be even"},
    {"v_head", [](Json& j) { j["v_head_dim"] = 0; }, "v_head_dim must be in"},
    {"max_pos", [](Json& j) { j["max_position_embeddings"] = 0; },
     "max_position_embeddings must be in"},
    {"eps", [](Json& j) { j["rms_norm_eps"] = 0; }, "rms_norm_eps must be positive"},
    {"theta", [](Json& j) { j["rope_theta"] = -1; }, "rope_theta must be positive"},
    {"norm_topk", [](Json& j) { j["norm_topk_prob"] = "yes"; },
     "norm_topk_prob must be true or false"},
    {"tie", [](Json& j) { j["tie_word_embeddings"] = 1; },
     "tie_word_embeddings must be true or false"},
    {"experts_per_tok", [](Json& j) { j["num_experts_per_tok"] = 300; },
     "num_experts_per_tok (300) must not exceed n_routed_experts (256)"},
    {"experts_per_tok_missing", [](Json& j) { j["num_experts_per_tok"] = nullptr; },
     "num_experts_per_tok must be positive when n_routed_experts is 256"},
    {"experts_beyond_groups",
     [](Json& j) {
       j["topk_group"] = 1;
       j["num_experts_per_tok"] = 33;
     },
     "num_experts_per_tok (33) exceeds the 32 experts in topk_group (1) groups of 32"},
    {"n_group_divides", [](Json& j) { j["n_group"] = 7; },
     "n_group (7) must divide n_routed_experts (256)"},
    {"n_group_one_per_group",
     [](Json& j) {
       j["n_group"] = 256;
       j["topk_group"] = 8;
     },
     "n_group (256) leaves fewer than 2 experts per group"},
    {"topk_group", [](Json& j) { j["topk_group"] = 9; }, "topk_group must be in [1, 8]"},
    {"routed_experts_negative", [](Json& j) { j["n_routed_experts"] = -1; },
     "n_routed_experts must be in"},
    {"shared_negative", [](Json& j) { j["n_shared_experts"] = -1; }, "n_shared_experts must be in"},
    {"moe_freq", [](Json& j) { j["moe_layer_freq"] = 0; }, "moe_layer_freq must be in"},
    {"first_k", [](Json& j) { j["first_k_dense_replace"] = -1; },
     "first_k_dense_replace must be in"},
    {"scaling", [](Json& j) { j["routed_scaling_factor"] = 0; },
     "routed_scaling_factor must be positive"},
    {"act", [](Json& j) { j["hidden_act"] = "gelu"; }, "hidden_act \"gelu\" is not supported"},
    {"attention_bias", [](Json& j) { j["attention_bias"] = true; },
     "attention_bias true is not supported"},
    {"dtype", [](Json& j) { j["torch_dtype"] = "float64"; },
     "torch_dtype \"float64\" is not one of bfloat16, float16, float32"},
    {"bos_vocab", [](Json& j) { j["bos_token_id"] = 129280; },
     "bos_token_id (129280) is outside the vocabulary of 129280"},
    {"eos_type", [](Json& j) { j["eos_token_id"] = "x"; }, "eos_token_id must be an integer"},
    {"eos_list_type",
     [](Json& j) {
       j["eos_token_id"] = {1, "x"};
     },
     "eos_token_id[1] must be an integer"},
    {"eos_vocab",
     [](Json& j) {
       j["eos_token_id"] = {1, -3};
     },
     "eos_token_id (-3) is outside the vocabulary"},
    {"nextn", [](Json& j) { j["num_nextn_predict_layers"] = -1; },
     "num_nextn_predict_layers must be in"},
    {"model_type_type", [](Json& j) { j["model_type"] = 3; }, "model_type must be a string"},
};

INSTANTIATE_TEST_SUITE_P(All, ModelConfigRejects, ::testing::ValuesIn(kBadCases),
                         [](const auto& info) { return std::string(info.param.label); });

TEST(ModelConfigTest, RejectsNonJsonAndNonObjects) {
  for (const char* text : {"", "{", "not json", "[1, 2]", "42", "null", "{\"a\": 1,}"}) {
    absl::StatusOr<ModelConfig> c = ParseModelConfig(text);
    ASSERT_FALSE(c.ok()) << text;
    EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(c.status().message()), HasSubstr("config.json"));
  }
}

class TempDir {
 public:
  TempDir() {
    path_ = (std::filesystem::path(::testing::TempDir()) /
             (std::string("dsinfer_config_test_") +
              ::testing::UnitTest::GetInstance()->current_test_info()->name()))
                .string();
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

TEST(ModelConfigTest, LoadFromDirectory) {
  TempDir dir;
  { std::ofstream(dir.path() + "/config.json") << kKimiK2; }
  absl::StatusOr<ModelConfig> c = LoadModelConfig(dir.path());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->model_type, "kimi_k2");

  {
    std::ofstream(dir.path() + "/config.json") << R"({"model_type": "deepseek_v3", "n_group": 5})";
  }
  c = LoadModelConfig(dir.path());
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(std::string(c.status().message()),
              HasSubstr(dir.path() + "/config.json: n_group (5) must divide"));

  c = LoadModelConfig(dir.path() + "/missing");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(c.status().message()), HasSubstr("missing/config.json"));
}

TEST(ModelConfigTest, GenerationConfigEosIdsAreStopIdsToo) {
  TempDir dir;
  { std::ofstream(dir.path() + "/config.json") << kKimiK2; }
  // Kimi-K2: config.json's eos is [EOS]; chat turns end with <|im_end|> (generation_config).
  { std::ofstream(dir.path() + "/generation_config.json") << R"({"eos_token_id": 163586})"; }
  absl::StatusOr<ModelConfig> c = LoadModelConfig(dir.path());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_THAT(c->eos_token_ids, ::testing::ElementsAre(163585, 163586));

  // A list, repeating config.json's id: each id once.
  {
    std::ofstream(dir.path() + "/generation_config.json")
        << R"({"max_length": 131072, "eos_token_id": [163585, 163586, 7]})";
  }
  c = LoadModelConfig(dir.path());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_THAT(c->eos_token_ids, ::testing::ElementsAre(163585, 163586, 7));

  // No eos_token_id there: config.json's alone.
  { std::ofstream(dir.path() + "/generation_config.json") << R"({"temperature": 0.6})"; }
  c = LoadModelConfig(dir.path());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_THAT(c->eos_token_ids, ::testing::ElementsAre(163585));

  // Bad values name the file and the field.
  const std::string gen = dir.path() + "/generation_config.json";
  for (auto [text, want] : std::vector<std::pair<std::string, std::string>>{
           {R"({"eos_token_id": 999999999})", gen + ": eos_token_id (999999999) is outside"},
           {R"({"eos_token_id": [1, "x"]})", gen + ": eos_token_id[1]"},
           {R"({"eos_token_id": )", gen + ": not valid JSON"},
           {R"([1])", gen + ": top level must be an object"}}) {
    { std::ofstream(gen) << text; }
    c = LoadModelConfig(dir.path());
    ASSERT_FALSE(c.ok()) << text;
    EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument) << text;
    EXPECT_THAT(std::string(c.status().message()), HasSubstr(want)) << text;
  }
}

}  // namespace
}  // namespace dsinfer
