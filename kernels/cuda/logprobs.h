// Log-probabilities of chosen tokens and their most likely alternatives on the GPU, the twin of
// kernels/cpu/logprobs.h (same ordering: logit descending, token id ascending). One block per
// entry: the row's max and Σ exp in f32, then top_n rounds of a block-wide argmax.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace dsinfer::cuda {

inline constexpr int32_t kLogprobsMaxTop = 20;

struct LogprobsParams {
  const float* logits = nullptr;  // [*, vocab] row stride ld
  int64_t ld = 0, vocab = 0;
  const int32_t* rows = nullptr;    // [n] (device)
  const int32_t* chosen = nullptr;  // [n] (device)
  int64_t n = 0;
  int32_t top_n = 0;                // <= kLogprobsMaxTop
  float* chosen_logprob = nullptr;  // [n]
  int32_t* top_ids = nullptr;       // [n, top_n]
  float* top_logprobs = nullptr;    // [n, top_n]
};

cudaError_t Logprobs(const LogprobsParams& p, cudaStream_t stream);

}  // namespace dsinfer::cuda
