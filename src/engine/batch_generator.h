// Offline generation for the command line and benchmarks: a fixed set of requests submitted at
// once to the serving engine (the same scheduler, step loop and finish rule as the server), over
// a runner the caller keeps.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "src/engine/model_runner.h"
#include "src/sampling/sampler.h"

namespace dsinfer {

struct GenerationRequest {
  std::vector<int32_t> prompt;
  SamplingParams sampling;
  int64_t max_tokens = 16;
  bool stop_at_eos = true;  // also stop on the model's eos token ids
};

struct GenerationResult {
  std::vector<int32_t> tokens;  // generated tokens only (a stop token included)
  std::string finish_reason;    // "stop" or "length"
};

struct GenerationStats {
  int64_t prefill_tokens = 0;   // prompt tokens computed
  double prefill_seconds = 0;   // steps that computed prompt tokens
  int64_t decode_tokens = 0;    // tokens sampled in decode-only steps
  int64_t decode_steps = 0;
  double decode_seconds = 0;
  int64_t draft_tokens = 0;     // MTP drafts verified (every step)
  int64_t accepted_tokens = 0;  // of which accepted
  // The same per draft position (0: a sequence's first draft of a step).
  std::array<int64_t, kMaxMtpDraftTokens> drafted_at = {}, accepted_at = {};
};

struct GenerationOptions {
  int64_t prefill_chunk = 2048;  // prompt tokens of one sequence per step
  bool batch_prefill = false;    // prefill every prompt in one step (else one chunk per step)
  // Called after every step that computed prompt tokens, so last right before the decode-only
  // steps (benchmarks reset their counters here).
  std::function<void()> on_decode_start = nullptr;
  // Ids are sampled from [0, sample_vocab) (the tokenizer's size, so every id detokenizes);
  // 0: the model's whole vocabulary.
  int64_t sample_vocab = 0;
};

// The requests must fit the runner's KV cache together; ResourceExhausted otherwise.
absl::StatusOr<std::vector<GenerationResult>> GenerateOnRunner(
    ModelRunner& runner, absl::Span<const GenerationRequest> requests,
    const GenerationOptions& options = {}, GenerationStats* stats = nullptr,
    const std::function<void(size_t request, int32_t token)>& on_token = nullptr);

}  // namespace dsinfer
