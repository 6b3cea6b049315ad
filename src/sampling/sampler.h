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

// Everything one row's token choice needs, as a backend's sampling op takes it (the CPU's is
// SampleRow below, the GPU's kernels/cuda/sampling.h): the request's parameters, this step's
// uniform draw, and the tokens its penalties apply to.
struct SamplingRow {
  float temperature = 0.0f;  // 0: greedy
  int32_t top_k = 0;
  float top_p = 1.0f, min_p = 0.0f;
  float repetition_penalty = 1.0f, frequency_penalty = 0.0f, presence_penalty = 0.0f;
  double uniform = 0.0;  // the draw in [0, 1) (temperature > 0)
  // Distinct tokens seen so far (prompt tokens only with a repetition penalty) and how often
  // each appeared in the output (0: prompt only). Repetition applies to all of them,
  // frequency / presence to those with a count.
  absl::Span<const int32_t> penalty_tokens = {};
  absl::Span<const int32_t> penalty_counts = {};
};

// Picks a token from logits [vocab] (penalised in place): the CPU sampling op.
int32_t SampleRow(const SamplingRow& row, absl::Span<float> logits,
                  std::vector<std::pair<float, int32_t>>* scratch);

class Sampler {
 public:
  Sampler(const SamplingParams& params, absl::Span<const int32_t> prompt);

  // The next row to sample (draws this step's uniform when sampling at a temperature); its
  // spans stay valid until Accept.
  SamplingRow NextRow();
  // Records the token chosen for the row NextRow returned.
  void Accept(int32_t token);
  // NextRow, SampleRow and Accept in one: picks the next token from logits [vocab] (modified in
  // place) and records it as output.
  int32_t Sample(absl::Span<float> logits);
  bool IsStop(int32_t token) const;
  const SamplingParams& params() const { return params_; }

 private:
  void Note(int32_t token, int32_t output_increment);

  SamplingParams params_;
  std::mt19937_64 rng_;
  // Distinct tokens the penalties apply to and their output counts (parallel arrays).
  std::vector<int32_t> penalty_tokens_, penalty_counts_;
  std::unordered_map<int32_t, int32_t> index_;  // token -> position in penalty_tokens_
  std::vector<std::pair<float, int32_t>> scratch_;
};

}  // namespace dsinfer
