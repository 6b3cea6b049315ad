// config.json of DeepSeek-V4 (deepseek_v4): transformers' DeepseekV4Config layout and DeepSeek's
// own legacy field names, defaults, and every unsupported field refused by name.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>
#include <string>

#include "nlohmann/json.hpp"
#include "src/config/model_config.h"

namespace dsinfer {
namespace {

using Json = nlohmann::json;
using ::testing::HasSubstr;

// What transformers 5.25's DeepseekV4Config.save_pretrained writes for a small model.
Json HfTiny() {
  return Json::parse(R"({
    "architectures": ["DeepseekV4ForCausalLM"], "bos_token_id": 0, "eos_token_id": 1,
    "compress_rates": {"compressed_sparse_attention": 4, "heavily_compressed_attention": 8},
    "compress_rope_theta": 160000.0, "hc_eps": 1e-06, "hc_mult": 3, "hc_sinkhorn_iters": 20,
    "head_dim": 40, "hidden_act": "silu", "hidden_size": 72, "index_head_dim": 16,
    "index_n_heads": 3, "index_topk": 3,
    "layer_types": ["sliding_attention", "compressed_sparse_attention",
                    "heavily_compressed_attention", "compressed_sparse_attention"],
    "max_position_embeddings": 512, "mlp_bias": false,
    "mlp_layer_types": ["hash_moe", "moe", "moe", "moe"], "model_type": "deepseek_v4",
    "moe_intermediate_size": 40, "n_routed_experts": 6, "n_shared_experts": 1,
    "norm_topk_prob": true, "num_attention_heads": 4, "num_experts_per_tok": 2,
    "num_hidden_layers": 4, "num_key_value_heads": 1, "num_nextn_predict_layers": 1,
    "o_groups": 2, "o_lora_rank": 20, "partial_rotary_factor": 0.4, "q_lora_rank": 24,
    "qk_rope_head_dim": 16, "rms_norm_eps": 1e-06,
    "rope_parameters": {
      "compress": {"attention_factor": 1.0, "beta_fast": 32, "beta_slow": 1, "factor": 4.0,
                   "original_max_position_embeddings": 64, "partial_rotary_factor": 0.4,
                   "rope_theta": 160000.0, "rope_type": "yarn"},
      "main": {"partial_rotary_factor": 0.4, "rope_theta": 10000.0, "rope_type": "default"}},
    "rope_theta": 10000.0, "routed_scaling_factor": 1.5, "scoring_func": "sqrtsoftplus",
    "sliding_window": 6, "swiglu_limit": 10.0, "tie_word_embeddings": false,
    "transformers_version": "5.25.0", "vocab_size": 300})");
}

absl::StatusOr<ModelConfig> Parse(const Json& j) { return ParseModelConfig(j.dump()); }

TEST(ConfigV4, ReadsTransformersLayout) {
  absl::StatusOr<ModelConfig> c = Parse(HfTiny());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(c->IsV4());
  EXPECT_FALSE(c->IsDense());
  const V4Config& v = c->v4;
  EXPECT_TRUE(v.enabled);
  ASSERT_EQ(v.attn.size(), 4u);
  EXPECT_EQ(v.attn[0], V4Attn::kSliding);
  EXPECT_EQ(v.attn[1], V4Attn::kCsa);
  EXPECT_EQ(v.attn[2], V4Attn::kHca);
  EXPECT_EQ(v.rate(0), 0);
  EXPECT_EQ(v.rate(1), 4);
  EXPECT_EQ(v.rate(2), 8);
  EXPECT_EQ(v.hash_moe, (std::vector<bool>{true, false, false, false}));
  EXPECT_EQ(c->head_dim, 40);
  EXPECT_EQ(c->qk_rope_head_dim, 16);
  EXPECT_EQ(c->q_lora_rank, 24);
  EXPECT_EQ(c->intermediate_size, 40);  // the shared expert
  EXPECT_EQ(v.hc_mult, 3);
  EXPECT_EQ(v.sliding_window, 6);
  EXPECT_EQ(v.o_groups, 2);
  EXPECT_EQ(v.o_lora_rank, 20);
  EXPECT_EQ(v.index_n_heads, 3);
  EXPECT_EQ(v.index_head_dim, 16);
  EXPECT_EQ(v.index_topk, 3);
  EXPECT_EQ(v.scoring, V4Scoring::kSqrtSoftplus);
  EXPECT_DOUBLE_EQ(v.swiglu_limit, 10.0);
  EXPECT_DOUBLE_EQ(c->rope_theta, 10000.0);
  EXPECT_DOUBLE_EQ(v.compress_rope_theta, 160000.0);
  EXPECT_TRUE(c->rope_scaling.yarn);
  EXPECT_DOUBLE_EQ(c->rope_scaling.factor, 4.0);
  EXPECT_EQ(c->rope_scaling.original_max_position_embeddings, 64);
  EXPECT_FALSE(c->fp8.enabled);
}

TEST(ConfigV4, ReadsDeepseekLegacyNames) {
  Json j = HfTiny();
  for (const char* k : {"layer_types", "mlp_layer_types", "compress_rates", "rope_parameters",
                        "partial_rotary_factor"})
    j.erase(k);
  j["compress_ratios"] = {0, 4, 128, 4};
  j["num_hash_layers"] = 2;
  j["qk_rope_head_dim"] = 8;
  j["rope_scaling"] = {{"type", "yarn"}, {"factor", 16}, {"original_max_position_embeddings", 65536},
                       {"beta_fast", 32}, {"beta_slow", 1}};
  j["quantization_config"] = {{"quant_method", "fp8"}, {"fmt", "e4m3"},
                              {"weight_block_size", {128, 128}}, {"scale_fmt", "ue8m0"}};
  absl::StatusOr<ModelConfig> c = Parse(j);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->v4.attn, (std::vector<V4Attn>{V4Attn::kSliding, V4Attn::kCsa, V4Attn::kHca,
                                             V4Attn::kCsa}));
  EXPECT_EQ(c->v4.hash_moe, (std::vector<bool>{true, true, false, false}));
  EXPECT_EQ(c->qk_rope_head_dim, 8);
  EXPECT_EQ(c->v4.hca_rate, 128);
  EXPECT_TRUE(c->rope_scaling.yarn);
  EXPECT_DOUBLE_EQ(c->rope_scaling.factor, 16);
  EXPECT_TRUE(c->fp8.enabled);
  EXPECT_TRUE(c->fp8.scale_ue8m0);
}

TEST(ConfigV4, DefaultsAreV4Flash) {
  absl::StatusOr<ModelConfig> c = ParseModelConfig(R"({"model_type": "deepseek_v4"})");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->num_hidden_layers, 43);
  EXPECT_EQ(c->head_dim, 512);
  EXPECT_EQ(c->qk_rope_head_dim, 64);
  EXPECT_EQ(c->v4.attn.size(), 43u);
  EXPECT_EQ(c->v4.attn[0], V4Attn::kHca);
  EXPECT_EQ(c->v4.attn[1], V4Attn::kHca);
  EXPECT_EQ(c->v4.attn[2], V4Attn::kHca);
  EXPECT_EQ(c->v4.attn[3], V4Attn::kCsa);
  EXPECT_EQ(c->v4.hash_moe[2], true);
  EXPECT_EQ(c->v4.hash_moe[3], false);
  EXPECT_EQ(c->v4.hc_mult, 4);
  EXPECT_EQ(c->v4.sliding_window, 128);
}

struct Bad {
  const char* field;  // what the error must name
  std::function<void(Json&)> edit;
};

TEST(ConfigV4, RefusesUnsupportedNamingTheField) {
  const Bad cases[] = {
      {"num_key_value_heads", [](Json& j) { j["num_key_value_heads"] = 2; }},
      {"layer_types[2]", [](Json& j) { j["layer_types"][2] = "full_attention"; }},
      {"layer_types", [](Json& j) { j["layer_types"] = {"sliding_attention"}; }},
      {"mlp_layer_types[1]", [](Json& j) { j["mlp_layer_types"][1] = "dense"; }},
      {"compress_rates.full", [](Json& j) { j["compress_rates"]["full"] = 2; }},
      {"o_groups", [](Json& j) { j["o_groups"] = 3; }},
      {"n_shared_experts", [](Json& j) { j["n_shared_experts"] = 2; }},
      {"n_group", [](Json& j) { j["n_group"] = 4; }},
      {"norm_topk_prob", [](Json& j) { j["norm_topk_prob"] = false; }},
      {"scoring_func", [](Json& j) { j["scoring_func"] = "relu"; }},
      {"hidden_act", [](Json& j) { j["hidden_act"] = "gelu"; }},
      {"attention_bias", [](Json& j) { j["attention_bias"] = true; }},
      {"mlp_bias", [](Json& j) { j["mlp_bias"] = true; }},
      {"hc_mult", [](Json& j) { j["hc_mult"] = 0; }},
      {"qk_rope_head_dim", [](Json& j) { j["qk_rope_head_dim"] = 7; }},
      {"rope_parameters.main.rope_type",
       [](Json& j) { j["rope_parameters"]["main"]["rope_type"] = "linear"; }},
      {"rope_parameters.compress.attention_factor",
       [](Json& j) { j["rope_parameters"]["compress"]["attention_factor"] = 1.3; }},
      {"rope_parameters.compress.rope_type",
       [](Json& j) { j["rope_parameters"]["compress"]["rope_type"] = "longrope"; }},
      {"quantization_config.expert_dtype", [](Json& j) {
         j["quantization_config"] = {{"quant_method", "fp8"}, {"expert_dtype", "fp2"}};
       }},
      {"swiglu_limit", [](Json& j) { j["swiglu_limit"] = -1; }},
      {"index_topk", [](Json& j) { j["index_topk"] = 0; }},
  };
  for (const Bad& b : cases) {
    Json j = HfTiny();
    b.edit(j);
    absl::StatusOr<ModelConfig> c = Parse(j);
    ASSERT_FALSE(c.ok()) << b.field;
    EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument) << b.field;
    EXPECT_THAT(std::string(c.status().message()), HasSubstr(b.field)) << c.status();
  }
}

TEST(ConfigV4, OtherFamiliesStillRefuseUnknownTypes) {
  absl::StatusOr<ModelConfig> c = ParseModelConfig(R"({"model_type": "deepseek_v5"})");
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(std::string(c.status().message()), HasSubstr("deepseek_v4"));
}

}  // namespace
}  // namespace dsinfer
