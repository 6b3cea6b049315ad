// What a model's paged KV cache needs, as the runner reports it: every sizing path (server,
// CLI, `dsinfer plan`) computes bytes from this one struct, so the row layout of a model family
// is derived in exactly one place (the family's program, e.g. MlaKvCacheSpec in src/model).
#pragma once

#include <cstdint>
#include <string>

#include "src/kv_cache/block_pool.h"

namespace dsinfer {

enum class KvDType : uint8_t { kF32, kBF16 };

inline int64_t KvDTypeBytes(KvDType t) { return t == KvDType::kF32 ? 4 : 2; }
inline const char* KvDTypeName(KvDType t) { return t == KvDType::kF32 ? "f32" : "bf16"; }

struct KvCacheSpec {
  int64_t num_layers = 0;
  int64_t row_width = 0;  // elements one token stores per layer
  KvDType dtype = KvDType::kF32;
  int64_t block_size = kKvBlockSize;  // tokens per block
  // A second per-layer component of every token, in its own paged cache addressed by the same
  // block tables (DeepSeek Sparse Attention's FP8 index keys with their scales); 0: none.
  int64_t index_row_bytes = 0;

  int64_t bytes_per_token() const {
    return num_layers * (row_width * KvDTypeBytes(dtype) + index_row_bytes);
  }
  int64_t bytes_per_block() const { return bytes_per_token() * block_size; }
  // Blocks of one sequence of `tokens` tokens.
  int64_t BlocksFor(int64_t tokens) const { return (tokens + block_size - 1) / block_size; }
  std::string DebugString() const {
    return std::to_string(num_layers) + " layers x " + std::to_string(row_width) + " " +
           KvDTypeName(dtype) +
           (index_row_bytes > 0 ? " + " + std::to_string(index_row_bytes) + " index bytes" : "") +
           " per token, " + std::to_string(bytes_per_token()) + " bytes";
  }
};

}  // namespace dsinfer
