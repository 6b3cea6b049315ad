#include "src/tokenizer/bpe_word_cache.h"

#include <algorithm>

#include "src/tokenizer/absl_compat.h"

namespace dsinfer {

BpeWordCache::BpeWordCache(size_t capacity)
    : shard_capacity_(std::max<size_t>(1, capacity / kShards)) {}

size_t BpeWordCache::ShardOf(std::string_view word) {
  // Cheap mix of length and edge bytes; the maps hash the whole word themselves.
  size_t h = word.size() * 0x9E3779B97F4A7C15ull;
  if (!word.empty()) {
    h ^= static_cast<uint8_t>(word.front()) * 0x100000001B3ull;
    h ^= static_cast<uint8_t>(word.back()) << 7;
    h ^= static_cast<uint8_t>(word[word.size() / 2]) << 13;
  }
  return (h ^ (h >> 29)) % kShards;
}

bool BpeWordCache::Lookup(std::string_view word, std::vector<int32_t>* ids) const {
  const Shard& s = shards_[ShardOf(word)];
  std::lock_guard<std::mutex> lock(s.mu);
  auto it = s.map.find(AsAbsl(word));
  if (it == s.map.end()) return false;
  ids->insert(ids->end(), it->second.begin(), it->second.end());
  return true;
}

void BpeWordCache::Insert(std::string_view word, absl::Span<const int32_t> ids) {
  if (word.size() > kMaxWordBytes) return;
  Shard& s = shards_[ShardOf(word)];
  std::lock_guard<std::mutex> lock(s.mu);
  if (s.map.size() >= shard_capacity_) s.map.clear();
  s.map.try_emplace(std::string(word), ids.begin(), ids.end());
}

}  // namespace dsinfer
