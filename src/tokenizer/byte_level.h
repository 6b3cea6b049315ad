// The byte-level alphabet of GPT-2 style BPE: every byte 0..255 is shown as one printable code
// point (printable Latin-1 bytes as themselves, the other 68 bytes as U+0100.. in byte order),
// so that vocabulary strings never contain raw control bytes or spaces.
#pragma once

#include <array>
#include <string>
#include <string_view>

namespace dsinfer::byte_level {

// Code point that stands for byte `b` in vocabulary strings.
char32_t ByteToCodePoint(unsigned char b);

// The UTF-8 text of ByteToCodePoint(b) for each byte (1 or 2 bytes long).
const std::array<std::string, 256>& ByteStrings();

// HF ByteLevel decoder, one token at a time: when every character of `token` belongs to the
// alphabet, appends the bytes they stand for; otherwise appends `token` unchanged (added tokens
// such as "<｜User｜>" are written in plain text).
void AppendDecodedToken(std::string_view token, std::string* out);

}  // namespace dsinfer::byte_level
