#include "src/tokenizer/unicode_additions.h"

#include <algorithm>
#include <bitset>
#include <cstdint>
#include <vector>

namespace dsinfer {
namespace {

constexpr UnicodeAddition kUnicodeAdditions[] = {
#define DSINFER_UNICODE_ADDITION(group, first, last) {group, first, last},
#include "src/tokenizer/unicode_additions.inc"
#undef DSINFER_UNICODE_ADDITION
};

// Membership index: which 256-code-point blocks hold an addition, and all ranges sorted.
struct Index {
  std::bitset<0x1100> blocks;
  std::vector<std::pair<char32_t, char32_t>> ranges;
  char32_t min_cp = 0x10FFFF;
  Index() {
    for (const UnicodeAddition& a : kUnicodeAdditions) {
      ranges.emplace_back(a.first, a.last);
      min_cp = std::min(min_cp, a.first);
      for (char32_t b = a.first >> 8; b <= (a.last >> 8); ++b) blocks.set(b);
    }
    std::sort(ranges.begin(), ranges.end());
  }
  bool Contains(char32_t cp) const {
    if (cp < min_cp || !blocks.test(cp >> 8)) return false;
    auto it =
        std::upper_bound(ranges.begin(), ranges.end(), std::pair<char32_t, char32_t>(cp, 0x10FFFF));
    return it != ranges.begin() && std::prev(it)->second >= cp;
  }
};

const Index& GetIndex() {
  static const Index index;
  return index;
}

inline bool Cont(uint8_t b) { return (b & 0xC0) == 0x80; }

}  // namespace

absl::Span<const UnicodeAddition> UnicodeAdditions() { return kUnicodeAdditions; }

bool ContainsUnicodeAddition(std::string_view text) {
  const Index& index = GetIndex();
  const auto* p = reinterpret_cast<const uint8_t*>(text.data());
  const size_t n = text.size();
  // Additions start above U+0800, so only 3- and 4-byte sequences need decoding. Ill-formed
  // bytes may decode to odd values here; they only make the check conservative.
  for (size_t i = 0; i < n; ++i) {
    const uint8_t b = p[i];
    if (b < 0xE0) continue;
    char32_t cp;
    if (b < 0xF0) {
      if (i + 2 >= n || !Cont(p[i + 1]) || !Cont(p[i + 2])) continue;
      cp = ((b & 0x0F) << 12) | ((p[i + 1] & 0x3F) << 6) | (p[i + 2] & 0x3F);
      i += 2;
    } else {
      if (i + 3 >= n || !Cont(p[i + 1]) || !Cont(p[i + 2]) || !Cont(p[i + 3])) continue;
      cp = ((b & 0x07) << 18) | ((p[i + 1] & 0x3F) << 12) | ((p[i + 2] & 0x3F) << 6) |
           (p[i + 3] & 0x3F);
      i += 3;
    }
    if (index.Contains(cp)) return true;
  }
  return false;
}

}  // namespace dsinfer
