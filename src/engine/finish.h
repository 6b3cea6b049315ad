// Why a request stops, decided in one place for the serving engine and every offline run:
// end-of-sequence tokens (unless ignored), stop token ids, stop strings (seen by the text
// assembler), max_tokens, and the model's context length.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

namespace dsinfer {

enum class FinishReason : uint8_t { kNone, kStop, kLength, kCancelled };
const char* FinishReasonName(FinishReason r);  // "stop", "length", "cancelled"

struct FinishRule {
  std::vector<int32_t> eos_ids = {};   // the model's; empty when the request ignores eos
  std::vector<int32_t> stop_ids = {};  // the request's stop token ids
  int64_t max_tokens = 0;         // output tokens
  int64_t context_length = 0;     // prompt + output tokens the model can hold
};

inline bool IsEos(const FinishRule& r, int32_t token) {
  return std::find(r.eos_ids.begin(), r.eos_ids.end(), token) != r.eos_ids.end();
}

// After `token`, the request's `generated`-th output token (prompt_tokens before it);
// stop_string: the output text has reached a stop string.
inline FinishReason DecideFinish(const FinishRule& r, int32_t token, int64_t generated,
                                 int64_t prompt_tokens, bool stop_string) {
  if (IsEos(r, token) || stop_string ||
      std::find(r.stop_ids.begin(), r.stop_ids.end(), token) != r.stop_ids.end())
    return FinishReason::kStop;
  if (generated >= r.max_tokens || prompt_tokens + generated >= r.context_length)
    return FinishReason::kLength;
  return FinishReason::kNone;
}

}  // namespace dsinfer
