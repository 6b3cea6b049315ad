// Code points that Unicode 15.0-16.0 assigned to the general-category groups L, M, N, P, S.
// HF tokenizers' Oniguruma knows them; PCRE2 10.42 (Unicode 14 tables) sees them as unassigned.
// Regex classes add them explicitly (onig_pattern.cc); since that makes matching slower, text
// without any of them uses patterns without the additions, which then behave identically.
#pragma once

#include <string_view>

#include "absl/types/span.h"

namespace dsinfer {

struct UnicodeAddition {
  char group;  // 'L', 'M', 'N', 'P' or 'S'
  char32_t first;
  char32_t last;
};

// Sorted by group, then code point (generated: unicode_additions.inc).
absl::Span<const UnicodeAddition> UnicodeAdditions();

// True when `text` holds a well-formed UTF-8 character from UnicodeAdditions().
bool ContainsUnicodeAddition(std::string_view text);

}  // namespace dsinfer
