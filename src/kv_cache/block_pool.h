// Bookkeeping of a paged KV cache: a pool of fixed-size blocks with reference counts, and the
// block table of one sequence. It knows blocks and token counts, nothing about models or bytes.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/status.h"

namespace dsinfer {

inline constexpr int64_t kKvBlockSize = 64;  // tokens per block

class BlockPool {
 public:
  explicit BlockPool(int32_t num_blocks);

  int32_t num_blocks() const { return static_cast<int32_t>(ref_counts_.size()); }
  int32_t num_free() const { return static_cast<int32_t>(free_.size()); }

  // Takes n free blocks (ref count 1 each) or fails without taking any.
  absl::Status Allocate(int32_t n, std::vector<int32_t>* out);
  void AddRef(int32_t block);
  // Drops one reference; the block returns to the free list at zero.
  void Release(int32_t block);
  int32_t ref_count(int32_t block) const { return ref_counts_[block]; }

 private:
  std::vector<int32_t> free_;  // LIFO: recently freed blocks are reused first (warm memory)
  std::vector<int32_t> ref_counts_;
};

// Blocks of one sequence in order; block i holds tokens [i*kKvBlockSize, (i+1)*kKvBlockSize).
class BlockTable {
 public:
  const std::vector<int32_t>& blocks() const { return blocks_; }
  int64_t capacity_tokens() const { return static_cast<int64_t>(blocks_.size()) * kKvBlockSize; }

  // Grows the table so it can hold num_tokens tokens.
  absl::Status Reserve(BlockPool& pool, int64_t num_tokens);
  // Returns every block to the pool.
  void Release(BlockPool& pool);

 private:
  std::vector<int32_t> blocks_;
};

inline int64_t BlocksForTokens(int64_t tokens) {
  return (tokens + kKvBlockSize - 1) / kKvBlockSize;
}

}  // namespace dsinfer
