// Names of the request priority classes.
#include "src/config/priority.h"

namespace dsinfer {

std::optional<Priority> ParsePriority(std::string_view name) {
  if (name == "emergency") return Priority::kEmergency;
  if (name == "interactive") return Priority::kInteractive;
  if (name == "batch") return Priority::kBatch;
  return std::nullopt;
}

std::string_view PriorityName(Priority p) {
  switch (p) {
    case Priority::kEmergency:
      return "emergency";
    case Priority::kInteractive:
      return "interactive";
    case Priority::kBatch:
      return "batch";
  }
  return "unknown";
}

}  // namespace dsinfer
