#include "src/model/deepseek_program.h"

#include <vector>

#include "kernels/cpu/dsa_indexer.h"
#include "src/core/status_macros.h"
#include "src/model/attention_scales.h"
#include "src/model/moe_dispatch.h"

namespace dsinfer {

KvCacheSpec MlaKvCacheSpec(const ModelConfig& c, KvDType dtype) {
  return {.num_layers = c.num_hidden_layers + c.mtp_layers,  // the MTP block's own cache layer
          .row_width = c.kv_lora_rank + c.qk_rope_head_dim,
          .dtype = dtype,
          .block_size = kKvBlockSize,
          .index_row_bytes = c.dsa.enabled ? cpu::IndexKeyRowBytes(c.dsa.index_head_dim) : 0};
}

absl::StatusOr<std::unique_ptr<DeepseekProgram>> DeepseekProgram::Load(const ModelConfig& config,
                                                                       const ShardLayout& layout,
                                                                       const WeightStore& store,
                                                                       BackendOps& ops) {
  if (ops.world_size() != layout.tp || ops.rank() != layout.rank) {
    return absl::InvalidArgumentError(
        "a tensor-parallel model needs a backend on a communicator of its ranks");
  }
  ASSIGN_OR_RETURN(DeepseekWeights w, LoadDeepseekWeights(config, layout, store, ops));
  return std::unique_ptr<DeepseekProgram>(new DeepseekProgram(config, layout, ops, std::move(w)));
}

DeepseekProgram::DeepseekProgram(const ModelConfig& config, const ShardLayout& layout,
                                 BackendOps& ops, DeepseekWeights weights)
    : config_(config), layout_(layout), ops_(ops), weights_(std::move(weights)) {
  const ModelConfig& c = config_;
  AttentionScales scales = MlaAttentionScales(c);
  eps_ = static_cast<float>(c.rms_norm_eps);
  mla_ = {.heads = layout_.LocalHeads(c),
          .nope = c.qk_nope_head_dim,
          .rope = c.qk_rope_head_dim,
          .v = c.v_head_dim,
          .kv_lora = c.kv_lora_rank,
          .eps = eps_,
          .softmax_scale = scales.softmax_scale,
          .rope_attn_factor = scales.rope_attn_factor,
          .inv_freq = std::move(scales.inv_freq)};
  router_ = {.n_experts = c.n_routed_experts,
             .top_k = c.num_experts_per_tok,
             .n_group = c.n_group,
             .topk_group = c.topk_group,
             .sigmoid = c.scoring_func == ScoringFunc::kSigmoid,
             .group_top2_sum = c.topk_method == TopkMethod::kNoauxTc,
             .normalize = c.norm_topk_prob,
             .scale = static_cast<float>(c.routed_scaling_factor),
             // DeepSeek-V2 scales only un-normalised weights; V3 and later scale both.
             .scale_when_normalized = c.model_type != "deepseek_v2"};
  if (c.dsa.enabled) {
    index_ = {.heads = c.dsa.index_n_heads,
              .head_dim = c.dsa.index_head_dim,
              .rope = c.qk_rope_head_dim,
              .topk = c.dsa.index_topk,
              .ue8m0 = c.fp8.scale_ue8m0,
              .eps = 1e-6f,  // the reference's LayerNorm default
              .rope_attn_factor = mla_.rope_attn_factor,
              .inv_freq = mla_.inv_freq};
  }
  std::vector<bool> is_moe;
  for (const auto& L : weights_.layers) is_moe.push_back(L.is_moe);
  ops_.InitExpertLoad(is_moe, c.n_routed_experts);
}

absl::StatusOr<Tensor> DeepseekProgram::Layers(const StepInput& step) {
  const ModelConfig& c = config_;
  const DeepseekWeights& w = weights_;
  const int64_t N = step.num_tokens, D = c.hidden_size;
  const bool single = layout_.single();
  const ElemType gemm = ops_.gemm_dtype();

  // x: [N, hidden] f32 residual stream; embedding rows outside this rank's vocab are zero.
  ASSIGN_OR_RETURN(Tensor x, ops_.Scratch(N, D, ElemType::kF32));
  RETURN_IF_ERROR(ops_.Embed(*w.embed, layout_.VocabBegin(c), x));
  RETURN_IF_ERROR(ops_.AllReduce(x));

  bool any_moe = false;
  for (const auto& L : w.layers) any_moe |= L.is_moe;
  // xn: [N, hidden] normed GEMM input; xr: the same in f32 for the router (routing in f32).
  ASSIGN_OR_RETURN(Tensor xn, ops_.Scratch(N, D, gemm));
  Tensor xr = xn;
  if (any_moe && gemm != ElemType::kF32) {
    ASSIGN_OR_RETURN(xr, ops_.Scratch(N, D, ElemType::kF32));
  }
  // branch: [N, hidden] f32 partial sums of this rank before their all-reduce (sharded runs).
  Tensor branch;
  if (!single) {
    ASSIGN_OR_RETURN(branch, ops_.Scratch(N, D, ElemType::kF32));
  }
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) RETURN_IF_ERROR(Block(l, x, xn, xr, branch));
  if (!single && any_moe) RETURN_IF_ERROR(ops_.ReduceExpertLoad());
  return x;
}

// One decoder block (layer l): x += MLA(norm(x)); x += MoE or MLP(norm(x)). xn, xr (and branch
// on sharded layouts) are the caller's [N, hidden] work rows.
absl::Status DeepseekProgram::Block(int64_t l, Tensor x, Tensor xn, Tensor xr, Tensor branch) {
  const DeepseekLayerWeights& L = weights_.layers[l];
  const bool single = layout_.single();
  // Each block's temporaries are freed when it has added its result to x.
  const int64_t mark = ops_.ScratchMark();
  RETURN_IF_ERROR(ops_.RmsNorm(x, *L.input_norm, eps_, xn));
  if (single) {
    RETURN_IF_ERROR(Attention(l, xn, x, /*accumulate=*/true));
  } else {
    RETURN_IF_ERROR(Attention(l, xn, branch, /*accumulate=*/false));
    RETURN_IF_ERROR(ops_.AllReduce(branch));
    RETURN_IF_ERROR(ops_.Add(x, branch));
  }
  ops_.ScratchRelease(mark);
  const bool moe = L.is_moe;
  RETURN_IF_ERROR(ops_.RmsNorm(x, *L.post_attention_norm, eps_, xn,
                               moe && xr.data != xn.data ? xr : Tensor{}));
  if (moe && single) {
    RETURN_IF_ERROR(MoeLocal(l, xn, xr, x));
  } else if (moe) {
    RETURN_IF_ERROR(MoeParallel(l, xn, xr, branch));
    RETURN_IF_ERROR(ops_.Add(x, branch));
  } else if (single) {
    RETURN_IF_ERROR(ops_.Mlp(xn, *L.gate_up, *L.down, x, /*accumulate=*/true));
  } else {
    RETURN_IF_ERROR(ops_.Mlp(xn, *L.gate_up, *L.down, branch, /*accumulate=*/false));
    RETURN_IF_ERROR(ops_.AllReduce(branch));
    RETURN_IF_ERROR(ops_.Add(x, branch));
  }
  ops_.ScratchRelease(mark);
  return absl::OkStatus();
}

// DeepSeek-V3's MTP module (paper section 2.2), as vLLM / SGLang run the released layer: row i
// (position p) combines a hidden state h_p with the embedding of token p + 1, goes through the
// MTP block (its own cache layer, rotary position p) and predicts token p + 2 through
// shared_head. From the main model h_p is its final normed hidden state; a chained draft step
// (k > 1 drafts: the one layer reused, as vLLM and SGLang run V3's single MTP layer for several
// draft tokens) pairs the MTP block's own shared_head-normed output with the drafted token, as
// SGLang's NextN worker feeds it back.
absl::StatusOr<Tensor> DeepseekProgram::MtpLogits(const StepInput& step, Tensor h,
                                                  MtpInput input,
                                                  absl::Span<const int32_t> next_tokens,
                                                  absl::Span<const int32_t> rows,
                                                  Tensor* hidden_out) {
  const ModelConfig& c = config_;
  const DeepseekWeights& w = weights_;
  if (!has_mtp()) return absl::FailedPreconditionError("the MTP layer is not loaded");
  const int64_t N = step.num_tokens, D = c.hidden_size, R = static_cast<int64_t>(rows.size());
  const ElemType gemm = ops_.gemm_dtype();
  const bool single = layout_.single();
  const int64_t layer = c.num_hidden_layers;
  // y: [N, hidden] f32, the MTP block's residual stream.
  ASSIGN_OR_RETURN(Tensor y, ops_.Scratch(N, D, ElemType::kF32));
  {
    const int64_t mark = ops_.ScratchMark();
    // cat: [N, 2 * hidden] = [enorm(embed(next)) | hnorm(state)]
    ASSIGN_OR_RETURN(Tensor cat, ops_.Scratch(N, 2 * D, gemm));
    ASSIGN_OR_RETURN(Tensor e, ops_.Scratch(N, D, ElemType::kF32));
    if (input == MtpInput::kMainHidden) {
      RETURN_IF_ERROR(ops_.RmsNorm(h, *w.final_norm, eps_, e));
      RETURN_IF_ERROR(ops_.RmsNorm(e, *w.mtp.hnorm, eps_, cat.Cols(D, D)));
    } else {
      RETURN_IF_ERROR(ops_.RmsNorm(h, *w.mtp.hnorm, eps_, cat.Cols(D, D)));
    }
    // Embedding rows outside this rank's vocabulary are zero: summed over the ranks.
    RETURN_IF_ERROR(ops_.EmbedIds(*w.embed, layout_.VocabBegin(c), next_tokens, e));
    RETURN_IF_ERROR(ops_.AllReduce(e));
    RETURN_IF_ERROR(ops_.RmsNorm(e, *w.mtp.enorm, eps_, cat.Cols(0, D)));
    RETURN_IF_ERROR(ops_.Linear(cat, *w.mtp.eh_proj, y, false));
    ops_.ScratchRelease(mark);
  }
  ASSIGN_OR_RETURN(Tensor xn, ops_.Scratch(N, D, gemm));
  Tensor xr = xn;
  if (w.layers[layer].is_moe && gemm != ElemType::kF32) {
    ASSIGN_OR_RETURN(xr, ops_.Scratch(N, D, ElemType::kF32));
  }
  Tensor branch;
  if (!single) {
    ASSIGN_OR_RETURN(branch, ops_.Scratch(N, D, ElemType::kF32));
  }
  RETURN_IF_ERROR(Block(layer, y, xn, xr, branch));
  if (R == 0) return Tensor{.dtype = ElemType::kF32, .rows = 0, .cols = c.vocab_size};
  // shared_head: norm and head on the asked rows.
  ASSIGN_OR_RETURN(Tensor sel, ops_.Scratch(R, D, ElemType::kF32));
  RETURN_IF_ERROR(ops_.GatherRows(y, rows, sel));
  if (hidden_out != nullptr) {
    // hidden_out: [R, hidden] f32, the state a chained draft step pairs with the draft.
    ASSIGN_OR_RETURN(*hidden_out, ops_.Scratch(R, D, ElemType::kF32));
    RETURN_IF_ERROR(ops_.RmsNorm(sel, *w.mtp.head_norm, eps_, *hidden_out));
  }
  ASSIGN_OR_RETURN(Tensor normed, ops_.Scratch(R, D, gemm));
  RETURN_IF_ERROR(ops_.RmsNorm(sel, *w.mtp.head_norm, eps_, normed));
  const BackendWeight& head = w.mtp.head ? *w.mtp.head : *w.lm_head;
  // local: [R, this rank's vocabulary] (all of it on one rank)
  ASSIGN_OR_RETURN(Tensor local, ops_.Scratch(R, head.rows, ElemType::kF32));
  RETURN_IF_ERROR(ops_.Linear(normed, head, local, false));
  if (single) return local;
  std::vector<int64_t> cols(layout_.tp);
  for (int r = 0; r < layout_.tp; ++r)
    cols[r] = ShardLayout::PartBegin(c.vocab_size, layout_.tp, r + 1) -
              ShardLayout::PartBegin(c.vocab_size, layout_.tp, r);
  ASSIGN_OR_RETURN(Tensor logits, ops_.Scratch(R, c.vocab_size, ElemType::kF32));
  RETURN_IF_ERROR(ops_.AllGatherCols(local, cols, logits));
  return logits;
}

int64_t DeepseekProgram::ScratchBytes(int64_t N, int64_t R) const {
  // Mirrors Layers' and Logits' Scratch calls (each rounded up as ScratchBytesOf does); checked against
  // the CPU backend's measured peak in tests.
  const ModelConfig& c = config_;
  const ElemType g = ops_.gemm_dtype(), f = ElemType::kF32, i32 = ElemType::kI32;
  const int64_t D = c.hidden_size, H = mla_.heads, qk = mla_.nope + mla_.rope;
  const int64_t K = router_.top_k, W = layout_.tp;
  bool any_moe = false;
  for (const auto& L : weights_.layers) any_moe |= L.is_moe;
  auto S = ScratchBytesOf;
  int64_t persistent = S(N, D, f) + S(N, D, g);
  if (any_moe && g != f) persistent += S(N, D, f);
  if (W > 1) persistent += S(N, D, f);
  const int64_t qa = weights_.layers.empty() ? 0 : weights_.layers[0].qa_width;
  int64_t attn = S(N, qa + mla_.kv_lora + mla_.rope, f) + S(N, H * mla_.v, g);
  if (c.q_lora_rank > 0) attn += S(N, c.q_lora_rank, g) + S(N, H * qk, f);
  if (c.dsa.enabled) {
    const int64_t Hi = index_.heads, Di = index_.head_dim;
    attn += S(N, Hi * Di, f) + S(N, Di, f) + S(N, Hi, f) + S(N, index_.topk, i32);
  }
  int64_t moe = 0;
  if (any_moe && W == 1) moe = S(N, K, i32) + S(N, K, f);
  if (any_moe && W > 1) {
    const int64_t nl = (N + W - 1) / W;
    moe = S(nl, K, i32) + S(nl, K, f) + S(nl, D, f) + DispatchScratchBytes(N, W, D, K, g);
  }
  const int64_t Vl = weights_.lm_head ? weights_.lm_head->rows : c.vocab_size;
  const int64_t logits = HeadScratchBytes(c, layout_, g, Vl, R);
  // MtpLogits (after the logits are released): y, then the input or the block and the head.
  int64_t mtp = 0;
  if (has_mtp()) {
    // A chained draft step (k > 1) runs after a BeginStep of its own, over at most N rows with
    // its [rows, hidden] state first: within `persistent`.
    const bool mtp_moe = weights_.layers[c.num_hidden_layers].is_moe;
    const int64_t Vm = weights_.mtp.head ? weights_.mtp.head->rows : Vl;
    const int64_t head = 2 * S(R, D, f) + S(R, D, g) + S(R, Vm, f) + (W > 1 ? S(R, c.vocab_size, f) : 0);
    const int64_t input = S(N, 2 * D, g) + S(N, D, f);
    const int64_t block = S(N, D, g) + (mtp_moe && g != f ? S(N, D, f) : 0) +
                          (W > 1 ? S(N, D, f) : 0) +
                          std::max(std::max(attn, mtp_moe ? moe : 0), head);
    mtp = S(N, D, f) + std::max(input, block);
  }
  return persistent + std::max({attn, moe, logits, mtp});
}

WorkspaceNeeds DeepseekProgram::Needs(int64_t T, int64_t R, int64_t S) const {
  const ModelConfig& c = config_;
  WorkspaceNeeds n{.scratch_bytes = ScratchBytes(T, R),
                   .max_tokens = T,
                   .max_logit_rows = R,
                   .max_seqs = S,
                   .max_positions = c.max_position_embeddings,
                   .num_layers = c.num_hidden_layers + c.mtp_layers,  // MTP: expert load
                   .hidden = c.hidden_size,
                   .vocab = c.vocab_size,
                   .mla = mla_,
                   .gqa = {},
                   .index = index_};
  for (const auto& L : weights_.layers) {
    if (L.gate_up) n.max_mlp_inter = std::max(n.max_mlp_inter, L.gate_up->rows / 2);
    if (L.shared_gate_up) n.max_mlp_inter = std::max(n.max_mlp_inter, L.shared_gate_up->rows / 2);
    if (L.experts) {
      n.n_experts = c.n_routed_experts;
      n.top_k = c.num_experts_per_tok;
      n.moe_inter = L.experts->rows;
    }
  }
  return n;
}

// Multi-head latent attention (DeepSeek-V2 paper, section 2.1) of one layer: out (+)= o_proj of
// the attention over the paged latent cache.
absl::Status DeepseekProgram::Attention(int64_t layer, Tensor xn, Tensor out, bool accumulate) {
  const ModelConfig& c = config_;
  const DeepseekLayerWeights& L = weights_.layers[layer];
  const int64_t N = xn.rows, H = mla_.heads, qk = mla_.nope + mla_.rope;
  const int64_t width = mla_.kv_lora + mla_.rope, aw = L.qa_width + width;
  const ElemType gemm = ops_.gemm_dtype();
  // qkv_a: [N, qa_width + kv_lora + rope] = q_a (or q) | latent | k_pe
  ASSIGN_OR_RETURN(Tensor qkv_a, ops_.Scratch(N, aw, ElemType::kF32));
  RETURN_IF_ERROR(ops_.Linear(xn, *L.qkv_a, qkv_a, false));
  // q: [N, H * qk]
  Tensor q = qkv_a.Cols(0, L.qa_width);
  Tensor qn;  // the normed q-LoRA latent
  if (c.q_lora_rank > 0) {
    ASSIGN_OR_RETURN(qn, ops_.Scratch(N, c.q_lora_rank, gemm));
    RETURN_IF_ERROR(ops_.RmsNorm(q, *L.q_a_norm, eps_, qn));
    ASSIGN_OR_RETURN(q, ops_.Scratch(N, H * qk, ElemType::kF32));
    RETURN_IF_ERROR(ops_.Linear(qn, *L.q_b, q, false));
  }
  // DeepSeek Sparse Attention: the indexer picks each token's key positions (topk [N, K]).
  Tensor topk;
  if (c.dsa.enabled) {
    const int64_t Hi = index_.heads, Di = index_.head_dim;
    ASSIGN_OR_RETURN(Tensor iq, ops_.Scratch(N, Hi * Di, ElemType::kF32));
    RETURN_IF_ERROR(ops_.Linear(qn, *L.idx_wq_b, iq, false));
    ASSIGN_OR_RETURN(Tensor ik, ops_.Scratch(N, Di, ElemType::kF32));
    RETURN_IF_ERROR(ops_.Linear(xn, *L.idx_wk, ik, false));
    ASSIGN_OR_RETURN(Tensor iw, ops_.Scratch(N, Hi, ElemType::kF32));
    RETURN_IF_ERROR(ops_.Linear(xn, *L.idx_weights, iw, false));
    ASSIGN_OR_RETURN(topk, ops_.Scratch(N, index_.topk, ElemType::kI32));
    RETURN_IF_ERROR(ops_.IndexerTopK(layer, index_,
                                     {.q = iq,
                                      .k = ik,
                                      .w = iw,
                                      .k_norm = L.idx_k_norm.get(),
                                      .k_norm_bias = L.idx_k_norm_bias.get()},
                                     topk));
  }
  // attn: [N, H * v]
  ASSIGN_OR_RETURN(Tensor attn, ops_.Scratch(N, H * mla_.v, gemm));
  RETURN_IF_ERROR(ops_.MlaAttention(layer, mla_,
                                    {.q = q,
                                     .kv = qkv_a.Cols(L.qa_width, width),
                                     .kv_a_norm = L.kv_a_norm.get(),
                                     .kv_b = L.kv_b.get(),
                                     .topk = topk},
                                    attn));
  return ops_.Linear(attn, *L.o, out, accumulate);
}

// DeepSeekMoE on one rank: routed experts (top-k of the f32 router) plus shared experts.
absl::Status DeepseekProgram::MoeLocal(int64_t layer, Tensor xn, Tensor xr, Tensor out) {
  const DeepseekLayerWeights& L = weights_.layers[layer];
  const int64_t N = xn.rows, K = router_.top_k;
  ASSIGN_OR_RETURN(Tensor ids, ops_.Scratch(N, K, ElemType::kI32));
  ASSIGN_OR_RETURN(Tensor wts, ops_.Scratch(N, K, ElemType::kF32));
  RETURN_IF_ERROR(
      ops_.MoeRoute(layer, xr, *L.router, L.router_bias.get(), router_, ids, wts));
  return ops_.Moe(xn, ids, wts, *L.experts, L.shared_gate_up.get(), L.shared_down.get(), out,
                  /*accumulate=*/true);
}

// Expert-parallel DeepSeekMoE: every rank routes its own slice of the step's tokens, the routed
// experts run through dispatch / combine (moe_dispatch.h), the rank adds its replicated shared
// experts on its slice, and an all-gather of the slices gives every rank the whole output.
absl::Status DeepseekProgram::MoeParallel(int64_t layer, Tensor xn, Tensor xr, Tensor out) {
  const ShardLayout& lay = layout_;
  const DeepseekLayerWeights& L = weights_.layers[layer];
  const int64_t n = xn.rows, D = config_.hidden_size, K = router_.top_k;
  const int W = lay.tp;
  const int64_t t0 = ShardLayout::PartBegin(n, W, lay.rank);
  const int64_t nl = ShardLayout::PartBegin(n, W, lay.rank + 1) - t0;
  // ids, wts: [nl, top_k] this rank's routing; local: [nl, hidden] its tokens' output.
  ASSIGN_OR_RETURN(Tensor ids, ops_.Scratch(nl, K, ElemType::kI32));
  ASSIGN_OR_RETURN(Tensor wts, ops_.Scratch(nl, K, ElemType::kF32));
  RETURN_IF_ERROR(ops_.MoeRoute(layer, xr.Rows(t0, nl), *L.router, L.router_bias.get(), router_,
                                ids, wts));
  ASSIGN_OR_RETURN(Tensor local, ops_.Scratch(nl, D, ElemType::kF32));
  RETURN_IF_ERROR(DispatchCombine(
      ops_, config_, lay, xn.Rows(t0, nl), ids, wts,
      [&](Tensor rx, Tensor rids, Tensor rwts, Tensor partial) {
        return ops_.Moe(rx, rids, rwts, *L.experts, nullptr, nullptr, partial,
                        /*accumulate=*/false);
      },
      local));
  if (L.shared_gate_up && nl > 0) {
    RETURN_IF_ERROR(ops_.Mlp(xn.Rows(t0, nl), *L.shared_gate_up, *L.shared_down, local,
                             /*accumulate=*/true));
  }
  std::vector<int64_t> slice_rows(W);
  for (int r = 0; r < W; ++r)
    slice_rows[r] = ShardLayout::PartBegin(n, W, r + 1) - ShardLayout::PartBegin(n, W, r);
  return ops_.AllGatherRows(local, slice_rows, out);
}

// Final norm and lm_head on the logit rows; vocabulary-parallel logits are gathered.
absl::StatusOr<Tensor> DeepseekProgram::Logits(const StepInput& step, Tensor x, int64_t first,
                                               int64_t R) {
  return HeadLogits(ops_, config_, layout_, *weights_.final_norm, *weights_.lm_head, eps_, x,
                    first, R);
}

}  // namespace dsinfer
