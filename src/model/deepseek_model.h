// DeepSeek-V2 / V3 / Kimi-K2 forward pass on the CPU: the reference backend and embedded
// default. Follows DeepSeek's reference inference (MLA with latent KV cache, MoE with shared
// experts and group-limited routing) with f32 or bf16 weights and f32 accumulation.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "kernels/cpu/parallel.h"
#include "src/comm/communicator.h"
#include "src/config/model_config.h"
#include "src/core/thread_pool.h"
#include "src/kv_cache/latent_cache.h"
#include "src/model/model_weights.h"
#include "src/model/step.h"
#include "src/weights/weight_store.h"

namespace dsinfer {

struct ModelOptions {
  Precision precision = Precision::kF32;
  int threads = 0;  // 0: DSINFER_THREADS or all cores
  ProgressFn progress = nullptr;  // called while loading with (bytes read, total bytes)
  // Tensor / expert parallelism: this rank's share is loaded, and every Forward runs the
  // layout's collectives on `comm` (all ranks call Forward with the same inputs, in lockstep).
  ShardLayout layout = {};
  Communicator* comm = nullptr;  // required when layout.tp > 1; not owned
};

// Tokens routed to each expert, per MoE layer, accumulated over steps.
struct ExpertLoad {
  std::vector<std::vector<int64_t>> tokens;  // [layer][expert]; empty rows for dense layers
};

class DeepseekModel {
 public:
  static absl::StatusOr<std::unique_ptr<DeepseekModel>> Load(const std::string& model_dir,
                                                             const ModelOptions& options);
  static std::unique_ptr<DeepseekModel> FromWeights(ModelConfig config,
                                                    std::unique_ptr<ModelWeights> weights,
                                                    int threads, Communicator* comm = nullptr);

  const ModelConfig& config() const { return config_; }
  Precision precision() const { return weights_->precision; }
  int64_t weight_bytes() const { return weights_->total_bytes; }
  int64_t latent_width() const { return config_.kv_lora_rank + config_.qk_rope_head_dim; }
  LatentCacheStorage MakeCache(int32_t num_blocks) const {
    return LatentCacheStorage(config_.num_hidden_layers, num_blocks, latent_width());
  }
  const ExpertLoad& expert_load() const { return expert_load_; }
  const ShardLayout& layout() const { return weights_->layout; }
  Communicator* comm() const { return comm_; }

  // Runs one step: appends each sequence's new tokens to its latent cache and returns logits
  // [rows, vocab]: per sequence in order, one row per new token (all_logits) or its last.
  absl::Status Forward(absl::Span<const SequenceInput> seqs, LatentCacheStorage& cache,
                       std::vector<float>* logits);

 private:
  DeepseekModel(ModelConfig config, std::unique_ptr<ModelWeights> weights, int threads,
                Communicator* comm);
  absl::StatusOr<ForwardPlan> Plan(absl::Span<const SequenceInput> seqs,
                                const LatentCacheStorage& cache) const;
  void Attention(int64_t layer, absl::Span<const SequenceInput> seqs, const ForwardPlan& plan,
                 const float* xn, LatentCacheStorage& cache, float* out);
  void Moe(int64_t layer, const float* xn, int64_t n, float* out);
  // [expert] -> (row, routing weight) pairs, rows in ascending order.
  using ExpertAssignment = std::vector<std::vector<std::pair<int32_t, float>>>;
  // out[row] += weight · expert(x[row]) for every assigned pair, experts in ascending order
  // (x rows ldx apart, out rows hidden apart).
  void RunExperts(const MoeWeights& m, const ExpertAssignment& assigned, const float* x,
                  int64_t ldx, float* out);
  // The expert-parallel MoE layer (moe_parallel.cc): out [n, hidden] on every rank.
  absl::Status MoeParallel(int64_t layer, const float* xn, int64_t n, float* out);
  // Routes tokens (router in f32, DeepSeek's rules): ids/weights [n, top_k].
  void Route(int64_t layer, const float* xn, int64_t n, std::vector<int32_t>* ids,
             std::vector<float>* weights);
  absl::Status AllReduce(float* data, int64_t n);
  absl::Status Embed(absl::Span<const SequenceInput> seqs, int64_t n, float* x);
  absl::Status LmHead(const float* last, int64_t rows, std::vector<float>* logits);
  void Mlp(const MlpWeights& w, const float* x, int64_t n, float* out, bool accumulate);

  ModelConfig config_;
  std::unique_ptr<ModelWeights> weights_;
  ThreadPool pool_;
  cpu::ParallelFor pfor_;
  std::vector<float> inv_freq_;  // rope
  float rope_attn_factor_ = 1.0f;
  float softmax_scale_ = 1.0f;
  ExpertLoad expert_load_;
  Communicator* comm_ = nullptr;
  std::vector<float> pending_load_;  // [layers * experts] routed this step (parallel runs)
};

}  // namespace dsinfer
