// Cache of BPE results per pre-tokenized word (raw bytes -> token ids). Thread-safe: sharded,
// one mutex per shard. Bounded: a shard that reaches its capacity is cleared, so memory stays
// bounded and the cache follows the current text.
#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/inlined_vector.h"
#include "absl/types/span.h"

namespace dsinfer {

class BpeWordCache {
 public:
  // Words longer than this are not cached.
  static constexpr size_t kMaxWordBytes = 256;

  explicit BpeWordCache(size_t capacity);

  // Appends the cached ids of `word` to `ids` and returns true, or returns false.
  bool Lookup(std::string_view word, std::vector<int32_t>* ids) const;
  void Insert(std::string_view word, absl::Span<const int32_t> ids);

 private:
  static constexpr size_t kShards = 16;
  struct Shard {
    mutable std::mutex mu;
    absl::flat_hash_map<std::string, absl::InlinedVector<int32_t, 4>> map;
  };
  static size_t ShardOf(std::string_view word);

  size_t shard_capacity_;
  std::array<Shard, kShards> shards_;
};

}  // namespace dsinfer
