#include "src/engine/output_text.h"

#include <algorithm>

namespace dsinfer {

OutputText::OutputText(const Tokenizer* tokenizer, std::vector<std::string> stop)
    : stop_(std::move(stop)) {
  if (tokenizer) detok_.emplace(*tokenizer, /*skip_special=*/true);
  stop_.erase(std::remove(stop_.begin(), stop_.end(), std::string()), stop_.end());
}

std::string OutputText::Push(int32_t token) {
  if (!detok_ || stopped_) return {};
  held_ += detok_->Push(token);
  return Release();
}

std::string OutputText::Release() {
  // A complete stop string: cut there and stop.
  size_t cut = std::string::npos;
  for (const std::string& s : stop_) cut = std::min(cut, held_.find(s));
  if (cut != std::string::npos) {
    stopped_ = true;
    std::string out = held_.substr(0, cut);
    held_.clear();
    return out;
  }
  // Hold back the longest suffix that is a prefix of some stop string.
  size_t keep = 0;
  for (const std::string& s : stop_) {
    for (size_t n = std::min(s.size() - 1, held_.size()); n > keep; --n) {
      if (held_.compare(held_.size() - n, n, s, 0, n) == 0) {
        keep = n;
        break;
      }
    }
  }
  // Never split a UTF-8 character: move the cut back to a character boundary.
  size_t release = held_.size() - keep;
  while (release > 0 && release < held_.size() &&
         (static_cast<unsigned char>(held_[release]) & 0xC0) == 0x80)
    --release;
  std::string out = held_.substr(0, release);
  held_.erase(0, release);
  return out;
}

std::string OutputText::Finish() {
  if (!detok_ || stopped_) return {};
  held_ += detok_->Finish();
  std::string out = Release();
  if (!stopped_) {
    out += held_;
    held_.clear();
  }
  return out;
}

}  // namespace dsinfer
