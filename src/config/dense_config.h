// Internal to src/config: the config.json fields of the dense families (qwen2, llama as the
// DeepSeek-R1 distills use them), and the checks every family shares.
#pragma once

#include "absl/status/status.h"
#include "nlohmann/json.hpp"
#include "src/config/model_config.h"

namespace dsinfer {

// HF defaults of Qwen2Config / LlamaConfig for c->model_type, then every field the dense program
// reads, then their checks. Fields whose supported values are limited (sliding window, rope type,
// mlp_bias, hidden_act, pretraining_tp) are refused by name when set otherwise.
absl::Status ParseDenseFields(const nlohmann::json& root, ModelConfig* c);

// bos / eos ids inside the vocabulary.
absl::Status ValidateTokens(const ModelConfig& c);

}  // namespace dsinfer
