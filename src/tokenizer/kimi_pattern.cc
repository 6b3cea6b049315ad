#include "src/tokenizer/kimi_pattern.h"

#include <cstdint>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "src/tokenizer/utf8.h"

namespace dsinfer {
namespace {

struct Range {
  char32_t first;
  char32_t last;
};

constexpr Range kHan[] = {
#define KIMI_HAN(first, last) {first, last},
#define KIMI_ADD(cls, first, last)
#define KIMI_PYSPACE(first, last)
#include "src/tokenizer/kimi_unicode.inc"
#undef KIMI_HAN
#undef KIMI_ADD
#undef KIMI_PYSPACE
};

constexpr Range kPythonSpace[] = {
#define KIMI_HAN(first, last)
#define KIMI_ADD(cls, first, last)
#define KIMI_PYSPACE(first, last) {first, last},
#include "src/tokenizer/kimi_unicode.inc"
#undef KIMI_HAN
#undef KIMI_ADD
#undef KIMI_PYSPACE
};

struct Addition {
  const char* cls;
  char32_t first;
  char32_t last;
};

constexpr Addition kAdditions[] = {
#define KIMI_HAN(first, last)
#define KIMI_ADD(cls, first, last) {#cls, first, last},
#define KIMI_PYSPACE(first, last)
#include "src/tokenizer/kimi_unicode.inc"
#undef KIMI_HAN
#undef KIMI_ADD
#undef KIMI_PYSPACE
};

std::string Hex(char32_t c) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "\\x{%X}", static_cast<unsigned>(c));
  return buf;
}

std::string RangeItem(char32_t first, char32_t last) {
  return first == last ? Hex(first) : absl::StrCat(Hex(first), "-", Hex(last));
}

// Class-body items (no brackets) for the code points `cls` adds to PCRE2's properties.
std::string Additions(std::string_view cls) {
  std::string out;
  for (const Addition& a : kAdditions) {
    if (cls == a.cls) absl::StrAppend(&out, RangeItem(a.first, a.last));
  }
  return out;
}

std::string HanBody() {
  std::string out;
  for (const Range& r : kHan) absl::StrAppend(&out, RangeItem(r.first, r.last));
  return out;
}

// Unicode White_Space, which is what \s means in Rust's regex crate (and so in tiktoken).
constexpr char kSpaceBody[] =
    "\\x{9}-\\x{D}\\x{20}\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}"
    "\\x{202F}\\x{205F}\\x{3000}";

std::string LetterBody() { return absl::StrCat("\\p{L}", Additions("letter")); }
std::string NumberBody() { return absl::StrCat("\\p{N}", Additions("number")); }

// `[X&&[^\p{Han}]]` of the original: the lookahead rejects Han before the class is tried.
std::string MinusHan(const std::string& body) {
  return absl::StrCat("(?:(?![", HanBody(), "])[", body, "])");
}
std::string Upper() {
  return MinusHan(absl::StrCat("\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}", Additions("upper")));
}
std::string Lower() {
  return MinusHan(absl::StrCat("\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}", Additions("lower")));
}

std::string BuildPattern() {
  const std::string han = absl::StrCat("[", HanBody(), "]");
  const std::string space = absl::StrCat("[", kSpaceBody, "]");
  const std::string not_space = absl::StrCat("[^", kSpaceBody, "]");
  const std::string lead = absl::StrCat("[^\\r\\n", LetterBody(), NumberBody(), "]?");
  const std::string contraction = "(?i:'s|'t|'re|'ve|'m|'ll|'d)?";
  const std::string upper = Upper();
  const std::string lower = Lower();
  // Branch by branch as in tokenization_kimi.py; PCRE2 and fancy-regex are both backtracking
  // engines with leftmost-first alternation, so the same branch wins at every position.
  return absl::StrCat(
      han, "+",                                                                // [\p{Han}]+
      "|", lead, upper, "*", lower, "+", contraction,                          //
      "|", lead, upper, "+", lower, "*", contraction,                          //
      "|[", NumberBody(), "]{1,3}",                                            // \p{N}{1,3}
      "| ?[^", kSpaceBody, LetterBody(), NumberBody(), "]+[\\r\\n]*",          //
      "|", space, "*[\\r\\n]+",                                                // \s*[\r\n]+
      "|", space, "+(?!", not_space, ")",                                      // \s+(?!\S)
      "|", space, "+");                                                        // \s+
}

bool IsPythonSpace(char32_t c) {
  for (const Range& r : kPythonSpace) {
    if (c < r.first) return false;
    if (c <= r.last) return true;
  }
  return false;
}

// The code point at text[pos] (of length `len`, from utf8::CharLength), or U+FFFD for a byte
// that starts no well-formed sequence (Python never sees those; they count as non-space).
char32_t CodePointAt(std::string_view text, size_t pos, size_t len) {
  const auto b = [&](size_t i) { return static_cast<uint8_t>(text[pos + i]); };
  if (len == 1) return b(0) < 0x80 ? b(0) : 0xFFFD;
  if (len == 2) return ((b(0) & 0x1F) << 6) | (b(1) & 0x3F);
  if (len == 3) return ((b(0) & 0x0F) << 12) | ((b(1) & 0x3F) << 6) | (b(2) & 0x3F);
  return ((b(0) & 0x07) << 18) | ((b(1) & 0x3F) << 12) | ((b(2) & 0x3F) << 6) | (b(3) & 0x3F);
}

}  // namespace

void ForEachKimiChunk(std::string_view text, absl::FunctionRef<void(std::string_view)> chunk) {
  // Characters, not bytes: no cut is possible when the text has few enough bytes.
  if (text.size() <= kKimiMaxRunChars) {
    chunk(text);
    return;
  }
  size_t chars = 0;       // characters seen in the current 400k block
  size_t run = 0;         // length of the current space / non-space run
  bool run_is_space = false;
  size_t slice_start = 0;
  for (size_t pos = 0; pos < text.size();) {
    const size_t len = utf8::CharLength(text, pos);
    const bool space = IsPythonSpace(CodePointAt(text, pos, len));
    if (chars == kKimiMaxEncodeChars) {  // a new 400k block: the run count starts over
      chunk(text.substr(slice_start, pos - slice_start));
      slice_start = pos;
      chars = 0;
    }
    if (chars == 0) {
      run = 1;
      run_is_space = space;
    } else if (space != run_is_space) {
      run = 1;
      run_is_space = space;
    } else if (++run > kKimiMaxRunChars) {
      chunk(text.substr(slice_start, pos - slice_start));
      slice_start = pos;
      run = 1;
    }
    ++chars;
    pos += len;
  }
  chunk(text.substr(slice_start));
}

const char kKimiTiktokenPattern[] =
    R"([\p{Han}]+|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}&&[^\p{Han}]]*)"
    R"([\p{Ll}\p{Lm}\p{Lo}\p{M}&&[^\p{Han}]]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|)"
    R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}&&[^\p{Han}]]+)"
    R"([\p{Ll}\p{Lm}\p{Lo}\p{M}&&[^\p{Han}]]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|)"
    R"(\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

const std::string& KimiPcre2Pattern() {
  static const std::string* pattern = new std::string(BuildPattern());
  return *pattern;
}

std::string KimiPcre2Class(std::string_view name) {
  if (name == "han") return absl::StrCat("[", HanBody(), "]");
  if (name == "upper") return Upper();
  if (name == "lower") return Lower();
  if (name == "letter") return absl::StrCat("[", LetterBody(), "]");
  if (name == "number") return absl::StrCat("[", NumberBody(), "]");
  if (name == "space") return absl::StrCat("[", kSpaceBody, "]");
  return {};
}

}  // namespace dsinfer
