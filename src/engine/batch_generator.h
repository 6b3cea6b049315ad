// Offline generation for the command line and benchmarks: a fixed set of requests is prefilled
// and then decoded together, one batched forward step per token, until each one stops.
// (The server's continuous-batching engine loop schedules the same model.Forward calls.)
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "src/engine/executor.h"
#include "src/model/deepseek_model.h"
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
  int64_t prefill_tokens = 0;
  double prefill_seconds = 0;
  int64_t decode_tokens = 0;
  int64_t decode_steps = 0;
  double decode_seconds = 0;
};

struct GenerationOptions {
  int64_t prefill_chunk = 2048;  // prompt tokens per forward step
  bool batch_prefill = false;    // prefill all prompts in one step (else one prompt per step)
  std::function<void()> on_decode_start = nullptr;  // after the last prefill step (benchmarks reset here)
  // Ids are sampled from [0, sample_vocab) (the tokenizer's size, so every id detokenizes);
  // 0: the model's whole vocabulary.
  int64_t sample_vocab = 0;
};

// Over any Executor (CPU or CUDA); the requests must fit its KV blocks.
absl::StatusOr<std::vector<GenerationResult>> GenerateOnExecutor(
    Executor& executor, absl::Span<const GenerationRequest> requests,
    const GenerationOptions& options = {}, GenerationStats* stats = nullptr,
    const std::function<void(size_t request, int32_t token)>& on_token = nullptr);

// Over a DeepseekModel on the CPU, with a KV cache sized for the requests.
absl::StatusOr<std::vector<GenerationResult>> GenerateBatch(
    DeepseekModel& model, absl::Span<const GenerationRequest> requests,
    const GenerationOptions& options = {}, GenerationStats* stats = nullptr,
    const std::function<void(size_t request, int32_t token)>& on_token = nullptr);

}  // namespace dsinfer
