#include "src/tokenizer/byte_level.h"

#include <cstdint>

#include "src/tokenizer/utf8.h"

namespace dsinfer::byte_level {
namespace {

// Bytes shown as themselves: '!'..'~', '¡'..'¬', '®'..'ÿ'. The rest get 256, 257, ... in order.
constexpr bool IsPrintableByte(int b) {
  return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

struct Tables {
  std::array<char32_t, 256> to_cp{};
  std::array<int16_t, 324> from_cp{};  // code point (< 324) -> byte, or -1
  std::array<std::string, 256> strings;
  Tables() {
    from_cp.fill(-1);
    char32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      to_cp[b] = IsPrintableByte(b) ? static_cast<char32_t>(b) : next++;
      from_cp[to_cp[b]] = static_cast<int16_t>(b);
      utf8::AppendCodePoint(to_cp[b], &strings[b]);
    }
  }
};

const Tables& GetTables() {
  static const Tables tables;
  return tables;
}

}  // namespace

char32_t ByteToCodePoint(unsigned char b) { return GetTables().to_cp[b]; }

const std::array<std::string, 256>& ByteStrings() { return GetTables().strings; }

void AppendDecodedToken(std::string_view token, std::string* out) {
  const Tables& t = GetTables();
  const size_t start = out->size();
  const auto* p = reinterpret_cast<const uint8_t*>(token.data());
  const size_t n = token.size();
  for (size_t i = 0; i < n;) {
    // Alphabet code points are < 324: one byte (< 0x80) or two bytes (lead 0xC2..0xC5).
    int cp = -1;
    if (p[i] < 0x80) {
      cp = p[i];
      i += 1;
    } else if (p[i] >= 0xC2 && p[i] <= 0xC5 && i + 1 < n && (p[i + 1] & 0xC0) == 0x80) {
      cp = ((p[i] & 0x1F) << 6) | (p[i + 1] & 0x3F);
      i += 2;
    }
    if (cp < 0 || cp >= static_cast<int>(t.from_cp.size()) || t.from_cp[cp] < 0) {
      out->resize(start);
      out->append(token);
      return;
    }
    out->push_back(static_cast<char>(t.from_cp[cp]));
  }
}

}  // namespace dsinfer::byte_level
