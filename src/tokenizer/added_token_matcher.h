// Finds added tokens (e.g. "<｜User｜>") written in text: leftmost-longest matching over a byte
// trie, like the Aho-Corasick (LeftmostLongest) matcher of HF's AddedVocabulary.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/functional/function_ref.h"

namespace dsinfer {

class AddedTokenMatcher {
 public:
  // `tokens`: (content, id); contents are non-empty and distinct.
  explicit AddedTokenMatcher(const std::vector<std::pair<std::string_view, int32_t>>& tokens);

  bool empty() const { return nodes_.size() <= 1; }

  // Cuts `text` at every match: calls `segment(text, -1)` for the (non-empty) text between
  // matches and `segment(match, id)` for each match, in order.
  void Split(std::string_view text,
             absl::FunctionRef<void(std::string_view, int32_t)> segment) const;

 private:
  struct Node {
    int32_t token_id = -1;    // id of the token ending here, or -1
    uint32_t edge_begin = 0;  // children: edges_[edge_begin, edge_begin + edge_count)
    uint32_t edge_count = 0;
  };
  struct Edge {
    uint8_t byte;
    int32_t child;
  };
  // Length of the longest token starting at text[pos] (0 if none); its id in `*id`.
  size_t LongestAt(std::string_view text, size_t pos, int32_t* id) const;

  std::vector<Node> nodes_;
  std::vector<Edge> edges_;  // sorted by byte within each node
  std::array<bool, 256> first_byte_{};
  int single_first_byte_ = -1;  // when all tokens start with the same byte: memchr for it
};

}  // namespace dsinfer
