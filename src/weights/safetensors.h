// Reading the safetensors format: an 8-byte little-endian header length, a JSON header naming
// each tensor's dtype, shape and [begin, end) byte range, then the raw data section.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "src/core/mapped_file.h"
#include "src/core/numeric.h"

namespace dsinfer {

// One tensor of a checkpoint. `data` points into a mapping (or the buffer given to the parser)
// and may be unaligned; `nbytes` == product(shape) * DTypeSize(dtype).
struct TensorInfo {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  const uint8_t* data;
  size_t nbytes;

  int64_t numel() const;
};

struct SafetensorsHeader {
  std::vector<TensorInfo> tensors;  // sorted by name
  std::map<std::string, std::string> metadata;
};

// Headers larger than this are rejected (the reference implementation's limit).
inline constexpr uint64_t kMaxSafetensorsHeaderBytes = 100'000'000;

// Parses and validates a whole safetensors file held in [data, data + size). Never reads outside
// that range. Errors are InvalidArgument and name the offending tensor; they do not name a file.
absl::StatusOr<SafetensorsHeader> ParseSafetensorsHeader(const uint8_t* data, size_t size);

// A mapped, validated safetensors file.
class SafetensorsFile {
 public:
  // Errors are prefixed with the file path.
  static absl::StatusOr<std::unique_ptr<SafetensorsFile>> Open(const std::string& path);

  const std::string& path() const { return file_->path(); }
  size_t size() const { return file_->size(); }
  const std::vector<TensorInfo>& tensors() const { return header_.tensors; }
  const std::map<std::string, std::string>& metadata() const { return header_.metadata; }
  // nullptr when absent.
  const TensorInfo* Find(const std::string& name) const;

 private:
  SafetensorsFile(std::unique_ptr<MappedFile> file, SafetensorsHeader header)
      : file_(std::move(file)), header_(std::move(header)) {}
  std::unique_ptr<MappedFile> file_;
  SafetensorsHeader header_;
};

// "BF16" -> kBF16 etc. for the dtypes dsinfer reads; false for any other string.
bool ParseSafetensorsDType(const std::string& name, DType* out);

}  // namespace dsinfer
