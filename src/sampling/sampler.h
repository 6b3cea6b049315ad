// Next-token selection for one sequence: penalties, then greedy or temperature sampling with
// top-k / top-p / min-p filtering, from a per-request seeded generator (same seed, same output).
#pragma once

#include <cstdint>
#include <optional>
#include <random>
#include <unordered_map>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"

namespace dsinfer {

struct SamplingParams {
  // Below kGreedyBelowTemperature sampling is greedy: 1/T would overflow (1e-45 -> inf, then
  // NaN probabilities), and such a temperature means "argmax" anyway.
  static constexpr float kGreedyBelowTemperature = 1e-5f;
  float temperature = 0.0f;         // 0 (or below kGreedyBelowTemperature): greedy
  int32_t top_k = 0;                // 0: off
  float top_p = 1.0f;               // 1: off
  float min_p = 0.0f;               // 0: off
  float repetition_penalty = 1.0f;  // HF/CTRL style over prompt and output tokens; 1: off
  float frequency_penalty = 0.0f;   // OpenAI style over output tokens; 0: off
  float presence_penalty = 0.0f;    // OpenAI style over output tokens; 0: off
  std::optional<uint64_t> seed;     // unset: seeded from std::random_device
  std::vector<int32_t> stop_token_ids;
};

// InvalidArgument naming the field when a value makes no sense.
absl::Status ValidateSamplingParams(const SamplingParams& p);

class Sampler {
 public:
  Sampler(const SamplingParams& params, absl::Span<const int32_t> prompt);

  // Picks the next token from logits [vocab] (modified in place) and records it as output.
  int32_t Sample(absl::Span<float> logits);
  bool IsStop(int32_t token) const;

 private:
  void ApplyPenalties(absl::Span<float> logits) const;

  SamplingParams params_;
  std::mt19937_64 rng_;
  std::unordered_map<int32_t, int32_t> output_counts_;
  std::vector<int32_t> seen_;  // distinct prompt and output tokens (repetition penalty)
  std::vector<uint8_t> seen_mask_;
  std::vector<std::pair<float, int32_t>> scratch_;
};

}  // namespace dsinfer
