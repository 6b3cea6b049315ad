#include "src/tokenizer/utf8.h"

#include <cstdint>

namespace dsinfer::utf8 {
namespace {

enum class SeqStatus { kValid, kInvalid, kIncomplete };

// Classifies the sequence at p[0..n) (n >= 1) following the well-formed byte sequences table of
// the Unicode standard (ch. 3, table 3-7). `len` gets the sequence length (kValid), the length of
// the maximal ill-formed subpart (kInvalid, >= 1), or the truncated length (kIncomplete).
inline SeqStatus Classify(const uint8_t* p, size_t n, size_t* len) {
  const uint8_t b0 = p[0];
  if (b0 < 0x80) {
    *len = 1;
    return SeqStatus::kValid;
  }
  size_t need;
  uint8_t lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    need = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    need = 3;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;  // no surrogates
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    need = 4;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;  // <= U+10FFFF
  } else {
    *len = 1;
    return SeqStatus::kInvalid;
  }
  for (size_t i = 1; i < need; ++i) {
    if (i >= n) {
      *len = i;
      return SeqStatus::kIncomplete;
    }
    const uint8_t b = p[i];
    const bool ok = i == 1 ? (b >= lo && b <= hi) : (b >= 0x80 && b <= 0xBF);
    if (!ok) {
      *len = i;
      return SeqStatus::kInvalid;
    }
  }
  *len = need;
  return SeqStatus::kValid;
}

}  // namespace

bool IsValid(std::string_view text) {
  const auto* p = reinterpret_cast<const uint8_t*>(text.data());
  const size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    // ASCII fast path, 8 bytes at a time.
    while (i + 8 <= n) {
      uint64_t w;
      __builtin_memcpy(&w, p + i, 8);
      if (w & 0x8080808080808080ull) break;
      i += 8;
    }
    if (i >= n) break;
    const uint8_t b = p[i];
    if (b < 0x80) {
      ++i;
      continue;
    }
    // Common case inline: a 3-byte sequence with no surrogate/overlong edge (CJK, kana, ...).
    if (b >= 0xE1 && b <= 0xEC && i + 2 < n && (p[i + 1] & 0xC0) == 0x80 &&
        (p[i + 2] & 0xC0) == 0x80) {
      i += 3;
      continue;
    }
    size_t len;
    if (Classify(p + i, n - i, &len) != SeqStatus::kValid) return false;
    i += len;
  }
  return true;
}

size_t CharLength(std::string_view text, size_t pos) {
  size_t len;
  const auto* p = reinterpret_cast<const uint8_t*>(text.data()) + pos;
  return Classify(p, text.size() - pos, &len) == SeqStatus::kValid ? len : 1;
}

size_t AppendLossy(std::string_view bytes, std::string* out, bool hold_incomplete_tail) {
  const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
  const size_t n = bytes.size();
  size_t i = 0;
  size_t run = 0;  // start of the pending run of valid bytes
  while (i < n) {
    if (p[i] < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    const SeqStatus st = Classify(p + i, n - i, &len);
    if (st == SeqStatus::kValid) {
      i += len;
      continue;
    }
    out->append(bytes.data() + run, i - run);
    if (st == SeqStatus::kIncomplete && hold_incomplete_tail) return i;
    out->append("\xEF\xBF\xBD");  // U+FFFD
    i += len;
    run = i;
  }
  out->append(bytes.data() + run, n - run);
  return n;
}

void AppendCodePoint(char32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

}  // namespace dsinfer::utf8
