// Log-probabilities of chosen tokens and the most likely alternatives (OpenAI's logprobs and
// top_logprobs), from raw logits: log_softmax(x)[t] = x[t] - (max + log Σ exp(x - max)).
// Alternatives are ordered by logit (descending), ties by token id (ascending).
#pragma once

#include <cstdint>

namespace dsinfer::cpu {

struct LogprobsParams {
  const float* logits = nullptr;  // [*, vocab] row stride ld
  int64_t ld = 0, vocab = 0;
  const int32_t* rows = nullptr;    // [n] logit row of each entry
  const int32_t* chosen = nullptr;  // [n] token whose logprob is wanted
  int64_t n = 0;
  int32_t top_n = 0;              // alternatives per entry (<= vocab)
  float* chosen_logprob = nullptr;  // [n] out
  int32_t* top_ids = nullptr;       // [n, top_n] out
  float* top_logprobs = nullptr;    // [n, top_n] out
};

void Logprobs(const LogprobsParams& p);

}  // namespace dsinfer::cpu
