// Request priority classes: the scheduler's ordering and a tenant's ceiling in server config.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace dsinfer {

// Lower value = more urgent. Emergency may preempt the other classes.
enum class Priority : uint8_t { kEmergency = 0, kInteractive = 1, kBatch = 2 };

inline constexpr int kNumPriorities = 3;

// "emergency" | "interactive" | "batch" (exact, lower-case); nullopt for anything else.
std::optional<Priority> ParsePriority(std::string_view name);

// The lower-case name ParsePriority accepts; also the `priority` metric label value.
std::string_view PriorityName(Priority p);

}  // namespace dsinfer
