// WeightStore's packed FP4 E2M1 tensors (DeepSeek-V4 routed experts): the scale companion and
// its checks, reading codes as stored, and dequantising (kernels/cpu/fp4.h defines the format).
#include <algorithm>
#include <cstring>
#include <mutex>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "kernels/cpu/fp4.h"
#include "src/core/numeric.h"
#include "src/core/status_macros.h"
#include "src/core/thread_pool.h"
#include "src/weights/fp8_block.h"
#include "src/weights/weight_store.h"

namespace dsinfer {
namespace {

using cpu::kFp4BlockK;

std::string Shape(absl::Span<const int64_t> s) { return absl::StrCat("[", absl::StrJoin(s, ", "), "]"); }

// The scale names a packed tensor may carry, DeepSeek's first: x.weight -> x.scale, then
// x.weight_scale_inv.
std::vector<std::string> ScaleNames(std::string_view name) {
  std::vector<std::string> out;
  const absl::string_view n(name.data(), name.size());
  if (absl::EndsWith(n, ".weight")) out.push_back(absl::StrCat(n.substr(0, n.size() - 7), ".scale"));
  out.push_back(absl::StrCat(n, "_scale_inv"));
  return out;
}

bool IsScaleType(DType t) { return t == DType::kF8E8M0 || t == DType::kU8; }

// As weight_store.cc: large conversions on the default pool, one caller at a time.
void ParallelRows(int64_t n, int64_t per_row, const std::function<void(int64_t, int64_t)>& fn) {
  if (n * per_row < (int64_t{1} << 18)) {
    fn(0, n);
    return;
  }
  static std::mutex pool_mu;
  std::lock_guard<std::mutex> lock(pool_mu);
  ThreadPool::Default().ParallelFor(n, fn);
}

}  // namespace

bool WeightStore::IsFp4(std::string_view name) const {
  auto it = entries_.find(name);
  if (it == entries_.end()) return false;
  const DType t = it->second.info->dtype;
  if (t == DType::kF4E2M1x2) return true;
  if (t != DType::kU8 && t != DType::kI8) return false;
  for (const std::string& s : ScaleNames(name)) {
    auto sit = entries_.find(s);
    if (sit != entries_.end() && IsScaleType(sit->second.info->dtype)) return true;
  }
  return false;
}

absl::StatusOr<std::vector<int64_t>> WeightStore::LogicalShape(std::string_view name) const {
  ASSIGN_OR_RETURN(Entry e, Find(name));
  std::vector<int64_t> shape = e.info->shape;
  if (IsFp4(name) && !shape.empty()) shape.back() *= 2;
  return shape;
}

absl::StatusOr<WeightStore::Entry> WeightStore::Fp4Scale(std::string_view name, const Entry& e,
                                                         int64_t rows, int64_t cols) const {
  const std::vector<std::string> names = ScaleNames(name);
  const Entry* found = nullptr;
  std::string scale_name;
  for (const std::string& s : names) {
    auto it = entries_.find(s);
    if (it != entries_.end()) {
      found = &it->second;
      scale_name = s;
      break;
    }
  }
  if (found == nullptr) {
    return absl::NotFoundError(absl::StrCat("tensor \"", e.info->name, "\" is packed FP4 but its scale \"",
                                            absl::StrJoin(names, "\" or \""), "\" is missing from ",
                                            model_dir_));
  }
  const TensorInfo& s = *found->info;
  const int64_t want[2] = {rows, CeilDiv(cols, kFp4BlockK)};
  if (!IsScaleType(s.dtype) || absl::Span<const int64_t>(s.shape) != absl::Span<const int64_t>(want)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "scale tensor \"", scale_name, "\" in ", found->file->path(), ": expected F8_E8M0 (or U8) of shape ",
        Shape(want), " (one per ", kFp4BlockK, " values of FP4 ", Shape({rows, cols}), "), the file has ",
        DTypeName(s.dtype), " ", Shape(s.shape)));
  }
  const uint8_t* nan = std::find(s.data, s.data + s.nbytes, cpu::kE8M0NaN);
  if (nan != s.data + s.nbytes) {
    const int64_t i = nan - s.data;
    return absl::InvalidArgumentError(absl::StrCat("scale tensor \"", scale_name, "\" in ",
                                                   found->file->path(), ": block [", i / want[1], ", ",
                                                   i % want[1], "] is NaN (0xFF)"));
  }
  return *found;
}

namespace {

// The logical [rows, cols] of packed tensor t against expected_shape, or an error naming it.
absl::Status CheckFp4Shape(const TensorInfo& t, const std::string& path,
                           absl::Span<const int64_t> expected_shape) {
  if (t.shape.size() != 2 || expected_shape.size() != 2 || expected_shape[0] != t.shape[0] ||
      expected_shape[1] != 2 * t.shape[1]) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tensor \"", t.name, "\" in ", path, ": expected FP4 values of shape ", Shape(expected_shape),
        " (bytes [rows, cols / 2]) but the file has ", DTypeName(t.dtype), " ", Shape(t.shape)));
  }
  return absl::OkStatus();
}

absl::Status CheckSlice(const TensorInfo& t, const TensorSlice& sl, int64_t rows, int64_t cols) {
  if (sl.row0 < 0 || sl.col0 < 0 || sl.rows < 0 || sl.cols < 0 || sl.row0 + sl.rows > rows ||
      sl.col0 + sl.cols > cols) {
    return absl::InvalidArgumentError(absl::StrCat("tensor \"", t.name, "\": slice outside FP4 shape ",
                                                   Shape({rows, cols})));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<WeightStore::Fp4Slice> WeightStore::ReadFp4(std::string_view name,
                                                           absl::Span<const int64_t> expected_shape,
                                                           const TensorSlice* slice) const {
  ASSIGN_OR_RETURN(Entry e, Find(name));
  const TensorInfo& t = *e.info;
  if (!IsFp4(name)) {
    return absl::InvalidArgumentError(absl::StrCat("tensor \"", t.name, "\" in ", e.file->path(),
                                                   ": expected packed FP4, the file has ",
                                                   DTypeName(t.dtype), " ", Shape(t.shape)));
  }
  RETURN_IF_ERROR(CheckFp4Shape(t, e.file->path(), expected_shape));
  const int64_t rows = expected_shape[0], cols = expected_shape[1];
  ASSIGN_OR_RETURN(Entry s, Fp4Scale(name, e, rows, cols));
  const TensorSlice whole{.row0 = 0, .rows = rows, .col0 = 0, .cols = cols};
  const TensorSlice& sl = slice != nullptr ? *slice : whole;
  RETURN_IF_ERROR(CheckSlice(t, sl, rows, cols));
  if (sl.col0 % kFp4BlockK != 0 || sl.cols % 2 != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("tensor \"", t.name, "\": slice at column ", sl.col0, " of width ", sl.cols,
                     " does not start on a ", kFp4BlockK, "-column scale block with an even width"));
  }
  const int64_t full_scale_cols = CeilDiv(cols, kFp4BlockK);
  Fp4Slice out;
  out.rows = sl.rows;
  out.cols = sl.cols;
  out.scale_cols = CeilDiv(sl.cols, kFp4BlockK);
  const int64_t row_bytes = sl.cols / 2, full_row_bytes = cols / 2;
  out.codes.resize(static_cast<size_t>(sl.rows * row_bytes));
  out.scales.resize(static_cast<size_t>(sl.rows * out.scale_cols));
  ParallelRows(sl.rows, row_bytes, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      std::memcpy(out.codes.data() + r * row_bytes,
                  t.data + (sl.row0 + r) * full_row_bytes + sl.col0 / 2, static_cast<size_t>(row_bytes));
      std::memcpy(out.scales.data() + r * out.scale_cols,
                  s.info->data + (sl.row0 + r) * full_scale_cols + sl.col0 / kFp4BlockK,
                  static_cast<size_t>(out.scale_cols));
    }
  });
  AddProgress(static_cast<uint64_t>(sl.rows * (full_row_bytes + full_scale_cols)));
  return out;
}

absl::Status WeightStore::ReadFp4Dequant(std::string_view name, const Entry& e,
                                         absl::Span<const int64_t> expected_shape, OutType out_type,
                                         void* out, const TensorSlice* slice) const {
  const TensorInfo& t = *e.info;
  RETURN_IF_ERROR(CheckFp4Shape(t, e.file->path(), expected_shape));
  const int64_t rows = expected_shape[0], cols = expected_shape[1];
  ASSIGN_OR_RETURN(Entry s, Fp4Scale(name, e, rows, cols));
  const TensorSlice whole{.row0 = 0, .rows = rows, .col0 = 0, .cols = cols};
  const TensorSlice& sl = slice != nullptr ? *slice : whole;
  RETURN_IF_ERROR(CheckSlice(t, sl, rows, cols));
  const int64_t scale_cols = CeilDiv(cols, kFp4BlockK);
  ParallelRows(sl.rows, cols, [&](int64_t r0, int64_t r1) {
    std::vector<float> row(static_cast<size_t>(cols));
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t src = sl.row0 + r;
      cpu::DequantFp4Row(t.data + src * (cols / 2), s.info->data + src * scale_cols, cols, row.data());
      if (out_type == OutType::kF32) {
        std::memcpy(static_cast<float*>(out) + r * sl.cols, row.data() + sl.col0,
                    static_cast<size_t>(sl.cols) * 4);
      } else {
        uint16_t* dst = static_cast<uint16_t*>(out) + r * sl.cols;
        for (int64_t j = 0; j < sl.cols; ++j) dst[j] = F32ToBf16(row[sl.col0 + j]);
      }
    }
  });
  AddProgress(static_cast<uint64_t>(sl.rows * (cols / 2 + scale_cols)));
  return absl::OkStatus();
}

}  // namespace dsinfer
