// The DeepSeek-V2 / V3 / V3.2 / Kimi-K2 network written once over BackendOps: embedding, per
// layer RMSNorm -> MLA (V3.2: over the indexer's top-k positions only) -> RMSNorm -> MoE or dense MLP with residuals, final norm, lm_head; under a
// ShardLayout the collectives are ops of the same program (tensor parallel attention, dense MLP,
// vocabulary; expert-parallel MoE with dispatch / combine). Follows DeepSeek's reference
// inference (inference/model.py of DeepSeek-V3; DeepSeek-V2's own routing rule).
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "src/config/model_config.h"
#include "src/kv_cache/kv_cache_spec.h"
#include "src/model/backend_ops.h"
#include "src/model/deepseek_weights.h"
#include "src/model/model_program.h"
#include "src/model/shard_layout.h"
#include "src/model/step_input.h"

namespace dsinfer {

// MLA's cache row: [kv_a_layernorm(latent) (kv_lora_rank) | rotated k_pe (qk_rope_head_dim)] per
// token and layer, plus V3.2's index key (128 e4m3 codes and their f32 scale) as the second
// component. The one place these widths are derived.
KvCacheSpec MlaKvCacheSpec(const ModelConfig& c, KvDType dtype);

class DeepseekProgram final : public ModelProgram {
 public:
  // Loads this rank's weights into `ops` (which must outlive the program).
  static absl::StatusOr<std::unique_ptr<DeepseekProgram>> Load(const ModelConfig& config,
                                                              const ShardLayout& layout,
                                                              const WeightStore& store,
                                                              BackendOps& ops);

  const ModelConfig& config() const override { return config_; }
  const ShardLayout& layout() const override { return layout_; }
  const DeepseekWeights& weights() const { return weights_; }
  int64_t weight_bytes() const override { return weights_.bytes; }
  int64_t fp8_weight_bytes() const override { return weights_.fp8_bytes; }

  // Runs every layer over the step `ops` has begun; returns the final hidden states [N, hidden]
  // (f32, in the backend's memory).
  absl::StatusOr<Tensor> Layers(const StepInput& step) override;
  // Logits [rows, vocab] (f32) of the step's logit rows [first, first + rows): final norm and
  // lm_head (gathered over a vocabulary-parallel layout). Callers take them in chunks.
  absl::StatusOr<Tensor> Logits(const StepInput& step, Tensor x, int64_t first,
                                int64_t rows) override;

  bool has_mtp() const override { return config_.mtp_layers > 0; }
  absl::StatusOr<Tensor> MtpLogits(const StepInput& step, Tensor h, MtpInput input,
                                   absl::Span<const int32_t> next_tokens,
                                   absl::Span<const int32_t> rows, Tensor* hidden_out) override;

  // The most scratch bytes a step of N tokens and R logit rows takes.
  int64_t ScratchBytes(int64_t max_tokens, int64_t max_logit_rows) const override;
  // Everything a backend with fixed workspaces must reserve for such steps.
  WorkspaceNeeds Needs(int64_t max_tokens, int64_t max_logit_rows,
                       int64_t max_seqs) const override;

 private:
  DeepseekProgram(const ModelConfig& config, const ShardLayout& layout, BackendOps& ops,
                  DeepseekWeights weights);
  absl::Status Block(int64_t l, Tensor x, Tensor xn, Tensor xr, Tensor branch);
  absl::Status Attention(int64_t layer, Tensor xn, Tensor out, bool accumulate);
  absl::Status MoeLocal(int64_t layer, Tensor xn, Tensor xr, Tensor out);
  // Expert parallel (dispatch / combine of moe_dispatch.h): out [N, hidden] on every rank.
  absl::Status MoeParallel(int64_t layer, Tensor xn, Tensor xr, Tensor out);

  ModelConfig config_;
  ShardLayout layout_;
  BackendOps& ops_;
  DeepseekWeights weights_;
  MlaParams mla_;
  IndexerParams index_;  // deepseek_v32 only
  RouterParams router_;
  float eps_ = 1e-6f;
};

}  // namespace dsinfer
