// All tensors of a checkpoint directory (one model.safetensors, or shards listed by
// model.safetensors.index.json), mapped read-only and converted on request.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "src/weights/safetensors.h"

namespace dsinfer {

// Called with (bytes read so far, total bytes) after each Read*; may come from any thread that
// reads, but never concurrently.
using ProgressFn = std::function<void(uint64_t done, uint64_t total)>;

// Rows [row0, row0 + rows) and columns [col0, col0 + cols) of a 2-D tensor: what one rank of a
// tensor-parallel layout loads. Only those rows' bytes (and their FP8 scales) are read.
struct TensorSlice {
  int64_t row0 = 0, rows = 0, col0 = 0, cols = 0;
};

class WeightStore {
 public:
  static absl::StatusOr<std::unique_ptr<WeightStore>> Open(const std::string& model_dir,
                                                           ProgressFn progress = nullptr);

  // FP8 block size (config.json quantization_config.weight_block_size); 128 x 128 by default.
  void SetFp8BlockSize(int64_t block_n, int64_t block_k);

  bool Has(std::string_view name) const;
  absl::StatusOr<const TensorInfo*> Get(std::string_view name) const;
  std::vector<std::string> Names() const;  // sorted
  const std::string& model_dir() const { return model_dir_; }

  // Copies a tensor into out (expected_shape's element count), converting BF16/F16/F32 and
  // dequantising F8_E4M3 with its `<name minus .weight>.weight_scale_inv` block scales.
  // Large tensors are converted on ThreadPool::Default(): do not call from inside its work.
  // With a slice, out receives only that [rows, cols] part of the (expected_shape) tensor.
  absl::Status ReadF32(std::string_view name, absl::Span<const int64_t> expected_shape,
                       float* out, const TensorSlice* slice = nullptr) const;
  // As ReadF32, rounding to bf16 (a BF16 tensor is copied bit for bit).
  absl::Status ReadBf16(std::string_view name, absl::Span<const int64_t> expected_shape,
                        uint16_t* out, const TensorSlice* slice = nullptr) const;

  // An F8_E4M3 tensor's slice as stored: codes [slice rows, slice cols] and the f32 scale_inv
  // blocks covering it [ceil(rows / block_n), ceil(cols / block_k)] (block b of the slice is
  // block row0 / block_n + b of the tensor). The slice must start on a block boundary
  // (FailedPrecondition otherwise: the caller dequantises instead).
  struct Fp8Slice {
    std::vector<uint8_t> codes;
    std::vector<float> scale_inv;
    int64_t rows = 0, cols = 0, scale_rows = 0, scale_cols = 0, block_n = 0, block_k = 0;
  };
  absl::StatusOr<Fp8Slice> ReadFp8(std::string_view name, absl::Span<const int64_t> expected_shape,
                                   const TensorSlice* slice = nullptr) const;
  // A packed FP4 E2M1 tensor's slice as stored (DeepSeek-V4 experts): codes [slice rows,
  // slice cols / 2] (two a byte, low nibble first) and its E8M0 scales [slice rows,
  // ceil(slice cols / 32)]. expected_shape is the logical [rows, cols] (the file holds
  // [rows, cols / 2] bytes). The scale is `<x>.scale` for `<x>.weight` (DeepSeek's name) or
  // `<x>.weight_scale_inv` (transformers'), F8_E8M0 or U8, shape [rows, ceil(cols / 32)]; a
  // missing, misshapen or NaN (0xFF) scale is an error naming it. The slice must start on a
  // 32-column block and have an even width (FailedPrecondition otherwise: dequantise instead).
  struct Fp4Slice {
    std::vector<uint8_t> codes;
    std::vector<uint8_t> scales;
    int64_t rows = 0, cols = 0, scale_cols = 0;
  };
  absl::StatusOr<Fp4Slice> ReadFp4(std::string_view name, absl::Span<const int64_t> expected_shape,
                                   const TensorSlice* slice = nullptr) const;
  // Packed FP4: stored as F4, or as U8 / I8 with an E8M0 (or U8) scale companion.
  bool IsFp4(std::string_view name) const;
  // The shape a tensor has as values: the stored shape, with an FP4 tensor's last dimension
  // counted in values (twice its bytes).
  absl::StatusOr<std::vector<int64_t>> LogicalShape(std::string_view name) const;
  // The stored format of a tensor (kF8E4M3 for block-quantised weights).
  absl::StatusOr<DType> StoredType(std::string_view name) const;
  int64_t fp8_block_n() const { return block_n_; }
  int64_t fp8_block_k() const { return block_k_; }

  // Progress runs from 0 to the bytes of all tensors; loaders that skip some (MTP layers) can
  // set the total they will read, and FinishProgress reports completion either way.
  void set_progress_total(uint64_t bytes) { progress_total_ = bytes; }
  uint64_t total_bytes() const { return total_bytes_; }
  void FinishProgress() const;

 private:
  struct Entry {
    const TensorInfo* info;
    const SafetensorsFile* file;
  };
  enum class OutType { kF32, kBf16 };

  WeightStore() = default;
  absl::StatusOr<Entry> Find(std::string_view name) const;
  absl::Status Read(std::string_view name, absl::Span<const int64_t> expected_shape,
                    OutType out_type, void* out, const TensorSlice* slice) const;
  void AddProgress(uint64_t bytes) const;
  // fp4_read.cc: the checked scale of FP4 tensor `t` (logical [rows, cols]).
  absl::StatusOr<Entry> Fp4Scale(std::string_view name, const Entry& t, int64_t rows,
                                 int64_t cols) const;
  absl::Status ReadFp4Dequant(std::string_view name, const Entry& e,
                              absl::Span<const int64_t> expected_shape, OutType out_type,
                              void* out, const TensorSlice* slice) const;

  std::string model_dir_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, Entry, std::less<>> entries_;
  int64_t block_n_ = 128, block_k_ = 128;
  uint64_t total_bytes_ = 0;
  uint64_t progress_total_ = 0;
  ProgressFn progress_;
  mutable std::mutex progress_mu_;
  mutable uint64_t progress_done_ = 0;
};

}  // namespace dsinfer
