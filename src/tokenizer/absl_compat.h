// Debian's Abseil is built with its own absl::string_view (ABSL_OPTION_USE_STD_STRING_VIEW 0);
// this converts at the few places where std::string_view meets Abseil containers or StrCat.
#pragma once

#include <string_view>

#include "absl/strings/string_view.h"

namespace dsinfer {

inline absl::string_view AsAbsl(std::string_view s) { return {s.data(), s.size()}; }

}  // namespace dsinfer
