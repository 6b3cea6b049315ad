#include "src/tokenizer/added_token_matcher.h"

#include <cstring>
#include <map>

namespace dsinfer {

AddedTokenMatcher::AddedTokenMatcher(
    const std::vector<std::pair<std::string_view, int32_t>>& tokens) {
  // Build with ordered child maps, then flatten to sorted edge arrays.
  struct BuildNode {
    int32_t token_id = -1;
    std::map<uint8_t, int32_t> children;
  };
  std::vector<BuildNode> build(1);
  for (const auto& [content, id] : tokens) {
    if (content.empty()) continue;
    first_byte_[static_cast<uint8_t>(content[0])] = true;
    int32_t node = 0;
    for (char ch : content) {
      const uint8_t b = static_cast<uint8_t>(ch);
      auto it = build[node].children.find(b);
      if (it == build[node].children.end()) {
        build.emplace_back();
        it = build[node].children.emplace(b, static_cast<int32_t>(build.size() - 1)).first;
      }
      node = it->second;
    }
    build[node].token_id = id;
  }
  int distinct_first_bytes = 0;
  for (int b = 0; b < 256; ++b) {
    if (first_byte_[b]) {
      ++distinct_first_bytes;
      single_first_byte_ = b;
    }
  }
  if (distinct_first_bytes != 1) single_first_byte_ = -1;
  nodes_.resize(build.size());
  for (size_t i = 0; i < build.size(); ++i) {
    nodes_[i].token_id = build[i].token_id;
    nodes_[i].edge_begin = static_cast<uint32_t>(edges_.size());
    nodes_[i].edge_count = static_cast<uint32_t>(build[i].children.size());
    for (const auto& [b, child] : build[i].children) edges_.push_back({b, child});
  }
}

size_t AddedTokenMatcher::LongestAt(std::string_view text, size_t pos, int32_t* id) const {
  size_t best = 0;
  int32_t node = 0;
  for (size_t i = pos; i < text.size(); ++i) {
    const uint8_t b = static_cast<uint8_t>(text[i]);
    const Node& n = nodes_[node];
    int32_t next = -1;
    for (uint32_t e = n.edge_begin; e < n.edge_begin + n.edge_count; ++e) {
      if (edges_[e].byte == b) {
        next = edges_[e].child;
        break;
      }
    }
    if (next < 0) break;
    node = next;
    if (nodes_[node].token_id >= 0) {
      best = i + 1 - pos;
      *id = nodes_[node].token_id;
    }
  }
  return best;
}

void AddedTokenMatcher::Split(std::string_view text,
                              absl::FunctionRef<void(std::string_view, int32_t)> segment) const {
  size_t plain_begin = 0;
  size_t pos = 0;
  if (empty()) {
    if (!text.empty()) segment(text, -1);
    return;
  }
  while (pos < text.size()) {
    if (single_first_byte_ >= 0) {
      const void* hit = std::memchr(text.data() + pos, single_first_byte_, text.size() - pos);
      if (hit == nullptr) break;
      pos = static_cast<const char*>(hit) - text.data();
    } else if (!first_byte_[static_cast<uint8_t>(text[pos])]) {
      ++pos;
      continue;
    }
    int32_t id = -1;
    const size_t len = LongestAt(text, pos, &id);
    if (len == 0) {
      ++pos;
      continue;
    }
    if (pos > plain_begin) segment(text.substr(plain_begin, pos - plain_begin), -1);
    segment(text.substr(pos, len), id);
    pos += len;
    plain_begin = pos;
  }
  if (plain_begin < text.size()) segment(text.substr(plain_begin), -1);
}

}  // namespace dsinfer
