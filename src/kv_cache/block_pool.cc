#include "src/kv_cache/block_pool.h"

#include "absl/strings/str_cat.h"
#include "src/core/status_macros.h"

namespace dsinfer {

BlockPool::BlockPool(int32_t num_blocks) : ref_counts_(num_blocks, 0) {
  free_.reserve(num_blocks);
  for (int32_t b = num_blocks - 1; b >= 0; --b) free_.push_back(b);
}

absl::Status BlockPool::Allocate(int32_t n, std::vector<int32_t>* out) {
  if (n > num_free()) {
    return absl::ResourceExhaustedError(absl::StrCat("KV cache: need ", n, " blocks, ",
                                                     num_free(), " of ", num_blocks(), " free"));
  }
  for (int32_t i = 0; i < n; ++i) {
    int32_t b = free_.back();
    free_.pop_back();
    ref_counts_[b] = 1;
    out->push_back(b);
  }
  return absl::OkStatus();
}

void BlockPool::AddRef(int32_t block) {
  DSINFER_CHECK(ref_counts_[block] > 0);
  ++ref_counts_[block];
}

void BlockPool::Release(int32_t block) {
  DSINFER_CHECK(ref_counts_[block] > 0);
  if (--ref_counts_[block] == 0) free_.push_back(block);
}

absl::Status BlockTable::Reserve(BlockPool& pool, int64_t num_tokens) {
  const int64_t need = BlocksForTokens(num_tokens) - static_cast<int64_t>(blocks_.size());
  if (need <= 0) return absl::OkStatus();
  return pool.Allocate(static_cast<int32_t>(need), &blocks_);
}

void BlockTable::Release(BlockPool& pool) {
  for (int32_t b : blocks_) pool.Release(b);
  blocks_.clear();
}

}  // namespace dsinfer
