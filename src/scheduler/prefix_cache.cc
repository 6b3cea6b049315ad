#include "src/scheduler/prefix_cache.h"

#include <algorithm>

#include "absl/hash/hash.h"
#include "src/core/status_macros.h"

namespace dsinfer {

PrefixCache::PrefixCache(int32_t num_blocks)
    : entries_(num_blocks), prev_(num_blocks, -1), next_(num_blocks, -1), in_lru_(num_blocks) {}

uint64_t PrefixCache::Key(uint64_t parent, absl::Span<const int32_t> tokens) {
  return absl::HashOf(parent, tokens);
}

bool PrefixCache::Find(uint64_t parent, absl::Span<const int32_t> tokens, Hit* hit) const {
  auto it = index_.find(Key(parent, tokens));
  if (it == index_.end()) return false;
  const Entry& e = entries_[it->second];
  if (e.parent != parent ||
      !std::equal(tokens.begin(), tokens.end(), e.tokens.begin(), e.tokens.end())) {
    return false;  // hash clash: a different prefix
  }
  *hit = {it->second, e.serial};
  return true;
}

void PrefixCache::Match(absl::Span<const int32_t> tokens, int64_t max_blocks,
                        std::vector<Hit>* out, uint64_t root) const {
  max_blocks = std::min<int64_t>(max_blocks, static_cast<int64_t>(tokens.size()) / kKvBlockSize);
  uint64_t parent = root;
  for (int64_t i = 0; i < max_blocks; ++i) {
    Hit hit;
    if (!Find(parent, tokens.subspan(i * kKvBlockSize, kKvBlockSize), &hit)) return;
    out->push_back(hit);
    parent = hit.serial;
  }
}

uint64_t PrefixCache::Insert(BlockPool& pool, uint64_t parent, absl::Span<const int32_t> tokens,
                             int32_t block) {
  DSINFER_CHECK(static_cast<int64_t>(tokens.size()) == kKvBlockSize);
  DSINFER_CHECK(!cached(block));
  const uint64_t key = Key(parent, tokens);
  if (!index_.try_emplace(key, block).second) return kNoSerial;
  Entry& e = entries_[block];
  e.serial = next_serial_++;
  e.parent = parent;
  e.key = key;
  e.tokens.assign(tokens.begin(), tokens.end());
  pool.AddRef(block);
  ++num_cached_;
  return e.serial;
}

void PrefixCache::OnAcquire(int32_t block) {
  if (in_lru_[block]) LruRemove(block);
}

void PrefixCache::OnRelease(const BlockPool& pool, int32_t block) {
  if (cached(block) && pool.ref_count(block) == 1 && !in_lru_[block]) LruPushBack(block);
}

void PrefixCache::Evict(BlockPool& pool, int32_t block) {
  DSINFER_CHECK(in_lru_[block] && pool.ref_count(block) == 1);
  LruRemove(block);
  Entry& e = entries_[block];
  index_.erase(e.key);
  e.serial = kNoSerial;
  e.tokens.clear();
  --num_cached_;
  pool.Release(block);
}

void PrefixCache::LruPushBack(int32_t block) {
  prev_[block] = tail_;
  next_[block] = -1;
  if (tail_ >= 0)
    next_[tail_] = block;
  else
    head_ = block;
  tail_ = block;
  in_lru_[block] = true;
  ++num_evictable_;
}

void PrefixCache::LruRemove(int32_t block) {
  const int32_t p = prev_[block], n = next_[block];
  if (p >= 0)
    next_[p] = n;
  else
    head_ = n;
  if (n >= 0)
    prev_[n] = p;
  else
    tail_ = p;
  prev_[block] = next_[block] = -1;
  in_lru_[block] = false;
  --num_evictable_;
}

}  // namespace dsinfer
