// Server-sent events framing (the WHATWG "event stream" format, as OpenAI streams use it):
// bytes in, one `data` payload out per event. Lines end in LF or CRLF; `data:` lines of one
// event are joined with LF; an empty line ends the event; comments (`:`) and other fields
// (`event`, `id`, `retry`) are skipped. Only framing: what the payload means is the caller's.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace dsinfer::loadgen {

class SseFramer {
 public:
  static constexpr size_t kMaxEventBytes = 1 << 20;

  // Calls `on_event(data)` for every event completed by `bytes`, in order. An event over
  // kMaxEventBytes is an error (the stream is then broken: stop feeding it).
  absl::Status Feed(std::string_view bytes, const std::function<void(std::string_view)>& on_event);

  // Bytes of an unfinished line or event are held: a stream that ends here was cut.
  bool Idle() const { return line_.empty() && !has_data_; }

 private:
  void Line(std::string_view line, const std::function<void(std::string_view)>& on_event);

  std::string line_;  // an unfinished line
  std::string data_;  // the current event's data
  bool has_data_ = false;
};

}  // namespace dsinfer::loadgen
