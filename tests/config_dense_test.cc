// config.json of the dense families (qwen2, llama) as the DeepSeek-R1 distills ship them: fields,
// defaults, the KV row they imply, and every unsupported field refused by name.
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

// DeepSeek-R1-Distill-Qwen-7B's config.json (fields as published).
Json Qwen7B() {
  return Json::parse(R"({
    "architectures": ["Qwen2ForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 151643,
    "eos_token_id": 151643, "hidden_act": "silu", "hidden_size": 3584,
    "initializer_range": 0.02, "intermediate_size": 18944, "max_position_embeddings": 131072,
    "max_window_layers": 28, "model_type": "qwen2", "num_attention_heads": 28,
    "num_hidden_layers": 28, "num_key_value_heads": 4, "rms_norm_eps": 1e-06,
    "rope_theta": 10000, "sliding_window": 4096, "tie_word_embeddings": false,
    "torch_dtype": "bfloat16", "transformers_version": "4.44.0", "use_cache": true,
    "use_mrope": false, "use_sliding_window": false, "vocab_size": 152064})");
}

// DeepSeek-R1-Distill-Llama-8B's config.json.
Json Llama8B() {
  return Json::parse(R"({
    "architectures": ["LlamaForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
    "bos_token_id": 128000, "eos_token_id": 128001, "hidden_act": "silu", "hidden_size": 4096,
    "initializer_range": 0.02, "intermediate_size": 14336, "max_position_embeddings": 131072,
    "mlp_bias": false, "model_type": "llama", "num_attention_heads": 32,
    "num_hidden_layers": 32, "num_key_value_heads": 8, "pretraining_tp": 1,
    "rms_norm_eps": 1e-05, "rope_scaling": {"factor": 8.0, "high_freq_factor": 4.0,
    "low_freq_factor": 1.0, "original_max_position_embeddings": 8192, "rope_type": "llama3"},
    "rope_theta": 500000.0, "tie_word_embeddings": false, "torch_dtype": "bfloat16",
    "transformers_version": "4.43.0.dev0", "use_cache": true, "vocab_size": 128256})");
}

TEST(DenseConfig, R1DistillQwen7B) {
  auto c = ParseModelConfig(Qwen7B().dump());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(c->IsDense());
  EXPECT_EQ(c->num_key_value_heads, 4);
  EXPECT_EQ(c->head_dim, 128);  // hidden_size / num_attention_heads
  EXPECT_TRUE(c->qkv_bias);
  EXPECT_FALSE(c->o_bias);
  EXPECT_FALSE(c->rope_scaling.llama3);
  EXPECT_EQ(c->n_routed_experts, 0);
  EXPECT_EQ(c->eos_token_ids, std::vector<int64_t>{151643});
}

TEST(DenseConfig, R1DistillLlama8B) {
  auto c = ParseModelConfig(Llama8B().dump());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->num_key_value_heads, 8);
  EXPECT_EQ(c->head_dim, 128);
  EXPECT_FALSE(c->qkv_bias);
  EXPECT_TRUE(c->rope_scaling.llama3);
  EXPECT_DOUBLE_EQ(c->rope_scaling.factor, 8.0);
  EXPECT_EQ(c->rope_scaling.original_max_position_embeddings, 8192);
  EXPECT_DOUBLE_EQ(c->rope_theta, 500000.0);
  EXPECT_DOUBLE_EQ(c->rms_norm_eps, 1e-5);
}

TEST(DenseConfig, NewerSpellingsAndDefaults) {
  Json j = Llama8B();
  j.erase("rope_scaling");
  j.erase("rope_theta");
  j["rope_parameters"] = {{"rope_type", "default"}, {"rope_theta", 1e6}};
  j["head_dim"] = 64;
  j.erase("num_key_value_heads");  // absent: num_attention_heads (plain multi-head)
  j["attention_bias"] = true;
  auto c = ParseModelConfig(j.dump());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_DOUBLE_EQ(c->rope_theta, 1e6);
  EXPECT_EQ(c->head_dim, 64);
  EXPECT_EQ(c->num_key_value_heads, 32);
  EXPECT_TRUE(c->qkv_bias && c->o_bias);
}

struct Bad {
  const char* label;
  std::function<Json()> make;
  const char* message;
};

class DenseConfigRejects : public ::testing::TestWithParam<Bad> {};

TEST_P(DenseConfigRejects, NamingTheField) {
  auto c = ParseModelConfig(GetParam().make().dump());
  ASSERT_FALSE(c.ok()) << GetParam().label;
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(c.status().message()), HasSubstr(GetParam().message));
}

Json With(Json j, const char* key, Json v) {
  j[key] = std::move(v);
  return j;
}

const Bad kBad[] = {
    {"sliding", [] { return With(Qwen7B(), "use_sliding_window", true); },
     "use_sliding_window true is not supported"},
    {"layer_types",
     [] { return With(Qwen7B(), "layer_types", Json::array({"full_attention", "sliding_attention"})); },
     "layer_types[1] must be \"full_attention\""},
    {"mlp_bias", [] { return With(Llama8B(), "mlp_bias", true); }, "mlp_bias true is not supported"},
    {"act", [] { return With(Llama8B(), "hidden_act", "gelu"); }, "hidden_act \"gelu\" is not supported"},
    {"pretraining_tp", [] { return With(Llama8B(), "pretraining_tp", 2); }, "pretraining_tp must be 1"},
    {"rope_yarn",
     [] {
       Json j = Llama8B();
       j["rope_scaling"]["rope_type"] = "yarn";
       return j;
     },
     "rope_scaling.rope_type \"yarn\" is not supported for llama"},
    {"rope_llama3_missing",
     [] {
       Json j = Llama8B();
       j["rope_scaling"].erase("low_freq_factor");
       return j;
     },
     "rope_scaling.low_freq_factor is missing"},
    {"kv_heads", [] { return With(Qwen7B(), "num_key_value_heads", 5); },
     "num_key_value_heads (5) must divide num_attention_heads (28)"},
    {"head_dim_odd", [] { return With(Llama8B(), "head_dim", 63); }, "head_dim must be even"},
    {"quantized",
     [] { return With(Llama8B(), "quantization_config", Json{{"quant_method", "fp8"}}); },
     "quantization_config is not supported for llama"},
    {"eos", [] { return With(Qwen7B(), "eos_token_id", 200000); }, "eos_token_id (200000)"},
};

INSTANTIATE_TEST_SUITE_P(Fields, DenseConfigRejects, ::testing::ValuesIn(kBad),
                         [](const auto& info) { return std::string(info.param.label); });

}  // namespace
}  // namespace dsinfer
