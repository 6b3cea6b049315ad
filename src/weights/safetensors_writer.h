// Writing safetensors files (tests and the tiny-model generator; dsinfer never rewrites models).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "src/core/numeric.h"

namespace dsinfer {

struct TensorToWrite {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;  // product(shape) * DTypeSize(dtype) bytes, little-endian
                               // (kF4E2M1x2: shape in bytes; written as "F4" with its values)
};

// Writes tensors in the given order after a JSON header padded with spaces to a multiple of 8
// bytes (as Hugging Face's writer does), so the data section starts 8-byte aligned. The file is
// written under a temporary name and renamed into place. Same input, same bytes.
absl::Status WriteSafetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                              const std::map<std::string, std::string>& metadata = {});

// Byte views of typed values for TensorToWrite::bytes.
std::vector<uint8_t> F32Bytes(const std::vector<float>& values);
std::vector<uint8_t> Bf16Bytes(const std::vector<float>& values);  // rounds to nearest even

}  // namespace dsinfer
