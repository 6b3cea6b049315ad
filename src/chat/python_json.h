// JSON printed as Python's json.dumps(value) with default arguments prints it: separators
// ", " and ": ", ensure_ascii (non-ASCII as \uXXXX, astral code points as surrogate pairs), keys
// in the value's order. DeepSeek's documented tool prompt prints each tool's parameters this way.
#pragma once

#include <string>

#include "nlohmann/json.hpp"

namespace dsinfer::chat {

std::string PythonJsonDumps(const nlohmann::ordered_json& value);

}  // namespace dsinfer::chat
