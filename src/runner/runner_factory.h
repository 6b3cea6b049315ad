// The one place a model runner is built, for the server, the CLI and the worker ranks alike:
// backend (cpu | cuda), precision, FP8 kept or dequantised, and the tensor / expert parallel
// layout (local rank processes started here; ranks on other nodes reach the rendezvous).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "src/engine/model_runner.h"
#include "src/model/precision.h"
#include "src/model/program_runner.h"
#include "src/weights/weight_store.h"

namespace dsinfer {

struct ParallelOptions {
  int tp = 1;               // ranks in total
  int ep = 1;               // expert-parallel groups
  int ranks_per_node = 0;   // ranks the leader starts on its node (0: all tp)
  // "" : a private file: store for ranks on this node; else file:DIR or grpc:HOST:PORT.
  std::string rendezvous = "";
  std::string bind_address = "127.0.0.1";  // this node's address for the Gloo transport
  double timeout_s = 60;
  // The `dsinfer` binary started as `dsinfer worker` for this node's other ranks; "": this
  // process's own (SelfExecutable(): $DSINFER_WORKER_BINARY or /proc/self/exe).
  std::string worker_executable = "";

  int local_ranks() const { return ranks_per_node > 0 ? ranks_per_node : tp; }
  // Threads per rank when none are set: the node's cores shared by its ranks.
  int DefaultThreads() const;
};

struct CudaRunnerOptions {
  int device = -1;                     // -1: rank % visible devices
  double kv_cache_fraction = 0.9;      // of the GPU memory free after weights and workspaces
  int64_t max_batched_tokens = 2048;   // new tokens per step (sizes the workspaces)
  int32_t max_seqs = 256;              // sequences per step
  int64_t max_logit_rows = 256;        // logit rows per step
  int64_t chunk_tokens = 1024;         // MLP / MoE token chunk
  bool tensor_core_attention = true;   // false: the generic attention kernel (tests)
  int64_t attention_split_tokens = 0;  // > 0: force split-KV (tests)
  bool cuda_graphs = true;             // replay decode steps
};

struct RunnerOptions {
  std::string model_dir;
  std::string backend = "cpu";  // "cpu" | "cuda"
  Precision precision = Precision::kBF16;
  bool keep_fp8 = true;         // FP8 checkpoint weights stay FP8
  bool mtp = false;             // load the MTP layer and draft with it
  int32_t mtp_draft_tokens = 1;  // with mtp: drafts per sequence and step
  // CPU: FP8 weights multiply FP8 activations as the GPU's FP8 GEMMs do (the GPU twin's
  // reference); else they multiply bf16 / f32 activations (dequantised tile by tile).
  bool fp8_activations = false;
  int threads = 0;              // CPU threads (0: DSINFER_THREADS or all cores)
  ParallelOptions parallel;     // tp 1: this process alone
  int32_t num_kv_blocks = 0;    // > 0: exactly this many; else kv_sizer decides
  KvSizer kv_sizer;
  CudaRunnerOptions cuda;
  ProgressFn progress = nullptr;
};

// A single-process runner (tp 1), or the leader of a sharded layout whose other ranks are
// started here (local ones) or join at the rendezvous (other nodes).
absl::StatusOr<std::unique_ptr<ModelRunner>> MakeModelRunner(const RunnerOptions& options);

// `dsinfer worker` with the options of a rank (parallel.worker_executable or SelfExecutable()
// runs it); the caller appends --rendezvous, the launcher --rank.
std::vector<std::string> WorkerArgv(const RunnerOptions& options);

// One worker rank: connect, load the shard, serve the leader's steps until it says shutdown.
absl::Status RunWorkerRank(const RunnerOptions& options, int rank);

// Whether this build has the backend ("cpu" always; "cuda" where built with CUDA).
absl::Status CheckBackend(const std::string& backend);

}  // namespace dsinfer
