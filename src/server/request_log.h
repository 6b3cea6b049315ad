// Structured logs: one JSON object per line on stderr ({"ts", "level", "event", ...fields}).
// Lines are handed to a writer thread through a bounded queue, so the engine thread never waits
// on a slow stderr; when the queue is full lines are dropped and counted. Callers log ids,
// tenants, counts and timings only: prompt and completion text and token ids never enter a log.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace dsinfer {

enum class LogLevel : uint8_t { kDebug = 0, kInfo, kWarning, kError };
// "debug" | "info" | "warning" | "error"
absl::StatusOr<LogLevel> ParseLogLevel(std::string_view name);

class JsonLog {
 public:
  explicit JsonLog(LogLevel min_level, std::FILE* out = stderr, size_t max_queued_lines = 8192);
  ~JsonLog();  // writes what is queued, then stops the writer
  JsonLog(const JsonLog&) = delete;
  JsonLog& operator=(const JsonLog&) = delete;

  bool Enabled(LogLevel level) const { return level >= min_level_; }
  // Adds ts, level and event to `fields` (an object) and queues the line. Never blocks on I/O.
  void Write(LogLevel level, std::string_view event,
             nlohmann::json fields = nlohmann::json::object());
  // Blocks until every queued line is written (tests, shutdown).
  void Flush();

 private:
  void Run();

  const LogLevel min_level_;
  std::FILE* out_;
  const size_t max_queued_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::condition_variable drained_;
  std::deque<std::string> lines_;
  uint64_t dropped_ = 0;
  bool writing_ = false;
  bool stop_ = false;
  std::thread writer_;
};

}  // namespace dsinfer
