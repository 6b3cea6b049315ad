// SSE framing: split lines, collect `data` fields, hand over each event at its blank line.
#include "bench/loadgen/sse.h"

#include "absl/strings/str_cat.h"

namespace dsinfer::loadgen {

absl::Status SseFramer::Feed(std::string_view bytes,
                             const std::function<void(std::string_view)>& on_event) {
  while (!bytes.empty()) {
    const size_t nl = bytes.find('\n');
    if (nl == std::string_view::npos) {
      line_.append(bytes);
      bytes = {};
    } else if (line_.empty()) {
      Line(bytes.substr(0, nl), on_event);  // the common case: a whole line in this read
      bytes.remove_prefix(nl + 1);
    } else {
      line_.append(bytes.substr(0, nl));
      std::string line = std::move(line_);
      line_.clear();
      Line(line, on_event);
      bytes.remove_prefix(nl + 1);
    }
    if (line_.size() + data_.size() > kMaxEventBytes) {
      return absl::ResourceExhaustedError(
          absl::StrCat("SSE event over ", kMaxEventBytes, " bytes"));
    }
  }
  return absl::OkStatus();
}

void SseFramer::Line(std::string_view line, const std::function<void(std::string_view)>& on_event) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (line.empty()) {  // end of the event
    if (has_data_) on_event(data_);
    data_.clear();
    has_data_ = false;
    return;
  }
  if (line.front() == ':') return;  // a comment (keep-alive)
  const size_t colon = line.find(':');
  const std::string_view field = line.substr(0, colon);
  if (field != "data") return;
  std::string_view value = colon == std::string_view::npos ? "" : line.substr(colon + 1);
  if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  if (has_data_) data_ += '\n';
  data_.append(value);
  has_data_ = true;
}

}  // namespace dsinfer::loadgen
