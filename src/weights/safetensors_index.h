// model.safetensors.index.json: which shard file holds each tensor of a sharded checkpoint.
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace dsinfer {

inline constexpr char kSafetensorsIndexFile[] = "model.safetensors.index.json";
inline constexpr char kSafetensorsSingleFile[] = "model.safetensors";

// Returns weight_map (tensor name -> shard file name, relative to the model directory).
// Rejects invalid JSON, a missing or empty weight_map, non-string entries and shard names that
// are absolute or contain "..". Errors name the offending key; they do not name a file.
absl::StatusOr<std::map<std::string, std::string>> ParseSafetensorsIndex(
    std::string_view json_text);

}  // namespace dsinfer
