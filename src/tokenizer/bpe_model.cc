#include "src/tokenizer/bpe_model.h"

#include <algorithm>

#include "absl/container/inlined_vector.h"
#include "absl/strings/str_cat.h"
#include "src/tokenizer/absl_compat.h"
#include "src/tokenizer/byte_level.h"

namespace dsinfer {

absl::StatusOr<std::unique_ptr<BpeModel>> BpeModel::Create(
    absl::flat_hash_map<std::string, int32_t> vocab,
    const std::vector<std::pair<std::string, std::string>>& merges) {
  std::unique_ptr<BpeModel> m(new BpeModel());
  int32_t max_id = -1;
  for (const auto& [token, id] : vocab) {
    if (id < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("model.vocab: token \"", token, "\" has negative id ", id));
    }
    max_id = std::max(max_id, id);
  }
  m->token_strings_.resize(static_cast<size_t>(max_id) + 1);
  m->has_token_.assign(static_cast<size_t>(max_id) + 1, false);
  for (const auto& [token, id] : vocab) {
    if (m->has_token_[id]) {
      return absl::InvalidArgumentError(absl::StrCat("model.vocab: id ", id, " is used by \"",
                                                     m->token_strings_[id], "\" and \"", token,
                                                     "\""));
    }
    m->has_token_[id] = true;
    m->token_strings_[id] = token;
  }
  m->vocab_ = std::move(vocab);

  const auto& byte_strings = byte_level::ByteStrings();
  for (int b = 0; b < 256; ++b) {
    auto it = m->vocab_.find(byte_strings[b]);
    m->byte_ids_[b] = it == m->vocab_.end() ? -1 : it->second;
  }

  m->merges_.reserve(merges.size());
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const auto& [left, right] = merges[rank];
    auto l = m->vocab_.find(left);
    auto r = m->vocab_.find(right);
    const std::string merged = absl::StrCat(left, right);
    auto n = m->vocab_.find(merged);
    const std::string where =
        absl::StrCat("model.merges[", rank, "] (\"", left, "\", \"", right, "\"): ");
    if (l == m->vocab_.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, "token \"", left, "\" is not in the vocabulary"));
    }
    if (r == m->vocab_.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, "token \"", right, "\" is not in the vocabulary"));
    }
    if (n == m->vocab_.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, "merged token \"", merged, "\" is not in the vocabulary"));
    }
    const uint64_t key = (static_cast<uint64_t>(static_cast<uint32_t>(l->second)) << 32) |
                         static_cast<uint32_t>(r->second);
    m->merges_[key] = MergeRule{static_cast<uint32_t>(rank), n->second};
  }
  return m;
}

std::unique_ptr<BpeModel> BpeModel::FromTiktokenRanks(const std::vector<std::string>& token_bytes) {
  std::unique_ptr<BpeModel> m(new BpeModel());
  const auto& byte_strings = byte_level::ByteStrings();
  const size_t n = token_bytes.size();
  m->token_strings_.resize(n);
  m->has_token_.assign(n, true);
  m->vocab_.reserve(n);
  m->whole_words_.reserve(n);
  for (size_t id = 0; id < n; ++id) {
    // Vocabulary strings in the byte-level alphabet, as for tokenizer.json models, so TokenId,
    // TokenString and the decode tables work the same for both formats.
    std::string s;
    for (char c : token_bytes[id]) s += byte_strings[static_cast<uint8_t>(c)];
    m->vocab_.emplace(s, static_cast<int32_t>(id));
    m->token_strings_[id] = std::move(s);
    m->whole_words_.emplace(token_bytes[id], static_cast<int32_t>(id));
  }
  for (int b = 0; b < 256; ++b) {
    const char c = static_cast<char>(b);
    auto it = m->whole_words_.find(absl::string_view(&c, 1));
    m->byte_ids_[b] = it == m->whole_words_.end() ? -1 : it->second;
  }
  for (size_t id = 0; id < n; ++id) {
    const absl::string_view t = token_bytes[id];
    for (size_t k = 1; k < t.size(); ++k) {
      auto l = m->whole_words_.find(t.substr(0, k));
      if (l == m->whole_words_.end()) continue;
      auto r = m->whole_words_.find(t.substr(k));
      if (r == m->whole_words_.end()) continue;
      const uint64_t key = (static_cast<uint64_t>(static_cast<uint32_t>(l->second)) << 32) |
                           static_cast<uint32_t>(r->second);
      m->merges_[key] = MergeRule{static_cast<uint32_t>(id), static_cast<int32_t>(id)};
    }
  }
  return m;
}

std::optional<int32_t> BpeModel::TokenId(std::string_view token) const {
  auto it = vocab_.find(AsAbsl(token));
  if (it == vocab_.end()) return std::nullopt;
  return it->second;
}

const std::string* BpeModel::TokenString(int32_t id) const {
  if (id < 0 || id > max_id() || !has_token_[id]) return nullptr;
  return &token_strings_[id];
}

void BpeModel::IgnoreMerges() {
  const auto& byte_strings = byte_level::ByteStrings();
  for (const auto& [token, id] : vocab_) {
    // Only tokens written entirely in the byte-level alphabet stand for a byte string.
    std::string bytes, again;
    byte_level::AppendDecodedToken(token, &bytes);
    for (unsigned char b : bytes) again += byte_strings[b];
    if (again == token) whole_words_.emplace(bytes, id);
  }
}

void BpeModel::Encode(std::string_view word, std::vector<int32_t>* ids) const {
  if (word.empty()) return;
  if (!whole_words_.empty()) {
    auto it = whole_words_.find(AsAbsl(word));
    if (it != whole_words_.end()) {
      ids->push_back(it->second);
      return;
    }
  }
  if (word.size() == 1) {
    const int32_t id = byte_ids_[static_cast<uint8_t>(word[0])];
    if (id >= 0) ids->push_back(id);
    return;
  }
  const bool cacheable = word.size() <= BpeWordCache::kMaxWordBytes;
  if (cacheable && cache_.Lookup(word, ids)) return;

  absl::InlinedVector<int32_t, 64> symbols;
  symbols.reserve(word.size());
  for (char c : word) {
    const int32_t id = byte_ids_[static_cast<uint8_t>(c)];
    if (id >= 0) symbols.push_back(id);
  }
  size_t n = symbols.size();
  n = n <= kSmallWord ? MergeSmall(symbols.data(), n) : MergeLarge(symbols.data(), n);
  ids->insert(ids->end(), symbols.begin(), symbols.begin() + n);
  if (cacheable) cache_.Insert(word, absl::MakeConstSpan(symbols.data(), n));
}

size_t BpeModel::MergeSmall(int32_t* symbols, size_t n) const {
  if (n < 2) return n;
  // rank[i] / new_id[i]: the merge of the pair (symbols[i], symbols[i + 1]).
  std::array<uint32_t, kSmallWord> rank;
  std::array<int32_t, kSmallWord> new_id;
  auto update = [&](size_t i) {
    const MergeRule* m = FindMerge(symbols[i], symbols[i + 1]);
    rank[i] = m ? m->rank : kNoRank;
    new_id[i] = m ? m->new_id : -1;
  };
  for (size_t i = 0; i + 1 < n; ++i) update(i);
  while (n > 1) {
    size_t best = 0;
    for (size_t i = 1; i + 1 < n; ++i) {
      if (rank[i] < rank[best]) best = i;
    }
    if (rank[best] == kNoRank) break;
    symbols[best] = new_id[best];
    // Erase symbol best + 1 (and the pair that started there).
    for (size_t i = best + 1; i + 1 < n; ++i) {
      symbols[i] = symbols[i + 1];
      rank[i] = rank[i + 1];
      new_id[i] = new_id[i + 1];
    }
    --n;
    if (best > 0) update(best - 1);
    if (best + 1 < n) update(best);
  }
  return n;
}

size_t BpeModel::MergeLarge(int32_t* symbols, size_t n) const {
  struct Symbol {
    int32_t id;  // -1 once merged into its left neighbour
    int32_t prev;
    int32_t next;
  };
  struct Candidate {
    uint64_t key;  // rank << 32 | position of the left symbol: smaller merges first
    int32_t left_id;
    int32_t right_id;
    int32_t new_id;
  };
  auto later = [](const Candidate& a, const Candidate& b) { return a.key > b.key; };

  // Per-thread scratch, reused across calls.
  thread_local std::vector<Symbol> sym;
  thread_local std::vector<Candidate> heap;
  sym.resize(n);
  heap.clear();
  for (size_t i = 0; i < n; ++i) {
    sym[i] = {symbols[i], static_cast<int32_t>(i) - 1,
              i + 1 < n ? static_cast<int32_t>(i + 1) : -1};
  }
  auto push = [&](int32_t pos) {
    const int32_t next = sym[pos].next;
    if (next < 0) return;
    const MergeRule* m = FindMerge(sym[pos].id, sym[next].id);
    if (m == nullptr) return;
    heap.push_back({(static_cast<uint64_t>(m->rank) << 32) | static_cast<uint32_t>(pos),
                    sym[pos].id, sym[next].id, m->new_id});
    std::push_heap(heap.begin(), heap.end(), later);
  };
  for (size_t i = 0; i + 1 < n; ++i) push(static_cast<int32_t>(i));

  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), later);
    const Candidate c = heap.back();
    heap.pop_back();
    const int32_t pos = static_cast<int32_t>(c.key & 0xFFFFFFFFu);
    Symbol& left = sym[pos];
    // Stale when either side has changed since the candidate was pushed.
    if (left.id != c.left_id || left.next < 0 || sym[left.next].id != c.right_id) continue;
    Symbol& right = sym[left.next];
    left.id = c.new_id;
    left.next = right.next;
    if (right.next >= 0) sym[right.next].prev = pos;
    right.id = -1;
    if (left.prev >= 0) push(left.prev);
    push(pos);
  }
  size_t out = 0;
  for (int32_t i = 0; i >= 0; i = sym[i].next) symbols[out++] = sym[i].id;
  if (sym.capacity() > kMaxRetainedSymbols) {  // do not keep a huge word's scratch forever
    std::vector<Symbol>().swap(sym);
    std::vector<Candidate>().swap(heap);
  }
  return out;
}

}  // namespace dsinfer
