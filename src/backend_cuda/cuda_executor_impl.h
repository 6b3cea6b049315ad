// Internal to src/backend_cuda: the CudaExecutor class shared by cuda_executor.cc (set-up, step
// inputs, logits) and cuda_layers.cc (attention, MLP, MoE of one layer).
#pragma once

#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <vector>

#include "kernels/cuda/mla_attention.h"
#include "src/backend_cuda/cuda_executor.h"
#include "src/backend_cuda/device_memory.h"
#include "src/backend_cuda/device_weights.h"

namespace dsinfer::cuda_backend {

// Device workspaces, allocated once for max_batched_tokens (T) and chunk_tokens (C).
struct Workspace {
  DeviceBuffer x;        // f32 [T, hidden] residual stream
  DeviceBuffer xn_bf16;  // bf16 [T, hidden] normed GEMM input
  DeviceBuffer xn_f32;   // f32 [T, hidden] normed router input (MoE models)
  DeviceBuffer qkv_a;    // f32 [T, qa_width + kv_lora + rope]
  DeviceBuffer qn;       // bf16 [T, q_lora_rank]
  DeviceBuffer q;        // f32 [T, heads * qk_head_dim]
  DeviceBuffer q_nope;   // bf16 [T, heads, nope]
  DeviceBuffer q_attn;   // bf16 [T, heads, kv_lora + rope]
  DeviceBuffer o_lat;    // bf16 [T, heads, kv_lora]
  DeviceBuffer attn;     // bf16 [T, heads * v]
  // f32 attention path (generic kernel): query, latent output and W_UV output in f32.
  DeviceBuffer q_attn_f32;                    // f32 [T, heads, kv_lora + rope]
  DeviceBuffer o_lat_f32;                     // f32 [T, heads, kv_lora]
  DeviceBuffer attn_f32;                      // f32 [T, heads * v]
  DeviceBuffer partial_out;                   // f32 [max_partials, 64, kv_lora]
  DeviceBuffer partial_lse;                   // f32 [max_partials, 64]
  DeviceBuffer gu;                            // f32 [C, 2 * max dense/shared inter]
  DeviceBuffer act;                           // bf16 [C, max dense/shared inter]
  DeviceBuffer router;                        // f32 [T, n_experts]
  DeviceBuffer topk_ids;                      // i32 [T, top_k]
  DeviceBuffer topk_w;                        // f32 [T, top_k]
  DeviceBuffer slot_of;                       // i32 [C * top_k]
  DeviceBuffer row_token;                     // i32 [C * top_k]
  DeviceBuffer expert_offsets, tile_offsets;  // i32 [n_experts + 1]
  DeviceBuffer moe_act;                       // bf16 [C * top_k, moe_inter]
  DeviceBuffer moe_y;                         // f32 [C * top_k, hidden]
  DeviceBuffer shared_out;                    // f32 [C, hidden]
  DeviceBuffer expert_load;                   // i64 [layers, n_experts]
  DeviceBuffer final_x;                       // bf16 [max_logit_rows, hidden]
  DeviceBuffer logits;                        // f32 [max_logit_rows, vocab]
  DeviceBuffer blas;                          // cuBLAS workspace
};

// Per-step inputs: fixed regions of one pinned host buffer mirrored on the device. The device
// addresses never change, so a captured CUDA graph reads each step's values.
class StepArena {
 public:
  enum Region {
    kCounts,
    kTokens,
    kPositions,
    kSlots,
    kLogitRows,
    kSeqs,
    kWork,
    kCombine,
    kTables,
    kNumRegions
  };
  absl::Status Init(const size_t (&bytes)[kNumRegions]);
  template <typename T>
  T* host(Region r) const {
    return reinterpret_cast<T*>(host_.as<unsigned char>() + off_[r]);
  }
  template <typename T>
  const T* dev(Region r) const {
    return reinterpret_cast<const T*>(dev_.as<unsigned char>() + off_[r]);
  }
  size_t bytes(Region r) const { return size_[r]; }
  // Copies n elements of T into region r (host) and queues their upload; false when too many.
  template <typename T>
  bool Put(Region r, const T* data, size_t n, cudaStream_t stream, cudaError_t* err) {
    if (n * sizeof(T) > size_[r]) return false;
    if (n == 0) return true;
    std::memcpy(host<T>(r), data, n * sizeof(T));
    const cudaError_t e = cudaMemcpyAsync(dev_.as<unsigned char>() + off_[r], host<T>(r),
                                          n * sizeof(T), cudaMemcpyHostToDevice, stream);
    if (e != cudaSuccess) *err = e;
    return true;
  }

 private:
  PinnedBuffer host_;
  DeviceBuffer dev_;
  size_t off_[kNumRegions] = {}, size_[kNumRegions] = {};
};

// What the layers of one step read (device pointers into the arena).
struct StepView {
  int64_t num_tokens = 0, num_seqs = 0, num_logit_rows = 0;
  bool all_decode = false;              // one new token per sequence
  const int32_t* tokens = nullptr;      // [num_tokens]
  const int32_t* positions = nullptr;   // [num_tokens]
  const int32_t* slots = nullptr;       // [num_tokens] cache rows of the new tokens
  const int32_t* logit_rows = nullptr;  // [num_logit_rows]
  const int32_t* tables = nullptr;      // concatenated block tables
  const cuda::MlaSeqDesc* seqs = nullptr;
  const cuda::MlaWorkItem* work = nullptr;
  const cuda::MlaCombineItem* combine = nullptr;
  const int32_t* counts = nullptr;  // device [num_work, num_combine]
  int32_t num_work = 0, num_combine = 0;
  int32_t work_grid = 0, combine_grid = 0;  // launch sizes (bounds under CUDA graphs)
  cuda::MlaKernel kernel = cuda::MlaKernel::kGeneric;
  int32_t tile_rows = 16;
};

class CudaExecutor final : public Executor {
 public:
  static absl::StatusOr<std::unique_ptr<CudaExecutor>> Create(const std::string& model_dir,
                                                              const CudaExecutorOptions& options);
  ~CudaExecutor() override;

  const ModelConfig& config() const override { return config_; }
  int32_t num_kv_blocks() const override { return num_blocks_; }
  const char* backend_name() const override { return "cuda"; }
  const char* dtype_name() const override { return "bf16"; }
  absl::Status Forward(absl::Span<const SequenceInput> seqs, std::vector<float>* logits) override;
  const ExpertLoad& expert_load() const override;

 private:
  CudaExecutor(ModelConfig config, const CudaExecutorOptions& options)
      : config_(std::move(config)), opts_(options) {}
  absl::Status Init(const WeightStore& store);
  absl::Status AllocateWorkspace();
  absl::Status PrepareStep(absl::Span<const SequenceInput> seqs);
  // Embedding and every layer: the device work of a step up to the final norm.
  absl::Status RunLayers();
  // Final norm and lm_head of logit rows [r0, r0 + rows) into ws_.logits.
  absl::Status LmHead(int64_t r0, int64_t rows);
  absl::Status CopyLogits(int64_t r0, int64_t rows, std::vector<float>* logits);
  absl::Status ComputeLogits(std::vector<float>* logits);
  // Decode steps of batch B replay a graph of RunLayers + LmHead captured at B's first step.
  absl::Status CaptureDecodeGraph(cudaGraphExec_t* exec);
  // cuda_layers.cc
  absl::Status Attention(int64_t layer);
  absl::Status FeedForward(int64_t layer);
  absl::Status Moe(int64_t layer);
  absl::Status Mlp(const DeviceMlp& m, const __nv_bfloat16* x, int64_t n, float* out,
                   bool accumulate);

  __nv_bfloat16* layer_cache(int64_t layer) const {
    return cache_.as<__nv_bfloat16>() + layer * static_cast<int64_t>(num_blocks_) * 64 * width_;
  }

  ModelConfig config_;
  CudaExecutorOptions opts_;
  std::unique_ptr<DeviceWeights> w_;
  cudaStream_t stream_ = nullptr;
  cublasHandle_t blas_ = nullptr;
  DeviceBuffer cache_;  // bf16 [layers, num_blocks, 64, width]
  int32_t num_blocks_ = 0;
  int64_t width_ = 0;  // kv_lora + rope
  Workspace ws_;
  StepArena arena_;
  PinnedBuffer host_logits_;
  DeviceBuffer inv_freq_;
  float rope_attn_factor_ = 1.f, softmax_scale_ = 1.f;
  bool tc_attention_ = false;  // else the generic kernel with f32 query / output
  int num_sms_ = 1;
  int64_t max_partials_ = 0, max_work_ = 0, max_combine_ = 0;
  int64_t max_inter_ = 0;  // widest dense / shared-expert MLP
  mutable ExpertLoad expert_load_;
  StepView step_;
  std::map<int64_t, cudaGraphExec_t> decode_graphs_;  // by batch size
  std::set<int64_t> decode_seen_;                     // batch sizes run eagerly once
  bool graphs_disabled_ = false;                      // a capture failed: eager steps from then on
  // Host scratch of PrepareStep, reused across steps.
  std::vector<int32_t> h_tokens_, h_positions_, h_slots_, h_logit_rows_, h_tables_, h_n_new_,
      h_start_;
  std::vector<cuda::MlaSeqDesc> h_seqs_;
};

}  // namespace dsinfer::cuda_backend
