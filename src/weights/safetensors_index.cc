#include "src/weights/safetensors_index.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "nlohmann/json.hpp"

namespace dsinfer {

absl::StatusOr<std::map<std::string, std::string>> ParseSafetensorsIndex(
    std::string_view json_text) {
  using Json = nlohmann::json;
  Json root = Json::parse(json_text.begin(), json_text.end(), nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded()) return absl::InvalidArgumentError("not valid JSON");
  if (!root.is_object()) return absl::InvalidArgumentError("top level must be a JSON object");
  auto wm = root.find("weight_map");
  if (wm == root.end() || !wm->is_object()) {
    return absl::InvalidArgumentError("missing \"weight_map\" object");
  }
  if (wm->empty()) return absl::InvalidArgumentError("\"weight_map\" is empty");
  std::map<std::string, std::string> out;
  for (auto it = wm->begin(); it != wm->end(); ++it) {
    if (!it->is_string()) {
      return absl::InvalidArgumentError(
          absl::StrCat("weight_map entry for \"", it.key(), "\" is not a string"));
    }
    const std::string& shard = it->get_ref<const std::string&>();
    bool unsafe = shard.empty() || shard[0] == '/';
    for (absl::string_view part : absl::StrSplit(shard, '/')) unsafe |= part == "..";
    if (unsafe) {
      return absl::InvalidArgumentError(absl::StrCat("weight_map entry for \"", it.key(),
                                                     "\" names shard \"", shard,
                                                     "\" outside the model directory"));
    }
    out.emplace(it.key(), shard);
  }
  return out;
}

}  // namespace dsinfer
