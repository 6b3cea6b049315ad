// Translates the Oniguruma regexes of HF tokenizer.json files into PCRE2 syntax with the same
// meaning, for the constructs pre-tokenizers use. HF compiles them with Oniguruma (Ruby syntax,
// UTF-8); dsinfer matches them with PCRE2 (UTF + UCP). Known differences it repairs:
//   \s      Oniguruma matches U+0085 (NEL) and not U+180E; PCRE2 10.42 the other way round.
//   \p{X}   for the groups L, M, N, P, S Oniguruma has Unicode 16 tables, PCRE2 10.42 Unicode 14:
//           the code points assigned since are added (unicode_additions.h).
//   ^ $     are line anchors in Oniguruma; `.` excludes only "\n".
//   \uHHHH  is Oniguruma's; PCRE2 spells it \x{HHHH}.   {,n} means {0,n} in Oniguruma.
// Constructs whose meaning differs and that no supported tokenizer needs (\w, \b, \h, nested
// classes, option groups other than (?i)) are refused with an Unimplemented status.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace dsinfer {

// With `unicode_additions` false, \p{L} etc. keep PCRE2's tables: the result is exact only for
// text without ContainsUnicodeAddition() characters, and faster.
absl::StatusOr<std::string> OnigToPcre2Pattern(std::string_view onig_pattern,
                                               bool unicode_additions = true);

}  // namespace dsinfer
