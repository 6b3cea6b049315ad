// Kimi-K2's pre-tokenizer regex (TikTokenTokenizer.pat_str in tokenization_kimi.py) translated
// from tiktoken's Rust regex syntax to PCRE2. The original intersects classes
// (`[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}&&[^\p{Han}]]`), which PCRE2 10.42 cannot write; each such
// class becomes a negative lookahead for Han followed by the class. Classes are also pinned to
// what tiktoken's engine matches on every code point: \p{Han} is spelled out (Script=Han; PCRE2's
// bare \p{Han} would mean Script_Extensions and take 。、 etc.), \s is Unicode White_Space
// spelled out (PCRE2's \s differs at U+180E/U+0085), and code points assigned after Unicode 14
// (PCRE2 10.42's tables) are added from kimi_unicode.inc. tests/tokenizer_kimi_test.cc checks
// every class on every code point against tables written by tools/gen_kimi_tokenizer_fixture.py.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "absl/functional/function_ref.h"

namespace dsinfer {

// The original pattern, in tiktoken (Rust regex) syntax; for documentation and the fixture tool.
extern const char kKimiTiktokenPattern[];

// The whole pattern in PCRE2 syntax (UTF + UCP), equivalent to kKimiTiktokenPattern.
const std::string& KimiPcre2Pattern();

// One class of the translation, as a PCRE2 item matching one character, for the equivalence
// test: "han", "upper" ([Lu Lt Lm Lo M] minus Han), "lower" ([Ll Lm Lo M] minus Han),
// "letter" (\p{L}), "number" (\p{N}), "space" (\s). Empty for an unknown name.
std::string KimiPcre2Class(std::string_view name);

// tokenization_kimi.py's encode() does not hand text to tiktoken whole: it cuts it into blocks
// of 400,000 characters, and cuts each block so that no slice has more than 25,000 consecutive
// characters that are all whitespace or all non-whitespace (Python's str.isspace()); each slice
// is encoded on its own (special tokens included). Text without such runs is never cut.
inline constexpr size_t kKimiMaxEncodeChars = 400000;
inline constexpr size_t kKimiMaxRunChars = 25000;
// Calls `chunk` for each slice, in order; slices concatenate to `text`. Ill-formed bytes count
// as one non-space character each.
void ForEachKimiChunk(std::string_view text, absl::FunctionRef<void(std::string_view)> chunk);

}  // namespace dsinfer
