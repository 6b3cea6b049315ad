// Typed readers of config.json fields, shared by the family parsers (model_config.cc for
// DeepSeek, dense_config.cc for qwen2 / llama). Every error is InvalidArgument naming the field:
// "config.json: <field> <what is wrong>".
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace dsinfer::config_json {

// Upper bound for any size-like field, so that later products (vocab * hidden, ...) cannot
// overflow int64.
inline constexpr int64_t kMaxDim = int64_t{1} << 24;

absl::Status FieldError(absl::string_view field, absl::string_view what);
// A value's type and (shortened) text, for error messages.
std::string Describe(const nlohmann::json& v);

// Read obj[key] into *out when present (absent: *out unchanged). GetInt's `null_value`: what a
// JSON null means; without one, null is a type error. Integral floats (4096.0) are accepted.
absl::Status GetInt(const nlohmann::json& obj, absl::string_view key, absl::string_view field,
                    int64_t* out, std::optional<int64_t> null_value = std::nullopt);
absl::Status GetDouble(const nlohmann::json& obj, absl::string_view key, absl::string_view field,
                       double* out);
absl::Status GetBool(const nlohmann::json& obj, absl::string_view key, absl::string_view field,
                     bool* out);
// nullopt when absent or null.
absl::StatusOr<std::optional<std::string>> GetString(const nlohmann::json& obj,
                                                     absl::string_view key,
                                                     absl::string_view field);

// A config's rope object: "rope_scaling", else newer transformers' "rope_parameters" (whose
// rope_theta, when given, is read into *rope_theta). `obj` is null when both are absent or null.
// `type` is its "type" (DeepSeek's spelling) or "rope_type"; a missing type is an error naming
// the field.
struct RopeObject {
  const nlohmann::json* obj = nullptr;
  std::string field;       // "rope_scaling" or "rope_parameters"
  std::string type;
  std::string type_field;  // "rope_scaling.type", ...
};
absl::StatusOr<RopeObject> FindRopeObject(const nlohmann::json& root, double* rope_theta);

absl::Status CheckRange(absl::string_view field, int64_t v, int64_t lo, int64_t hi);
// quantization_config.weight_block_size: [n, k] into *n, *k, each in [1, kMaxDim]; absent or
// null leaves them unchanged.
absl::Status GetWeightBlockSize(const nlohmann::json& quantization_config, int64_t* n,
                                int64_t* k);
absl::Status CheckPositive(absl::string_view field, double v);

}  // namespace dsinfer::config_json
