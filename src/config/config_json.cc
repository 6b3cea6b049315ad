// Typed readers of config.json fields, shared by the family parsers (model_config.cc,
// dense_config.cc). Every error names the field ("config.json: <field> ...").
#include "src/config/config_json.h"

#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "src/core/status_macros.h"

namespace dsinfer::config_json {

using Json = nlohmann::json;

absl::Status FieldError(absl::string_view field, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("config.json: ", field, " ", what));
}

std::string Describe(const Json& v) {
  std::string text = v.dump(-1, ' ', false, Json::error_handler_t::replace);
  if (text.size() > 40) text = text.substr(0, 37) + "...";
  return absl::StrCat(v.type_name(), " ", text);
}

// Reads obj[key] into *out when present. `null_value`: what a JSON null means; without one,
// null is a type error.
absl::Status GetInt(const Json& obj, absl::string_view key, absl::string_view field, int64_t* out,
                    std::optional<int64_t> null_value) {
  auto it = obj.find(key);
  if (it == obj.end()) return absl::OkStatus();
  if (it->is_null() && null_value.has_value()) {
    *out = *null_value;
    return absl::OkStatus();
  }
  if (it->is_number_unsigned()) {
    uint64_t u = it->get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return FieldError(field, absl::StrCat("is out of range: ", u));
    }
    *out = static_cast<int64_t>(u);
    return absl::OkStatus();
  }
  if (it->is_number_integer()) {
    *out = it->get<int64_t>();
    return absl::OkStatus();
  }
  // Some writers emit integral values as floats (4096.0); accept those exactly.
  if (it->is_number_float()) {
    double d = it->get<double>();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.0e15) {
      *out = static_cast<int64_t>(d);
      return absl::OkStatus();
    }
  }
  return FieldError(field, absl::StrCat("must be an integer, got ", Describe(*it)));
}

absl::Status GetDouble(const Json& obj, absl::string_view key, absl::string_view field,
                       double* out) {
  auto it = obj.find(key);
  if (it == obj.end()) return absl::OkStatus();
  if (!it->is_number()) {
    return FieldError(field, absl::StrCat("must be a number, got ", Describe(*it)));
  }
  *out = it->get<double>();
  if (!std::isfinite(*out)) return FieldError(field, "must be finite");
  return absl::OkStatus();
}

absl::Status GetBool(const Json& obj, absl::string_view key, absl::string_view field, bool* out) {
  auto it = obj.find(key);
  if (it == obj.end()) return absl::OkStatus();
  if (!it->is_boolean()) {
    return FieldError(field, absl::StrCat("must be true or false, got ", Describe(*it)));
  }
  *out = it->get<bool>();
  return absl::OkStatus();
}

// Returns nullopt when absent or null.
absl::StatusOr<std::optional<std::string>> GetString(const Json& obj, absl::string_view key,
                                                     absl::string_view field) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return std::optional<std::string>();
  if (!it->is_string()) {
    return FieldError(field, absl::StrCat("must be a string, got ", Describe(*it)));
  }
  return std::optional<std::string>(it->get<std::string>());
}

absl::StatusOr<RopeObject> FindRopeObject(const Json& root, double* rope_theta) {
  RopeObject r;
  r.field = "rope_scaling";
  auto it = root.find("rope_scaling");
  if (it == root.end() || it->is_null()) {
    it = root.find("rope_parameters");
    r.field = "rope_parameters";
  }
  if (it == root.end() || it->is_null()) return r;
  if (!it->is_object()) {
    return FieldError(r.field, absl::StrCat("must be an object or null, got ", Describe(*it)));
  }
  r.obj = &*it;
  if (r.field == "rope_parameters") {
    RETURN_IF_ERROR(GetDouble(*it, "rope_theta", "rope_parameters.rope_theta", rope_theta));
  }
  const char* type_key = it->contains("type") ? "type" : "rope_type";
  r.type_field = absl::StrCat(r.field, ".", type_key);
  ASSIGN_OR_RETURN(std::optional<std::string> type, GetString(*it, type_key, r.type_field));
  if (!type.has_value()) return FieldError(r.type_field, "is missing");
  r.type = *type;
  return r;
}

absl::Status CheckRange(absl::string_view field, int64_t v, int64_t lo, int64_t hi) {
  if (v < lo || v > hi) {
    return FieldError(field, absl::StrCat("must be in [", lo, ", ", hi, "], got ", v));
  }
  return absl::OkStatus();
}

absl::Status CheckPositive(absl::string_view field, double v) {
  if (!(v > 0)) return FieldError(field, absl::StrCat("must be positive, got ", v));
  return absl::OkStatus();
}

absl::Status GetWeightBlockSize(const nlohmann::json& q, int64_t* n, int64_t* k) {
  auto wb = q.find("weight_block_size");
  if (wb == q.end() || wb->is_null()) return absl::OkStatus();
  if (!wb->is_array() || wb->size() != 2) {
    return FieldError("quantization_config.weight_block_size",
                      absl::StrCat("must be a list [n, k], got ", Describe(*wb)));
  }
  const nlohmann::json pair = nlohmann::json::object({{"n", (*wb)[0]}, {"k", (*wb)[1]}});
  RETURN_IF_ERROR(GetInt(pair, "n", "quantization_config.weight_block_size[0]", n));
  RETURN_IF_ERROR(GetInt(pair, "k", "quantization_config.weight_block_size[1]", k));
  RETURN_IF_ERROR(CheckRange("quantization_config.weight_block_size[0]", *n, 1, kMaxDim));
  return CheckRange("quantization_config.weight_block_size[1]", *k, 1, kMaxDim);
}

}  // namespace dsinfer::config_json
