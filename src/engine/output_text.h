// The text side of one request's output: streaming detokenization plus stop strings. Text is
// released only when it is complete UTF-8 and cannot be the start of a stop string; a matched
// stop string and everything after it are never released.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "src/tokenizer/stream_detokenizer.h"
#include "src/tokenizer/tokenizer.h"

namespace dsinfer {

class OutputText {
 public:
  // tokenizer may be null: no text at all (stop strings must then be empty).
  OutputText(const Tokenizer* tokenizer, std::vector<std::string> stop);

  // Adds a generated token; returns the text that can be released now. Sets stopped() when a
  // stop string completed.
  std::string Push(int32_t token);
  // At the end of the request: whatever was held back (unless a stop string matched).
  std::string Finish();
  bool stopped() const { return stopped_; }

 private:
  std::string Release();

  std::optional<StreamDetokenizer> detok_;
  std::vector<std::string> stop_;
  std::string held_;  // decoded, not yet released
  bool stopped_ = false;
};

}  // namespace dsinfer
