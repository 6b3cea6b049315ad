// A tiny, randomly initialised DeepSeek-V3-architecture checkpoint in exact Hugging Face layout
// (config.json, two FP8 shards + index, tokenizer files), for offline runs and tests.
// Generation uses only integer arithmetic and correctly rounded float operations, so every
// machine writes the same bytes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "src/core/numeric.h"

namespace dsinfer {

struct TinyTensorSpec {
  enum class Init { kNormal, kOnes, kUniform };
  std::string name;
  DType dtype;  // storage; kF8E4M3 tensors get a `.weight_scale_inv` companion (128x128 blocks)
  std::vector<int64_t> shape;
  Init init;
  double scale;   // standard deviation (kNormal) or half-width (kUniform)
  uint64_t seed;  // tensors sharing a seed share values (the MTP layer's embed/head copies)
  int shard;      // 0 or 1
};

// Every stored tensor except the FP8 scales, in file order.
std::vector<TinyTensorSpec> TinyModelTensors();

// Element `index` of a tensor as generated, before bf16 rounding or FP8 quantisation.
float TinyModelValue(const TinyTensorSpec& spec, int64_t index);

// The config.json text.
std::string TinyModelConfigJson();

inline constexpr char kTinyModelShard0[] = "model-00001-of-00002.safetensors";
inline constexpr char kTinyModelShard1[] = "model-00002-of-00002.safetensors";

// Writes the model into out_dir (created if needed), copying tokenizer.json and
// tokenizer_config.json from tokenizer_dir. config.json is written last, so a directory with a
// config.json holds a complete model.
absl::Status WriteTinyModel(const std::string& out_dir, const std::string& tokenizer_dir);

}  // namespace dsinfer
