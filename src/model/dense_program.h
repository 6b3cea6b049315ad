// The dense decoder of qwen2 / llama (Qwen2ForCausalLM, LlamaForCausalLM as the DeepSeek-R1
// distills use them) over BackendOps: embedding, per layer RMSNorm -> GQA attention (fused qkv
// projection, optional q/k/v and o biases, RoPE in HF's rotate_half layout with default or
// llama3 frequencies) -> RMSNorm -> SwiGLU MLP with residuals, final norm, lm_head (tied or
// not). Follows transformers' modeling_qwen2.py / modeling_llama.py (eager attention). Sharded
// (tp > 1) as Megatron-LM's tensor parallelism: heads and intermediate split, attention and MLP
// outputs all-reduced (shard_layout.h).
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "src/model/dense_weights.h"
#include "src/model/model_program.h"

namespace dsinfer {

// GQA's cache row: [K (kv_heads * head_dim) | V (kv_heads * head_dim)] per token and layer,
// K after RoPE, for this rank's KV heads. The one place this width is derived.
KvCacheSpec GqaKvCacheSpec(const ModelConfig& c, const ShardLayout& layout, KvDType dtype);

// The rotary frequencies and softmax scale of a dense config (default or llama3 rope_scaling).
GqaParams DenseGqaParams(const ModelConfig& c);

class DenseProgram final : public ModelProgram {
 public:
  // InvalidArgument for a layout that does not divide the model or a backend without GQA
  // attention.
  static absl::StatusOr<std::unique_ptr<DenseProgram>> Load(const ModelConfig& config,
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
  DenseProgram(const ModelConfig& config, const ShardLayout& layout, BackendOps& ops,
               DenseWeights weights);
  absl::Status Attention(int64_t layer, Tensor xn, Tensor out, bool accumulate);

  ModelConfig config_;
  ShardLayout layout_;
  BackendOps& ops_;
  DenseWeights weights_;
  GqaParams gqa_;
  float eps_ = 1e-6f;
};

}  // namespace dsinfer
