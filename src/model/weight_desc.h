// What a model program asks a backend to hold: each weight described by its role, its logical
// shape and the checkpoint tensor parts (slices under a sharded layout) it is made of. The
// family's schema (deepseek_weights.cc) decides names, fusions and slices once; backends decide
// storage (precision, FP8 kept or not, packing for their kernels).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "src/weights/weight_store.h"

namespace dsinfer {

enum class WeightRole : uint8_t {
  kLinear,     // GEMM weight [out, in] in the run's precision (FP8 kept where the backend can)
  kLinearF32,  // GEMM weight kept in f32 whatever the precision (the MoE router)
  kVector,     // f32 vector [1, n] (norm weights, router bias)
  kEmbedding,  // [vocab rows, hidden], rows gathered by token id
  kMlaKvB,     // kv_b_proj [heads * (nope + v), kv_lora]: MLA's absorption and expansion
  kExperts,    // routed experts: per local expert the parts gate [I, D], up [I, D], down [D, I]
};

// One checkpoint tensor, or a slice of a 2-D one.
struct TensorPart {
  std::string name;
  std::vector<int64_t> shape;        // the tensor's full shape in the checkpoint
  std::optional<TensorSlice> slice;  // the part used (2-D tensors), else all of it
  int64_t rows() const { return slice ? slice->rows : (shape.size() == 2 ? shape[0] : 1); }
  int64_t cols() const { return slice ? slice->cols : shape.back(); }
};

struct WeightDesc {
  std::string key;  // names the weight in messages ("layers.3.attn.qkv_a")
  WeightRole role = WeightRole::kLinear;
  std::vector<TensorPart> parts;  // row-concatenated (kExperts: gate, up, down per expert)
  int64_t rows = 0, cols = 0;     // logical shape (kExperts: [inter, hidden] of one expert)
  // kExperts: this rank holds experts [first_expert, first_expert + local_experts).
  int64_t first_expert = 0, local_experts = 0, total_experts = 0;
};

// Reads parts of a checkpoint in the format a backend asks for.
class WeightReader {
 public:
  explicit WeightReader(const WeightStore& store) : store_(store) {}
  absl::Status ReadF32(const TensorPart& p, float* out) const {
    return store_.ReadF32(p.name, p.shape, out, p.slice ? &*p.slice : nullptr);
  }
  // Rounded to bf16 (a BF16 tensor bit for bit; FP8 dequantised first).
  absl::Status ReadBf16(const TensorPart& p, uint16_t* out) const {
    return store_.ReadBf16(p.name, p.shape, out, p.slice ? &*p.slice : nullptr);
  }
  bool IsFp8(const TensorPart& p) const {
    auto t = store_.StoredType(p.name);
    return t.ok() && *t == DType::kF8E4M3;
  }
  // FailedPrecondition when the slice does not start on a scale block.
  absl::StatusOr<WeightStore::Fp8Slice> ReadFp8(const TensorPart& p) const {
    return store_.ReadFp8(p.name, p.shape, p.slice ? &*p.slice : nullptr);
  }
  const WeightStore& store() const { return store_; }

 private:
  const WeightStore& store_;
};

}  // namespace dsinfer
