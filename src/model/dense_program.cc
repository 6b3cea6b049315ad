#include "src/model/dense_program.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "kernels/cpu/rope.h"
#include "src/core/status_macros.h"

namespace dsinfer {

KvCacheSpec GqaKvCacheSpec(const ModelConfig& c, const ShardLayout& layout, KvDType dtype) {
  return {.num_layers = c.num_hidden_layers,
          .row_width = 2 * layout.LocalKvHeads(c) * c.head_dim,
          .dtype = dtype,
          .block_size = kKvBlockSize};
}

GqaParams DenseGqaParams(const ModelConfig& c) {
  GqaParams p{.heads = c.num_attention_heads,
              .kv_heads = c.num_key_value_heads,
              .head_dim = c.head_dim,
              // transformers: scaling = head_dim ** -0.5 (a Python float, applied in f32).
              .softmax_scale = static_cast<float>(std::pow(static_cast<double>(c.head_dim), -0.5))};
  const RopeScaling& r = c.rope_scaling;
  p.inv_freq = r.llama3 ? cpu::Llama3InvFreq({.rope_dim = c.head_dim,
                                              .theta = c.rope_theta,
                                              .factor = r.factor,
                                              .low_freq_factor = r.low_freq_factor,
                                              .high_freq_factor = r.high_freq_factor,
                                              .original_max_position =
                                                  r.original_max_position_embeddings})
                        : cpu::RopeInvFreq({.rope_dim = c.head_dim, .theta = c.rope_theta});
  return p;
}

absl::StatusOr<std::unique_ptr<DenseProgram>> DenseProgram::Load(const ModelConfig& config,
                                                                 const ShardLayout& layout,
                                                                 const WeightStore& store,
                                                                 BackendOps& ops) {
  if (ops.world_size() != layout.tp || ops.rank() != layout.rank) {
    return absl::InternalError(absl::StrCat("the backend is rank ", ops.rank(), " of ",
                                            ops.world_size(), ", the layout rank ", layout.rank,
                                            " of ", layout.tp));
  }
  if (!ops.has_gqa_attention()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "model_type ", config.model_type, ": the ", ops.name(),
        " backend has no grouped-query attention op yet (use backend cpu)"));
  }
  ASSIGN_OR_RETURN(DenseWeights w, LoadDenseWeights(config, layout, store, ops));
  return std::unique_ptr<DenseProgram>(new DenseProgram(config, layout, ops, std::move(w)));
}

DenseProgram::DenseProgram(const ModelConfig& config, const ShardLayout& layout, BackendOps& ops,
                           DenseWeights weights)
    : config_(config), layout_(layout), ops_(ops), weights_(std::move(weights)) {
  gqa_ = DenseGqaParams(config_);
  gqa_.heads = layout_.LocalHeads(config_);
  gqa_.kv_heads = layout_.LocalKvHeads(config_);
  eps_ = static_cast<float>(config_.rms_norm_eps);
}

absl::StatusOr<Tensor> DenseProgram::Layers(const StepInput& step) {
  const int64_t N = step.num_tokens, D = config_.hidden_size;
  const bool single = layout_.single();
  // x: [N, hidden] f32 residual stream; xn: the normed GEMM input; branch (sharded): this rank's
  // partial sum of a block's output, all-reduced before it joins x.
  ASSIGN_OR_RETURN(Tensor x, ops_.Scratch(N, D, ElemType::kF32));
  RETURN_IF_ERROR(ops_.Embed(*weights_.embed, layout_.VocabBegin(config_), x));
  if (!single) RETURN_IF_ERROR(ops_.AllReduce(x));
  ASSIGN_OR_RETURN(Tensor xn, ops_.Scratch(N, D, ops_.gemm_dtype()));
  Tensor branch;
  if (!single) {
    ASSIGN_OR_RETURN(branch, ops_.Scratch(N, D, ElemType::kF32));
  }
  auto add_branch = [&]() -> absl::Status {
    RETURN_IF_ERROR(ops_.AllReduce(branch));
    return ops_.Add(x, branch);
  };
  for (int64_t l = 0; l < config_.num_hidden_layers; ++l) {
    const auto& L = weights_.layers[l];
    const int64_t mark = ops_.ScratchMark();
    RETURN_IF_ERROR(ops_.RmsNorm(x, *L.input_norm, eps_, xn));
    RETURN_IF_ERROR(Attention(l, xn, single ? x : branch, /*accumulate=*/single));
    if (!single) RETURN_IF_ERROR(add_branch());
    if (L.o_bias) RETURN_IF_ERROR(ops_.AddBias(x, *L.o_bias));  // once, after the sum
    ops_.ScratchRelease(mark);
    RETURN_IF_ERROR(ops_.RmsNorm(x, *L.post_attention_norm, eps_, xn));
    RETURN_IF_ERROR(ops_.Mlp(xn, *L.gate_up, *L.down, single ? x : branch, /*accumulate=*/single));
    if (!single) RETURN_IF_ERROR(add_branch());
  }
  return x;
}

// out (+)= o_proj(GQA(q, k, v)) over this rank's heads, with q / k / v from one fused projection.
absl::Status DenseProgram::Attention(int64_t layer, Tensor xn, Tensor out, bool accumulate) {
  const auto& L = weights_.layers[layer];
  const int64_t N = xn.rows, qw = gqa_.heads * gqa_.head_dim, kw = gqa_.kv_heads * gqa_.head_dim;
  // qkv: [N, q | k | v]
  ASSIGN_OR_RETURN(Tensor qkv, ops_.Scratch(N, qw + 2 * kw, ElemType::kF32));
  RETURN_IF_ERROR(ops_.Linear(xn, *L.qkv, qkv, false));
  const Tensor q = qkv.Cols(0, qw), k = qkv.Cols(qw, kw), v = qkv.Cols(qw + kw, kw);
  if (L.q_bias) {
    RETURN_IF_ERROR(ops_.AddBias(q, *L.q_bias));
    RETURN_IF_ERROR(ops_.AddBias(k, *L.k_bias));
    RETURN_IF_ERROR(ops_.AddBias(v, *L.v_bias));
  }
  ASSIGN_OR_RETURN(Tensor attn, ops_.Scratch(N, qw, ops_.gemm_dtype()));
  RETURN_IF_ERROR(ops_.GqaAttention(layer, gqa_, q, k, v, attn));
  return ops_.Linear(attn, *L.o, out, accumulate);
}

absl::StatusOr<Tensor> DenseProgram::Logits(const StepInput& step, Tensor x, int64_t first,
                                            int64_t R) {
  return HeadLogits(ops_, config_, layout_, *weights_.final_norm, *weights_.lm_head, eps_, x,
                    first, R);
}

int64_t DenseProgram::ScratchBytes(int64_t N, int64_t R) const {
  // Mirrors Layers' and Logits' Scratch calls; checked against the CPU backend's peak in tests.
  const ElemType g = ops_.gemm_dtype(), f = ElemType::kF32;
  const int64_t D = config_.hidden_size, qw = gqa_.heads * gqa_.head_dim;
  const int64_t kw = gqa_.kv_heads * gqa_.head_dim;
  const int64_t persistent = ScratchBytesOf(N, D, f) + ScratchBytesOf(N, D, g) +
                             (layout_.single() ? 0 : ScratchBytesOf(N, D, f));
  const int64_t attn = ScratchBytesOf(N, qw + 2 * kw, f) + ScratchBytesOf(N, qw, g);
  const int64_t logits = HeadScratchBytes(config_, layout_, g, weights_.lm_head->rows, R);
  return persistent + std::max(attn, logits);
}

WorkspaceNeeds DenseProgram::Needs(int64_t T, int64_t R, int64_t S) const {
  return {.scratch_bytes = ScratchBytes(T, R),
          .max_tokens = T,
          .max_logit_rows = R,
          .max_seqs = S,
          .max_positions = config_.max_position_embeddings,
          .num_layers = config_.num_hidden_layers,
          .hidden = config_.hidden_size,
          .vocab = config_.vocab_size,
          .gqa = gqa_,
          .max_mlp_inter = config_.intermediate_size};
}

}  // namespace dsinfer
