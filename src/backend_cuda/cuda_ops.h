// The CUDA backend: BackendOps over kernels/cuda on one GPU (see README.md for its invariants).
// Built only where CMake finds nvcc (DSINFER_HAVE_CUDA).
#pragma once

#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"
#include "src/comm/communicator.h"
#include "src/model/backend_ops.h"

namespace dsinfer {

struct CudaOpsOptions {
  int device = 0;                      // taken modulo the visible devices (ranks may share one)
  bool keep_fp8 = true;                // FP8 checkpoint weights stay FP8 where kernels take them
  double kv_cache_fraction = 0.9;      // (informational: the runner's sizer applies it)
  int64_t max_batched_tokens = 2048;   // new tokens per step; workspaces are sized for it
  int32_t max_seqs = 256;              // sequences per step
  int64_t max_logit_rows = 256;        // logit rows per step
  int64_t chunk_tokens = 1024;         // MLP / MoE token chunk (bounds the expert workspaces)
  bool tensor_core_attention = true;   // false: the generic attention kernel (for tests)
  int64_t attention_split_tokens = 0;  // > 0: force split-KV at this many keys (for tests)
  bool cuda_graphs = true;             // replay decode steps as CUDA graphs, one per batch size
  Communicator* comm = nullptr;        // a sharded layout's ranks (Gloo; host-staged); not owned
  int ranks_on_node = 1;               // ranks of this node (sharing the visible GPUs)
};

// Number of visible CUDA devices; 0 when there is none or no usable driver.
int CudaDeviceCount();

// FailedPrecondition("no CUDA device ...") without a GPU.
absl::StatusOr<std::unique_ptr<BackendOps>> MakeCudaOps(const CudaOpsOptions& options);

}  // namespace dsinfer
