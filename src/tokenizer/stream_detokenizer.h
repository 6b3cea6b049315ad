// Incremental detokenization for streaming responses: text is handed out as soon as it is
// complete UTF-8, holding back the bytes of a character that continues in the next token.
#pragma once

#include <cstdint>
#include <string>

#include "src/tokenizer/tokenizer.h"

namespace dsinfer {

// Invariant: the concatenation of every Push() result and Finish() equals
// tokenizer.Decode(ids, skip_special) for the pushed ids (unknown ids are skipped, as HF decode
// does; a model's vocabulary can be larger than the tokenizer's). Not thread-safe; one per stream.
class StreamDetokenizer {
 public:
  explicit StreamDetokenizer(const Tokenizer& tokenizer, bool skip_special = false);

  // Text completed by `id`: never ends inside a character; ill-formed bytes become U+FFFD.
  std::string Push(int32_t id);
  // The rest: a truncated trailing character becomes U+FFFD. The stream can be reused after.
  std::string Finish();

 private:
  const Tokenizer& tokenizer_;
  bool skip_special_;
  std::string pending_;  // bytes of an incomplete character (at most 3)
};

}  // namespace dsinfer
