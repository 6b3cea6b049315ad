// Automatic prefix caching of full KV blocks (as vLLM's automatic prefix caching): a full block
// is keyed by hash(parent entry, its 64 token ids), so a chain of entries names a token prefix.
// The cache holds one BlockPool reference per registered block; a block whose only reference is
// the cache's is evictable, least recently released first.
//
// Entries are verified, not trusted to the hash: each stores its parent's serial and its tokens,
// and serials are never reused, so a hit always has exactly the same token prefix.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/types/span.h"
#include "src/kv_cache/block_pool.h"

namespace dsinfer {

class PrefixCache {
 public:
  static constexpr uint64_t kRootSerial = 0;    // parent of a sequence's first block
  static constexpr uint64_t kNoSerial = ~0ull;  // chain broken (hash clash): stop registering
  // Per-tenant chain roots: with them a tenant's prompts only ever match its own cached blocks,
  // so cache timing reveals nothing of what another tenant sent. Serials never reach 2^63.
  static uint64_t TenantRoot(int32_t tenant) { return (uint64_t{1} << 63) + static_cast<uint64_t>(tenant); }

  struct Hit {
    int32_t block;
    uint64_t serial;
  };

  explicit PrefixCache(int32_t num_blocks);

  // The cached entry for the full block `tokens` (kKvBlockSize ids) following entry `parent`.
  bool Find(uint64_t parent, absl::Span<const int32_t> tokens, Hit* hit) const;
  // Longest chain of cached entries over the first `max_blocks` full blocks of `tokens`, starting
  // from `root` (kRootSerial, or a TenantRoot).
  void Match(absl::Span<const int32_t> tokens, int64_t max_blocks, std::vector<Hit>* out,
             uint64_t root = kRootSerial) const;

  // Registers `block` (written and held by a sequence) under (parent, tokens) and takes a pool
  // reference. Returns its serial, or kNoSerial when another entry owns the hash.
  uint64_t Insert(BlockPool& pool, uint64_t parent, absl::Span<const int32_t> tokens,
                  int32_t block);
  // A sequence took a reference to the cached `block` (it is no longer evictable).
  void OnAcquire(int32_t block);
  // A sequence released `block`; if only the cache's reference is left it becomes evictable
  // (most recently used end).
  void OnRelease(const BlockPool& pool, int32_t block);
  // Drops the entry of an evictable block and the cache's reference (the block becomes free).
  void Evict(BlockPool& pool, int32_t block);

  bool cached(int32_t block) const { return entries_[block].serial != kNoSerial; }
  bool evictable(int32_t block) const { return in_lru_[block]; }
  int32_t num_cached() const { return num_cached_; }
  int32_t num_evictable() const { return num_evictable_; }
  // Evictable blocks, least recently used first: lru_front(), then lru_next(b); -1 ends.
  int32_t lru_front() const { return head_; }
  int32_t lru_next(int32_t block) const { return next_[block]; }

 private:
  struct Entry {
    uint64_t serial = kNoSerial;
    uint64_t parent = kNoSerial;
    uint64_t key = 0;
    std::vector<int32_t> tokens;
  };
  static uint64_t Key(uint64_t parent, absl::Span<const int32_t> tokens);
  void LruPushBack(int32_t block);
  void LruRemove(int32_t block);

  std::vector<Entry> entries_;                    // [num_blocks]
  absl::flat_hash_map<uint64_t, int32_t> index_;  // key -> block
  std::vector<int32_t> prev_, next_;              // intrusive LRU list of evictable blocks
  std::vector<bool> in_lru_;
  int32_t head_ = -1, tail_ = -1;
  uint64_t next_serial_ = 1;
  int32_t num_cached_ = 0;
  int32_t num_evictable_ = 0;
};

}  // namespace dsinfer
