// WeightStore: opening (index or single file) and dtype conversion of tensors.
#include "src/weights/weight_store.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "src/core/numeric.h"
#include "src/core/status_macros.h"
#include "src/core/thread_pool.h"
#include "kernels/cpu/fp4.h"
#include "src/weights/fp8_block.h"
#include "src/weights/safetensors_index.h"

namespace dsinfer {
namespace {

// Below this many elements a conversion runs on the calling thread.
constexpr int64_t kParallelElements = int64_t{1} << 18;

std::string ShapeString(absl::Span<const int64_t> shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) absl::StrAppend(&s, i ? ", " : "", shape[i]);
  return s + "]";
}

absl::string_view AbslView(std::string_view s) { return absl::string_view(s.data(), s.size()); }

absl::StatusOr<std::string> ReadTextFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return absl::InternalError(absl::StrCat("cannot read ", path));
  return text.str();
}

bool IsRegularFile(const std::string& path) {
  std::error_code ec;
  return std::filesystem::is_regular_file(path, ec);
}

// fn(begin, end) over [0, n), on the default pool when the work is large. The pool takes one
// caller at a time, hence the lock.
void ParallelRange(int64_t n, int64_t elements_per_item,
                   const std::function<void(int64_t, int64_t)>& fn) {
  if (n * elements_per_item < kParallelElements) {
    fn(0, n);
    return;
  }
  static std::mutex pool_mu;
  std::lock_guard<std::mutex> lock(pool_mu);
  ThreadPool::Default().ParallelFor(n, fn);
}

// f16 -> f32 without a table, so that the loop vectorises: the 15 magnitude bits placed at f32
// bit 13, times 2^112, give normals and subnormals exactly; exponent 31 is inf/NaN.
inline float F16BitsToF32(uint16_t h) {
  uint32_t mag = h & 0x7fffu;
  uint32_t bits = mag << 13;
  float f;
  std::memcpy(&f, &bits, 4);
  f *= 0x1p112f;
  uint32_t special = 0x7f800000u | bits;  // inf (mantissa 0) or NaN
  float inf_nan;
  std::memcpy(&inf_nan, &special, 4);
  f = mag >= 0x7c00u ? inf_nan : f;
  return (h & 0x8000u) ? -f : f;
}

inline uint16_t LoadU16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}

inline float LoadF32(const uint8_t* p) {
  float v;
  std::memcpy(&v, p, 4);
  return v;
}

// Converts elements [b, e) of a non-FP8 tensor.
void ConvertToF32(DType dtype, const uint8_t* src, int64_t b, int64_t e, float* out) {
  switch (dtype) {
    case DType::kF32:
      std::memcpy(out + b, src + b * 4, static_cast<size_t>(e - b) * 4);
      break;
    case DType::kBF16:
      for (int64_t i = b; i < e; ++i) out[i] = Bf16ToF32(LoadU16(src + i * 2));
      break;
    case DType::kF16:
      for (int64_t i = b; i < e; ++i) out[i] = F16BitsToF32(LoadU16(src + i * 2));
      break;
    case DType::kF8E8M0:
      for (int64_t i = b; i < e; ++i) out[i] = cpu::E8M0ToF32(src[i]);
      break;
    case DType::kI32:
      for (int64_t i = b; i < e; ++i) {
        int32_t v;
        std::memcpy(&v, src + i * 4, 4);
        out[i] = static_cast<float>(v);
      }
      break;
    case DType::kI64:
      for (int64_t i = b; i < e; ++i) {
        int64_t v;
        std::memcpy(&v, src + i * 8, 8);
        out[i] = static_cast<float>(v);
      }
      break;
    default:
      DSINFER_CHECK(false);  // FP8 / FP4 need their scales; raw bytes are not numbers
  }
}

void ConvertToBf16(DType dtype, const uint8_t* src, int64_t b, int64_t e, uint16_t* out) {
  switch (dtype) {
    case DType::kF32:
      for (int64_t i = b; i < e; ++i) out[i] = F32ToBf16(LoadF32(src + i * 4));
      break;
    case DType::kBF16:
      std::memcpy(out + b, src + b * 2, static_cast<size_t>(e - b) * 2);
      break;
    case DType::kF16:
      for (int64_t i = b; i < e; ++i) out[i] = F32ToBf16(F16BitsToF32(LoadU16(src + i * 2)));
      break;
    case DType::kF8E8M0:
      for (int64_t i = b; i < e; ++i) out[i] = F32ToBf16(cpu::E8M0ToF32(src[i]));
      break;
    case DType::kI32:
    case DType::kI64: {
      std::vector<float> f(static_cast<size_t>(e - b));
      ConvertToF32(dtype, src + b * DTypeSize(dtype), 0, e - b, f.data());
      for (int64_t i = b; i < e; ++i) out[i] = F32ToBf16(f[i - b]);
      break;
    }
    default:
      DSINFER_CHECK(false);
  }
}

// "x.weight" -> "x.weight_scale_inv"; other names get "_scale_inv" appended too.
std::string ScaleNameFor(std::string_view name) {
  return absl::StrCat(AbslView(name), "_scale_inv");
}

}  // namespace

absl::StatusOr<std::unique_ptr<WeightStore>> WeightStore::Open(const std::string& model_dir,
                                                               ProgressFn progress) {
  std::unique_ptr<WeightStore> store(new WeightStore());
  store->model_dir_ = model_dir;
  store->progress_ = std::move(progress);
  const std::string index_path = model_dir + "/" + kSafetensorsIndexFile;
  const std::string single_path = model_dir + "/" + kSafetensorsSingleFile;

  if (IsRegularFile(index_path)) {
    ASSIGN_OR_RETURN(std::string text, ReadTextFile(index_path));
    absl::StatusOr<std::map<std::string, std::string>> weight_map = ParseSafetensorsIndex(text);
    if (!weight_map.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(index_path, ": ", weight_map.status().message()));
    }
    // Open every shard once, in name order.
    std::map<std::string, const SafetensorsFile*> shards;
    for (const auto& [tensor, shard] : *weight_map) shards.emplace(shard, nullptr);
    for (auto& [shard, file] : shards) {
      const std::string path = model_dir + "/" + shard;
      if (!IsRegularFile(path)) {
        return absl::NotFoundError(
            absl::StrCat("shard ", path, " listed in ", index_path, " does not exist"));
      }
      ASSIGN_OR_RETURN(std::unique_ptr<SafetensorsFile> f, SafetensorsFile::Open(path));
      file = f.get();
      store->files_.push_back(std::move(f));
    }
    for (const auto& [tensor, shard] : *weight_map) {
      const SafetensorsFile* file = shards.at(shard);
      const TensorInfo* info = file->Find(tensor);
      if (info == nullptr) {
        return absl::NotFoundError(absl::StrCat("tensor \"", tensor, "\" is listed in ", index_path,
                                                " but missing from ", file->path()));
      }
      store->entries_.emplace(tensor, Entry{info, file});
    }
  } else if (IsRegularFile(single_path)) {
    ASSIGN_OR_RETURN(std::unique_ptr<SafetensorsFile> f, SafetensorsFile::Open(single_path));
    for (const TensorInfo& t : f->tensors()) store->entries_.emplace(t.name, Entry{&t, f.get()});
    store->files_.push_back(std::move(f));
  } else {
    return absl::NotFoundError(absl::StrCat(model_dir, " has neither ", kSafetensorsIndexFile,
                                            " nor ", kSafetensorsSingleFile));
  }
  for (const auto& [name, e] : store->entries_) store->total_bytes_ += e.info->nbytes;
  store->progress_total_ = store->total_bytes_;
  return store;
}

void WeightStore::SetFp8BlockSize(int64_t block_n, int64_t block_k) {
  DSINFER_CHECK(block_n > 0 && block_k > 0);
  block_n_ = block_n;
  block_k_ = block_k;
}

bool WeightStore::Has(std::string_view name) const { return entries_.find(name) != entries_.end(); }

absl::StatusOr<WeightStore::Entry> WeightStore::Find(std::string_view name) const {
  auto it = entries_.find(name);
  if (it == entries_.end()) {
    return absl::NotFoundError(
        absl::StrCat("tensor \"", AbslView(name), "\" not found in ", model_dir_));
  }
  return it->second;
}

absl::StatusOr<const TensorInfo*> WeightStore::Get(std::string_view name) const {
  ASSIGN_OR_RETURN(Entry e, Find(name));
  return e.info;
}

std::vector<std::string> WeightStore::Names() const {
  std::vector<std::string> names;
  names.reserve(entries_.size());
  for (const auto& [name, e] : entries_) names.push_back(name);
  return names;
}

absl::Status WeightStore::ReadF32(std::string_view name, absl::Span<const int64_t> expected_shape,
                                  float* out, const TensorSlice* slice) const {
  return Read(name, expected_shape, OutType::kF32, out, slice);
}

absl::Status WeightStore::ReadBf16(std::string_view name, absl::Span<const int64_t> expected_shape,
                                   uint16_t* out, const TensorSlice* slice) const {
  return Read(name, expected_shape, OutType::kBf16, out, slice);
}

absl::Status WeightStore::Read(std::string_view name, absl::Span<const int64_t> expected_shape,
                               OutType out_type, void* out, const TensorSlice* slice) const {
  ASSIGN_OR_RETURN(Entry e, Find(name));
  const TensorInfo& t = *e.info;
  if (IsFp4(name)) return ReadFp4Dequant(name, e, expected_shape, out_type, out, slice);
  if (t.dtype == DType::kU8 || t.dtype == DType::kI8 || t.dtype == DType::kF4E2M1x2) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor \"", t.name, "\" in ", e.file->path(), ": ", DTypeName(t.dtype),
                     " is read only as packed FP4 with an E8M0 scale (.scale or .weight_scale_inv)"));
  }
  if (absl::Span<const int64_t>(t.shape) != expected_shape) {
    return absl::InvalidArgumentError(absl::StrCat("tensor \"", t.name, "\" in ", e.file->path(),
                                                   ": expected shape ", ShapeString(expected_shape),
                                                   " but the file has ", ShapeString(t.shape)));
  }
  const int64_t n = t.numel();
  uint64_t bytes = t.nbytes;
  // A slice of a 1-D tensor reads it as one row: [1, n].
  const int64_t full_rows = t.shape.size() == 2 ? t.shape[0] : 1;
  const int64_t full_cols = t.shape.empty() ? 1 : t.shape.back();
  if (slice != nullptr) {
    if (t.shape.empty() || t.shape.size() > 2 || slice->row0 < 0 || slice->col0 < 0 ||
        slice->rows < 0 || slice->cols < 0 || slice->row0 + slice->rows > full_rows ||
        slice->col0 + slice->cols > full_cols) {
      return absl::InvalidArgumentError(absl::StrCat(
          "tensor \"", t.name, "\": slice rows [", slice->row0, ", ", slice->row0 + slice->rows,
          ") cols [", slice->col0, ", ", slice->col0 + slice->cols, ") is outside shape ",
          ShapeString(t.shape)));
    }
    bytes = static_cast<uint64_t>(slice->rows * full_cols * DTypeSize(t.dtype));
  }

  if (t.dtype != DType::kF8E4M3 && slice != nullptr) {
    const int64_t esize = DTypeSize(t.dtype);
    ParallelRange(slice->rows, slice->cols, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const uint8_t* src = t.data + ((slice->row0 + r) * full_cols + slice->col0) * esize;
        if (out_type == OutType::kF32) {
          ConvertToF32(t.dtype, src, 0, slice->cols, static_cast<float*>(out) + r * slice->cols);
        } else {
          ConvertToBf16(t.dtype, src, 0, slice->cols,
                        static_cast<uint16_t*>(out) + r * slice->cols);
        }
      }
    });
    AddProgress(bytes);
    return absl::OkStatus();
  }
  if (t.dtype != DType::kF8E4M3) {
    ParallelRange(n, 1, [&](int64_t b, int64_t end) {
      if (out_type == OutType::kF32) {
        ConvertToF32(t.dtype, t.data, b, end, static_cast<float*>(out));
      } else {
        ConvertToBf16(t.dtype, t.data, b, end, static_cast<uint16_t*>(out));
      }
    });
    AddProgress(bytes);
    return absl::OkStatus();
  }

  if (t.shape.size() != 2) {
    return absl::InvalidArgumentError(absl::StrCat("tensor \"", t.name, "\" in ", e.file->path(),
                                                   ": F8_E4M3 tensor must be 2-D, has shape ",
                                                   ShapeString(t.shape)));
  }
  const std::string scale_name = ScaleNameFor(name);
  auto scale_it = entries_.find(scale_name);
  if (scale_it == entries_.end()) {
    return absl::NotFoundError(absl::StrCat("tensor \"", t.name, "\" is F8_E4M3 but its scale \"",
                                            scale_name, "\" is missing from ", model_dir_));
  }
  const TensorInfo& s = *scale_it->second.info;
  const int64_t rows = t.shape[0], cols = t.shape[1];
  const int64_t want_scale[2] = {CeilDiv(rows, block_n_), CeilDiv(cols, block_k_)};
  if (s.dtype != DType::kF32) {
    return absl::InvalidArgumentError(absl::StrCat("scale tensor \"", scale_name, "\" in ",
                                                   scale_it->second.file->path(),
                                                   ": dtype must be F32, is ", DTypeName(s.dtype)));
  }
  if (absl::Span<const int64_t>(s.shape) != absl::Span<const int64_t>(want_scale)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "scale tensor \"", scale_name, "\" in ", scale_it->second.file->path(), ": expected shape ",
        ShapeString(want_scale), " for ", block_n_, "x", block_k_, " blocks of ",
        ShapeString(t.shape), " but the file has ", ShapeString(s.shape)));
  }
  if (slice != nullptr) {
    // Dequantise whole rows of the slice a few at a time, keep its columns.
    ParallelRange(slice->rows, cols, [&](int64_t r0, int64_t r1) {
      constexpr int64_t kRowsPerStep = 16;
      std::vector<float> tmp(static_cast<size_t>(kRowsPerStep * cols));
      for (int64_t r = r0; r < r1; r += kRowsPerStep) {
        const int64_t r_end = std::min(r1, r + kRowsPerStep);
        DequantizeFp8BlockRows(t.data, s.data, cols, block_n_, block_k_, slice->row0 + r,
                               slice->row0 + r_end, tmp.data());
        for (int64_t i = r; i < r_end; ++i) {
          const float* src = tmp.data() + (i - r) * cols + slice->col0;
          if (out_type == OutType::kF32) {
            std::memcpy(static_cast<float*>(out) + i * slice->cols, src, slice->cols * 4);
          } else {
            uint16_t* dst = static_cast<uint16_t*>(out) + i * slice->cols;
            for (int64_t j = 0; j < slice->cols; ++j) dst[j] = F32ToBf16(src[j]);
          }
        }
      }
    });
    AddProgress(bytes);
    return absl::OkStatus();
  }
  ParallelRange(rows, cols, [&](int64_t r0, int64_t r1) {
    if (out_type == OutType::kF32) {
      DequantizeFp8BlockRows(t.data, s.data, cols, block_n_, block_k_, r0, r1,
                             static_cast<float*>(out) + r0 * cols);
      return;
    }
    // bf16 output: dequantise a few rows at a time through a small f32 buffer.
    constexpr int64_t kRowsPerStep = 16;
    std::vector<float> tmp(static_cast<size_t>(kRowsPerStep * cols));
    uint16_t* dst = static_cast<uint16_t*>(out);
    for (int64_t r = r0; r < r1; r += kRowsPerStep) {
      int64_t r_end = std::min(r1, r + kRowsPerStep);
      DequantizeFp8BlockRows(t.data, s.data, cols, block_n_, block_k_, r, r_end, tmp.data());
      for (int64_t i = 0; i < (r_end - r) * cols; ++i) dst[r * cols + i] = F32ToBf16(tmp[i]);
    }
  });
  AddProgress(bytes + s.nbytes);
  return absl::OkStatus();
}

absl::StatusOr<DType> WeightStore::StoredType(std::string_view name) const {
  ASSIGN_OR_RETURN(Entry e, Find(name));
  return e.info->dtype;
}

absl::StatusOr<WeightStore::Fp8Slice> WeightStore::ReadFp8(
    std::string_view name, absl::Span<const int64_t> expected_shape,
    const TensorSlice* slice) const {
  ASSIGN_OR_RETURN(Entry e, Find(name));
  const TensorInfo& t = *e.info;
  if (t.dtype != DType::kF8E4M3 || t.shape.size() != 2 ||
      absl::Span<const int64_t>(t.shape) != expected_shape) {
    return absl::InvalidArgumentError(absl::StrCat("tensor \"", t.name, "\" in ", e.file->path(),
                                                   ": expected F8_E4M3 of shape ",
                                                   ShapeString(expected_shape), ", the file has ",
                                                   DTypeName(t.dtype), " ", ShapeString(t.shape)));
  }
  const int64_t rows = t.shape[0], cols = t.shape[1];
  const TensorSlice whole{.row0 = 0, .rows = rows, .col0 = 0, .cols = cols};
  const TensorSlice& sl = slice != nullptr ? *slice : whole;
  if (sl.row0 < 0 || sl.col0 < 0 || sl.rows < 0 || sl.cols < 0 || sl.row0 + sl.rows > rows ||
      sl.col0 + sl.cols > cols) {
    return absl::InvalidArgumentError(absl::StrCat("tensor \"", t.name, "\": slice outside shape ",
                                                   ShapeString(t.shape)));
  }
  if (sl.row0 % block_n_ != 0 || sl.col0 % block_k_ != 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "tensor \"", t.name, "\": slice at row ", sl.row0, ", column ", sl.col0,
        " does not start on a ", block_n_, "x", block_k_, " scale block"));
  }
  const std::string scale_name = ScaleNameFor(name);
  auto scale_it = entries_.find(scale_name);
  if (scale_it == entries_.end()) {
    return absl::NotFoundError(absl::StrCat("tensor \"", t.name, "\" is F8_E4M3 but its scale \"",
                                            scale_name, "\" is missing from ", model_dir_));
  }
  const TensorInfo& s = *scale_it->second.info;
  const int64_t want_scale[2] = {CeilDiv(rows, block_n_), CeilDiv(cols, block_k_)};
  if (s.dtype != DType::kF32 ||
      absl::Span<const int64_t>(s.shape) != absl::Span<const int64_t>(want_scale)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "scale tensor \"", scale_name, "\" in ", scale_it->second.file->path(),
        ": expected F32 of shape ", ShapeString(want_scale), " for ", block_n_, "x", block_k_,
        " blocks of ", ShapeString(t.shape), ", the file has ", DTypeName(s.dtype), " ",
        ShapeString(s.shape)));
  }
  Fp8Slice out;
  out.rows = sl.rows;
  out.cols = sl.cols;
  out.block_n = block_n_;
  out.block_k = block_k_;
  out.scale_rows = CeilDiv(sl.rows, block_n_);
  out.scale_cols = CeilDiv(sl.cols, block_k_);
  out.codes.resize(static_cast<size_t>(sl.rows * sl.cols));
  ParallelRange(sl.rows, sl.cols, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r)
      std::memcpy(out.codes.data() + r * sl.cols, t.data + (sl.row0 + r) * cols + sl.col0,
                  static_cast<size_t>(sl.cols));
  });
  out.scale_inv.resize(static_cast<size_t>(out.scale_rows * out.scale_cols));
  const int64_t br0 = sl.row0 / block_n_, bc0 = sl.col0 / block_k_;
  for (int64_t i = 0; i < out.scale_rows; ++i)
    std::memcpy(out.scale_inv.data() + i * out.scale_cols,
                s.data + ((br0 + i) * want_scale[1] + bc0) * 4,
                static_cast<size_t>(out.scale_cols) * 4);  // unaligned source: memcpy
  AddProgress(static_cast<uint64_t>(sl.rows * cols + out.scale_rows * want_scale[1] * 4));
  return out;
}

void WeightStore::AddProgress(uint64_t bytes) const {
  std::lock_guard<std::mutex> lock(progress_mu_);
  progress_done_ = std::min(progress_done_ + bytes, progress_total_);
  if (progress_) progress_(progress_done_, progress_total_);
}

void WeightStore::FinishProgress() const {
  std::lock_guard<std::mutex> lock(progress_mu_);
  progress_done_ = progress_total_;
  if (progress_) progress_(progress_done_, progress_total_);
}

}  // namespace dsinfer
