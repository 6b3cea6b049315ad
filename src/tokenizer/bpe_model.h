// Byte-level BPE model: vocabulary, ranked merges, and the merge loop that turns the bytes of
// one pre-tokenized word into token ids. Same results as HF tokenizers' BPE (no dropout, no unk,
// no byte fallback): repeatedly merge the adjacent pair with the lowest merge rank, leftmost
// first on ties, until no adjacent pair has a merge.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "src/tokenizer/bpe_word_cache.h"

namespace dsinfer {

class BpeModel {
 public:
  // `vocab`: token string (byte-level alphabet) -> id, ids distinct and >= 0.
  // `merges`: pairs of token strings in rank order; both sides and their concatenation must be
  // in the vocabulary. A pair listed twice keeps its last rank (as HF does).
  static absl::StatusOr<std::unique_ptr<BpeModel>> Create(
      absl::flat_hash_map<std::string, int32_t> vocab,
      const std::vector<std::pair<std::string, std::string>>& merges);

  // A tiktoken vocabulary: `token_bytes[r]` holds the raw bytes of the token with rank (= id) r;
  // ranks are distinct token byte strings and include all 256 single bytes (checked by the
  // caller, tiktoken_model.cc). tiktoken ranks an adjacent pair by the rank of the pair's
  // concatenation, so every split of a token into two tokens becomes a merge with the token's
  // rank (ties stay leftmost-first, as in tiktoken). tiktoken also emits a word that is itself a
  // token as that token without merging; Encode does the same for this model.
  static std::unique_ptr<BpeModel> FromTiktokenRanks(const std::vector<std::string>& token_bytes);

  // HF BPE's ignore_merges (Llama-3): Encode emits a word whose byte-level string is a
  // vocabulary token as that token, without merging (as FromTiktokenRanks models do).
  void IgnoreMerges();

  // Appends the ids of `word` (raw bytes of one pre-tokenized piece) to `ids`. Bytes whose
  // alphabet character is missing from the vocabulary are dropped, as HF does without unk.
  // Thread-safe.
  void Encode(std::string_view word, std::vector<int32_t>* ids) const;

  std::optional<int32_t> TokenId(std::string_view token) const;
  // Vocabulary string of `id`, or nullptr when no vocabulary entry has that id.
  const std::string* TokenString(int32_t id) const;
  // Largest id in the vocabulary (-1 if empty).
  int32_t max_id() const { return static_cast<int32_t>(token_strings_.size()) - 1; }

 private:
  struct MergeRule {
    uint32_t rank;
    int32_t new_id;
  };
  static constexpr uint32_t kNoRank = UINT32_MAX;
  static constexpr size_t kSmallWord = 32;  // words up to this many symbols use MergeSmall
  static constexpr size_t kMaxRetainedSymbols = 1 << 14;  // per-thread scratch kept between calls

  BpeModel() : cache_(1 << 16) {}
  const MergeRule* FindMerge(int32_t left, int32_t right) const {
    auto it = merges_.find((static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) |
                           static_cast<uint32_t>(right));
    return it == merges_.end() ? nullptr : &it->second;
  }
  // Merge loops over symbols[0, n); return the new count. Small: rank array scanned for the
  // minimum (cheap for short words). Large: linked symbols with a min-heap of candidate pairs.
  size_t MergeSmall(int32_t* symbols, size_t n) const;
  size_t MergeLarge(int32_t* symbols, size_t n) const;

  absl::flat_hash_map<std::string, int32_t> vocab_;
  std::vector<std::string> token_strings_;           // by id
  std::vector<bool> has_token_;                      // by id: some vocabulary entry has this id
  std::array<int32_t, 256> byte_ids_;                // id of each byte's alphabet character, or -1
  absl::flat_hash_map<uint64_t, MergeRule> merges_;  // (left << 32 | right) -> rule
  // tiktoken models only: raw token bytes -> id, looked up before merging (empty otherwise).
  absl::flat_hash_map<std::string, int32_t> whole_words_;
  mutable BpeWordCache cache_;
};

}  // namespace dsinfer
