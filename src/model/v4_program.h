// The DeepSeek-V4 network over BackendOps (transformers' modeling_deepseek_v4.py; V4 paper §2):
// embedding widened to hc_mult residual streams; per layer mHC collapse -> RMSNorm -> attention
// (shared K=V head, partial RoPE, sliding window + compressed entries + sinks, grouped output
// projection) -> mHC expand, mHC collapse -> RMSNorm -> MoE (hash or top-k routing, clipped
// SwiGLU, one shared expert) -> mHC expand; the hyper-head collapses the streams; final norm,
// lm_head. Under a ShardLayout (shard_layout.h): q heads and output groups split over tp and
// all-reduced, the embedding and lm_head by vocabulary, routed experts over ep through dispatch /
// combine (moe_dispatch.h), the shared expert split over tp; the K=V head, compressors, indexer
// (every rank computes the same top-k from the same all-reduced stream) and mHC replicated.
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "src/model/model_program.h"
#include "src/model/v4_weights.h"

namespace dsinfer {

// V4's per-token cache row (one width for every layer: the widest layer type's; see
// V4AttnParams): sliding head_dim; HCA 4·head_dim; CSA 6·head_dim + 5·index_head_dim. f32.
// Every rank of a layout holds the whole row (the K=V head and compressors are replicated).
int64_t V4RowWidth(const ModelConfig& c);
KvCacheSpec V4KvCacheSpec(const ModelConfig& c);

class V4Program final : public ModelProgram {
 public:
  static absl::StatusOr<std::unique_ptr<V4Program>> Load(const ModelConfig& config,
                                                        const ShardLayout& layout,
                                                        const WeightStore& store,
                                                        BackendOps& ops);
  const ModelConfig& config() const override { return config_; }
  const ShardLayout& layout() const override { return layout_; }
  int64_t weight_bytes() const override { return weights_.bytes; }
  int64_t fp8_weight_bytes() const override { return weights_.fp8_bytes; }
  absl::StatusOr<Tensor> Layers(const StepInput& step) override;
  absl::StatusOr<Tensor> Logits(const StepInput& step, Tensor x, int64_t first,
                                int64_t rows) override;
  int64_t ScratchBytes(int64_t max_tokens, int64_t max_logit_rows) const override;
  WorkspaceNeeds Needs(int64_t max_tokens, int64_t max_logit_rows,
                       int64_t max_seqs) const override;

 private:
  V4Program(const ModelConfig& config, const ShardLayout& layout, BackendOps& ops,
            V4Weights weights);
  // y [N, hidden] = the attention block of `layer` on xn [N, hidden] (sharded: this rank's
  // partial sum, all-reduced by the caller).
  absl::Status Attention(int64_t layer, Tensor xn, Tensor y);
  // y [N, hidden] = the MoE block (routed + shared experts), whole on every rank.
  absl::Status Moe(int64_t layer, Tensor xn, Tensor y);
  int64_t AttentionScratch(int64_t layer, int64_t N) const;

  ModelConfig config_;
  ShardLayout layout_;
  BackendOps& ops_;
  V4Weights weights_;
  std::vector<V4AttnParams> attn_;  // per layer
  HyperParams hyper_;
  V4RouterParams router_;
  float eps_ = 1e-6f;
};

}  // namespace dsinfer
