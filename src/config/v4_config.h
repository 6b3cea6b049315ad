// Internal to src/config: the config.json fields of DeepSeek-V4 (model_type deepseek_v4), as HF
// transformers' DeepseekV4Config writes them and as DeepSeek's own V4 checkpoints ship them
// (compress_ratios, num_hash_layers, qk_rope_head_dim, a flat rope_scaling).
#pragma once

#include "absl/status/status.h"
#include "nlohmann/json.hpp"
#include "src/config/model_config.h"

namespace dsinfer {

// DeepseekV4Config's defaults, then every field the V4 program reads, then their checks. Values
// the program does not implement (n_group > 1, more than one KV head, attention or MLP biases,
// FP4 experts, a main rope other than default) are refused naming the field.
absl::Status ParseV4Fields(const nlohmann::json& root, ModelConfig* c);

}  // namespace dsinfer
