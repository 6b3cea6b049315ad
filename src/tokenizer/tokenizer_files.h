// Shared by the tokenizer file readers (tokenizer.json and tiktoken.model + tokenizer_config.json):
// reading a JSON file with errors that name it, and the largest token id accepted.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "src/core/mapped_file.h"
#include "src/core/status_macros.h"

namespace dsinfer::tokenizer_files {

// Ids above this are refused (they would make the per-id tables huge).
inline constexpr int64_t kMaxTokenId = (1 << 24) - 1;

inline absl::StatusOr<nlohmann::json> ParseJsonFile(const std::string& path) {
  ASSIGN_OR_RETURN(std::unique_ptr<MappedFile> file, MappedFile::Open(path));
  const char* begin = reinterpret_cast<const char*>(file->data());
  try {
    return nlohmann::json::parse(begin, begin + file->size());
  } catch (const nlohmann::json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": malformed JSON: ", e.what()));
  }
}

}  // namespace dsinfer::tokenizer_files
