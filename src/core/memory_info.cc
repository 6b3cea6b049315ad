#include "src/core/memory_info.h"

#include <fstream>
#include <string>

namespace dsinfer {

absl::StatusOr<int64_t> AvailableMemoryBytes() {
  std::ifstream in("/proc/meminfo");
  std::string key, unit;
  int64_t kb = 0;
  while (in >> key >> kb >> unit) {
    if (key == "MemAvailable:") return kb * 1024;
  }
  return absl::UnavailableError("MemAvailable not found in /proc/meminfo");
}

}  // namespace dsinfer
