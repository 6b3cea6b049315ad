// A 2-D row-major view into a backend's memory (host for the CPU backend, device for CUDA): what
// the model program passes to backend ops. Views own nothing; the backend's step scratch or
// weights own the bytes.
#pragma once

#include <cstdint>

#include "src/core/status_macros.h"

namespace dsinfer {

enum class ElemType : uint8_t { kF32, kBF16, kI32, kF8E4M3 };

inline int64_t ElemBytes(ElemType t) {
  switch (t) {
    case ElemType::kF32:
    case ElemType::kI32: return 4;
    case ElemType::kBF16: return 2;
    case ElemType::kF8E4M3: return 1;
  }
  return 0;
}

inline const char* ElemName(ElemType t) {
  switch (t) {
    case ElemType::kF32: return "f32";
    case ElemType::kBF16: return "bf16";
    case ElemType::kI32: return "i32";
    case ElemType::kF8E4M3: return "f8e4m3";
  }
  return "?";
}

struct Tensor {
  void* data = nullptr;
  ElemType dtype = ElemType::kF32;
  int64_t rows = 0, cols = 0;
  int64_t ld = 0;  // row stride in elements (>= cols)

  bool empty() const { return rows == 0 || cols == 0; }
  bool contiguous() const { return ld == cols || rows <= 1; }
  int64_t bytes() const { return rows * cols * ElemBytes(dtype); }
  template <typename T>
  T* as() const {
    return static_cast<T*>(data);
  }
  // Rows [r0, r0 + n).
  Tensor Rows(int64_t r0, int64_t n) const {
    DSINFER_CHECK(r0 >= 0 && n >= 0 && r0 + n <= rows);
    return {static_cast<char*>(data) + r0 * ld * ElemBytes(dtype), dtype, n, cols, ld};
  }
  // Columns [c0, c0 + n) of every row (same row stride).
  Tensor Cols(int64_t c0, int64_t n) const {
    DSINFER_CHECK(c0 >= 0 && n >= 0 && c0 + n <= cols);
    return {static_cast<char*>(data) + c0 * ElemBytes(dtype), dtype, rows, n, ld};
  }
};

}  // namespace dsinfer
