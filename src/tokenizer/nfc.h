// Unicode NFC (canonical composition), the `NFC` normalizer of HF tokenizer.json (Qwen2's, so
// R1-Distill-Qwen's). Internal to src/tokenizer.
#pragma once

#include <string>
#include <string_view>

namespace dsinfer {

// NFC of the well-formed stretches of `text`; ill-formed bytes are kept as they are (Encode
// never drops or replaces input bytes). ICU's tables (Unicode 15 with ICU 72); HF uses the Rust
// unicode-normalization crate, equal on every code point both Unicode versions assign.
std::string ToNfc(std::string_view text);

}  // namespace dsinfer
