// The numeric precision a run asks for: f32 (DeepSeek's reference, exactly) or bf16 (bf16
// weights and GEMM inputs, f32 accumulation and f32 everything else). FP8 checkpoints keep their
// e4m3 weights with block scales in either, unless asked to dequantise at load.
#pragma once

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace dsinfer {

enum class Precision : uint8_t { kF32, kBF16 };

inline const char* PrecisionName(Precision p) { return p == Precision::kBF16 ? "bf16" : "f32"; }

inline absl::StatusOr<Precision> ParsePrecision(absl::string_view name) {  // "f32" | "bf16"
  if (name == "f32" || name == "float32") return Precision::kF32;
  if (name == "bf16" || name == "bfloat16") return Precision::kBF16;
  return absl::InvalidArgumentError(absl::StrCat("dtype \"", name, "\" is not one of f32, bf16"));
}

}  // namespace dsinfer
