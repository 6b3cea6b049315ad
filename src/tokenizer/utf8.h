// UTF-8 helpers for the tokenizer: validity checks and lossy decoding with the same replacement
// rule as Rust's String::from_utf8_lossy (one U+FFFD per maximal ill-formed subpart), which is
// what HF tokenizers applies to decoded bytes.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace dsinfer::utf8 {

// True when `text` is entirely well-formed UTF-8 (no surrogates, no overlongs, <= U+10FFFF).
bool IsValid(std::string_view text);

// Length in bytes of the character starting at text[pos]: the well-formed sequence length, or 1
// for a byte that does not start a well-formed sequence. `pos` must be < text.size().
size_t CharLength(std::string_view text, size_t pos);

// Appends `bytes` to `out`, replacing each maximal ill-formed subpart with U+FFFD.
// When `hold_incomplete_tail` is set and `bytes` ends with a truncated but so far well-formed
// sequence, those bytes are not consumed. Returns the number of bytes consumed.
size_t AppendLossy(std::string_view bytes, std::string* out, bool hold_incomplete_tail = false);

// Appends the UTF-8 encoding of code point `cp` (must be a scalar value) to `out`.
void AppendCodePoint(char32_t cp, std::string* out);

}  // namespace dsinfer::utf8
