// Memory the operating system can still give this process.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace dsinfer {

// MemAvailable from /proc/meminfo, or an error where there is none.
absl::StatusOr<int64_t> AvailableMemoryBytes();

// "1.5 GiB", "16.0 PiB" (a double: absurd sizes overflow int64).
std::string HumanBytes(double bytes);

}  // namespace dsinfer
