// Memory the operating system can still give this process.
#pragma once

#include <cstdint>

#include "absl/status/statusor.h"

namespace dsinfer {

// MemAvailable from /proc/meminfo, or an error where there is none.
absl::StatusOr<int64_t> AvailableMemoryBytes();

}  // namespace dsinfer
