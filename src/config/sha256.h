// SHA-256 as lower-case hex: how server config stores API keys (never the keys themselves).
#pragma once

#include <string>
#include <string_view>

namespace dsinfer {

// 64 lower-case hex characters. `printf %s "$KEY" | sha256sum` gives the same digest.
std::string Sha256Hex(std::string_view data);

}  // namespace dsinfer
