#include "src/server/request_log.h"

#include <chrono>
#include <ctime>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace dsinfer {
namespace {

const char* LevelName(LogLevel l) {
  switch (l) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarning:
      return "warning";
    case LogLevel::kError:
      return "error";
  }
  return "info";
}

// RFC 3339 UTC with milliseconds.
std::string Timestamp() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  const int64_t ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm;
  gmtime_r(&t, &tm);
  return absl::StrFormat("%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                         tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
}

}  // namespace

absl::StatusOr<LogLevel> ParseLogLevel(std::string_view name) {
  for (LogLevel l : {LogLevel::kDebug, LogLevel::kInfo, LogLevel::kWarning, LogLevel::kError}) {
    if (name == LevelName(l)) return l;
  }
  return absl::InvalidArgumentError(absl::StrCat("log level \"", std::string(name),
                                                 "\" is not one of debug, info, warning, error"));
}

JsonLog::JsonLog(LogLevel min_level, std::FILE* out, size_t max_queued_lines)
    : min_level_(min_level), out_(out), max_queued_(max_queued_lines) {
  writer_ = std::thread([this] { Run(); });
}

JsonLog::~JsonLog() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_one();
  writer_.join();
}

void JsonLog::Write(LogLevel level, std::string_view event, nlohmann::json fields) {
  if (!Enabled(level)) return;
  nlohmann::json line = {{"ts", Timestamp()}, {"level", LevelName(level)}, {"event", event}};
  if (fields.is_object()) {
    for (auto& [k, v] : fields.items()) line[k] = std::move(v);
  }
  std::string text = line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  text += '\n';
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (lines_.size() >= max_queued_) {
      ++dropped_;
      return;
    }
    lines_.push_back(std::move(text));
  }
  cv_.notify_one();
}

void JsonLog::Flush() {
  std::unique_lock<std::mutex> lock(mu_);
  drained_.wait(lock, [&] { return lines_.empty() && !writing_; });
}

void JsonLog::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return stop_ || !lines_.empty() || dropped_ > 0; });
    if (lines_.empty() && dropped_ == 0) {
      if (stop_) break;
      continue;
    }
    std::deque<std::string> batch;
    batch.swap(lines_);
    const uint64_t dropped = dropped_;
    dropped_ = 0;
    writing_ = true;
    lock.unlock();
    if (dropped > 0) {
      nlohmann::json d = {{"ts", Timestamp()},
                          {"level", "warning"},
                          {"event", "log_lines_dropped"},
                          {"count", dropped}};
      const std::string s = d.dump() + "\n";
      std::fwrite(s.data(), 1, s.size(), out_);
    }
    for (const std::string& s : batch) std::fwrite(s.data(), 1, s.size(), out_);
    std::fflush(out_);
    lock.lock();
    writing_ = false;
    if (lines_.empty()) drained_.notify_all();
  }
  drained_.notify_all();
}

}  // namespace dsinfer
