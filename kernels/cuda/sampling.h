// Next-token selection on the GPU, the twin of src/sampling's Sampler::Sample given the same
// uniform draw: penalties (repetition over prompt and output tokens, frequency and presence over
// output tokens), then greedy (temperature 0: first maximum) or temperature sampling over the
// candidates sorted by (logit desc, index asc), cut by top-k, top-p, min-p in that order, picking
// the first candidate whose cumulative weight exceeds uniform * total.
//
// Exact (the same token as the CPU for the same draw) when the candidate set has at most
// kSampleMaxCandidates tokens: top_k in 1..1024, or a vocabulary that small. Without top-k and
// without top-p (min-p alone allowed) the whole vocabulary is sampled in index order: the same
// distribution, another token order. With top-p but no top-k (or top_k > 1024) the candidates are
// the 1024 most likely tokens.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace dsinfer::cuda {

inline constexpr int64_t kSampleMaxCandidates = 1024;

struct SampleRowParams {
  float temperature = 0.f;  // 0: greedy
  int32_t top_k = 0;        // 0: off
  float top_p = 1.f, min_p = 0.f;
  float repetition_penalty = 1.f, frequency_penalty = 0.f, presence_penalty = 0.f;
  double uniform = 0.0;  // the draw in [0, 1)
};

struct SampleParams {
  float* logits = nullptr;  // [rows, vocab] row stride ld; penalised in place
  int64_t rows = 0, vocab = 0, ld = 0;
  const SampleRowParams* row_params = nullptr;  // [rows] (device)
  const int32_t* penalty_offsets = nullptr;  // [rows + 1] CSR over the two arrays below, or nullptr
  const int32_t* penalty_tokens = nullptr;   // distinct tokens seen in the prompt or the output
  const int32_t* penalty_counts = nullptr;   // times each appeared in the output (0: prompt only)
  int32_t* out_tokens = nullptr;             // [rows]
};

cudaError_t SampleTokens(const SampleParams& p, cudaStream_t stream);

}  // namespace dsinfer::cuda
