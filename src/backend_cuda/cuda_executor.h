// The CUDA backend: an Executor that runs DeepSeek-V2/V3 steps on one NVIDIA GPU over a paged
// latent KV cache held in GPU memory (see README.md for its invariants).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "src/engine/executor.h"
#include "src/weights/weight_store.h"

namespace dsinfer {

struct CudaExecutorOptions {
  int device = 0;
  double kv_cache_fraction = 0.9;      // of the GPU memory still free after weights and workspaces
  int32_t num_kv_blocks = 0;           // > 0: exactly this many blocks (overrides the fraction)
  int64_t max_batched_tokens = 2048;   // new tokens per step; workspaces are sized for it
  int32_t max_seqs = 256;              // sequences per step
  int64_t max_logit_rows = 256;        // lm_head rows per pass (more rows run in several passes)
  int64_t chunk_tokens = 1024;         // MLP / MoE token chunk (bounds the expert workspaces)
  bool tensor_core_attention = true;   // false: the generic attention kernel (for tests)
  int64_t attention_split_tokens = 0;  // > 0: force split-KV at this many keys (for tests)
  bool cuda_graphs = true;             // replay decode steps as CUDA graphs, one per batch size
  ProgressFn progress;                 // weight loading progress
};

// Number of visible CUDA devices; 0 when there is none or no usable driver.
int CudaDeviceCount();

// Loads model_dir onto the GPU. FailedPrecondition("no CUDA device ...") without a GPU.
absl::StatusOr<std::unique_ptr<Executor>> MakeCudaExecutor(const std::string& model_dir,
                                                           const CudaExecutorOptions& options = {});

}  // namespace dsinfer
