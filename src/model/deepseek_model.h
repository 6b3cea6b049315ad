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
  ProgressFn progress;  // called while loading with (bytes read, total bytes)
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
                                                    int threads);

  const ModelConfig& config() const { return config_; }
  Precision precision() const { return weights_->precision; }
  int64_t weight_bytes() const { return weights_->total_bytes; }
  int64_t latent_width() const { return config_.kv_lora_rank + config_.qk_rope_head_dim; }
  LatentCacheStorage MakeCache(int32_t num_blocks) const {
    return LatentCacheStorage(config_.num_hidden_layers, num_blocks, latent_width());
  }
  const ExpertLoad& expert_load() const { return expert_load_; }

  // Runs one step: appends each sequence's new tokens to its latent cache and returns logits
  // [rows, vocab]: per sequence in order, one row per new token (all_logits) or its last.
  absl::Status Forward(absl::Span<const SequenceInput> seqs, LatentCacheStorage& cache,
                       std::vector<float>* logits);

 private:
  DeepseekModel(ModelConfig config, std::unique_ptr<ModelWeights> weights, int threads);
  absl::StatusOr<ForwardPlan> Plan(absl::Span<const SequenceInput> seqs,
                                const LatentCacheStorage& cache) const;
  void Attention(int64_t layer, absl::Span<const SequenceInput> seqs, const ForwardPlan& plan,
                 const float* xn, LatentCacheStorage& cache, float* out);
  void Moe(int64_t layer, const float* xn, int64_t n, float* out);
  void Mlp(const MlpWeights& w, const float* x, int64_t n, float* out, bool accumulate);

  ModelConfig config_;
  std::unique_ptr<ModelWeights> weights_;
  ThreadPool pool_;
  cpu::ParallelFor pfor_;
  std::vector<float> inv_freq_;  // rope
  float rope_attn_factor_ = 1.0f;
  float softmax_scale_ = 1.0f;
  ExpertLoad expert_load_;
};

}  // namespace dsinfer
