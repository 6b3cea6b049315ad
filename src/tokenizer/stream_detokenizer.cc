#include "src/tokenizer/stream_detokenizer.h"

#include "src/tokenizer/utf8.h"

namespace dsinfer {

StreamDetokenizer::StreamDetokenizer(const Tokenizer& tokenizer, bool skip_special)
    : tokenizer_(tokenizer), skip_special_(skip_special) {}

std::string StreamDetokenizer::Push(int32_t id) {
  std::optional<std::string_view> bytes = tokenizer_.TokenBytes(id);
  if (!bytes.has_value() || (skip_special_ && tokenizer_.IsSpecial(id))) return {};
  pending_.append(*bytes);
  std::string out;
  const size_t used = utf8::AppendLossy(pending_, &out, /*hold_incomplete_tail=*/true);
  pending_.erase(0, used);
  return out;
}

std::string StreamDetokenizer::Finish() {
  std::string out;
  utf8::AppendLossy(pending_, &out);
  pending_.clear();
  return out;
}

}  // namespace dsinfer
