#include "src/model/v4_program.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "kernels/cpu/rope.h"
#include "src/core/status_macros.h"
#include "src/model/moe_dispatch.h"

namespace dsinfer {

int64_t V4RowWidth(const ModelConfig& c) {
  const int64_t d = c.head_dim, di = c.v4.index_head_dim;
  int64_t w = d;
  for (V4Attn a : c.v4.attn) {
    if (a == V4Attn::kHca) w = std::max(w, 4 * d);
    if (a == V4Attn::kCsa) w = std::max(w, 6 * d + 5 * di);
  }
  return w;
}

// The same on every rank of a layout: the K=V head, compressors and indexer are replicated.
KvCacheSpec V4KvCacheSpec(const ModelConfig& c) {
  return {.num_layers = c.num_hidden_layers,
          .row_width = V4RowWidth(c),
          .dtype = KvDType::kF32,
          .block_size = kKvBlockSize};
}

absl::StatusOr<std::unique_ptr<V4Program>> V4Program::Load(const ModelConfig& config,
                                                           const ShardLayout& layout,
                                                           const WeightStore& store,
                                                           BackendOps& ops) {
  if (ops.world_size() != layout.tp || ops.rank() != layout.rank) {
    return absl::InvalidArgumentError(
        "a tensor-parallel model needs a backend on a communicator of its ranks");
  }
  if (!ops.has_v4_ops()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "model_type deepseek_v4: the ", ops.name(),
        " backend has no V4 attention / hyper-connection ops yet (use backend cpu)"));
  }
  ASSIGN_OR_RETURN(V4Weights w, LoadV4Weights(config, layout, store, ops));
  return std::unique_ptr<V4Program>(new V4Program(config, layout, ops, std::move(w)));
}

V4Program::V4Program(const ModelConfig& c, const ShardLayout& layout, BackendOps& ops,
                     V4Weights weights)
    : config_(c), layout_(layout), ops_(ops), weights_(std::move(weights)) {
  const V4Config& v = c.v4;
  eps_ = static_cast<float>(c.rms_norm_eps);
  const std::vector<float> main =
      cpu::RopeInvFreq({.rope_dim = c.qk_rope_head_dim, .theta = c.rope_theta});
  const RopeScaling& y = c.rope_scaling;
  // The compressed branches' rotary: compress_rope_theta with YaRN's frequencies, cos / sin not
  // scaled (DeepSeek's V4 reference; transformers pins attention_factor to 1 for it).
  const std::vector<float> compress =
      cpu::RopeInvFreq({.rope_dim = c.qk_rope_head_dim,
                        .theta = v.compress_rope_theta,
                        .yarn = y.yarn,
                        .factor = y.factor,
                        .original_max_position = y.original_max_position_embeddings,
                        .beta_fast = y.beta_fast,
                        .beta_slow = y.beta_slow});
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    V4AttnParams p{.heads = layout_.LocalHeads(c),
                   .head_dim = c.head_dim,
                   .rope_dim = c.qk_rope_head_dim,
                   .window = v.sliding_window,
                   .rate = v.rate(l),
                   .overlap = v.attn[l] == V4Attn::kCsa,
                   .index_heads = v.index_n_heads,
                   .index_dim = v.index_head_dim,
                   .index_topk = v.index_topk,
                   .row_width = V4RowWidth(c),
                   .eps = eps_,
                   // transformers: scaling = head_dim ** -0.5 (no YaRN mscale in V4).
                   .softmax_scale =
                       static_cast<float>(std::pow(static_cast<double>(c.head_dim), -0.5))};
    p.inv_freq = v.attn[l] == V4Attn::kSliding ? main : compress;
    p.compress_inv_freq = compress;
    attn_.push_back(std::move(p));
  }
  hyper_ = {.hc = v.hc_mult,
            .dim = c.hidden_size,
            .sinkhorn_iters = v.hc_sinkhorn_iters,
            .hc_eps = static_cast<float>(v.hc_eps),
            .norm_eps = eps_};
  router_ = {.n_experts = c.n_routed_experts,
             .top_k = c.num_experts_per_tok,
             .scoring = static_cast<uint8_t>(v.scoring),
             .scale = static_cast<float>(c.routed_scaling_factor)};
  ops_.InitExpertLoad(std::vector<bool>(c.num_hidden_layers, true), c.n_routed_experts);
}

absl::StatusOr<Tensor> V4Program::Layers(const StepInput& step) {
  const int64_t N = step.num_tokens, D = config_.hidden_size, hc = hyper_.hc;
  const ElemType f = ElemType::kF32;
  // streams: [N, hc * hidden] the widened residual; x: the embedding, later the hyper-head's out.
  const bool single = layout_.single();
  ASSIGN_OR_RETURN(Tensor x, ops_.Scratch(N, D, f));
  // Embedding rows outside this rank's vocabulary are zero until the all-reduce.
  RETURN_IF_ERROR(ops_.Embed(*weights_.embed, layout_.VocabBegin(config_), x));
  if (!single) RETURN_IF_ERROR(ops_.AllReduce(x));
  ASSIGN_OR_RETURN(Tensor streams, ops_.Scratch(N, hc * D, f));
  for (int64_t j = 0; j < hc; ++j) {
    Tensor s = streams.Cols(j * D, D);
    RETURN_IF_ERROR(ops_.Zero(s));
    RETURN_IF_ERROR(ops_.Add(s, x));
  }
  // collapsed, xn, y: [N, hidden]; post [N, hc]; comb [N, hc * hc].
  ASSIGN_OR_RETURN(Tensor collapsed, ops_.Scratch(N, D, f));
  ASSIGN_OR_RETURN(Tensor xn, ops_.Scratch(N, D, ops_.gemm_dtype()));
  ASSIGN_OR_RETURN(Tensor y, ops_.Scratch(N, D, f));
  ASSIGN_OR_RETURN(Tensor post, ops_.Scratch(N, hc, f));
  ASSIGN_OR_RETURN(Tensor comb, ops_.Scratch(N, hc * hc, f));
  for (int64_t l = 0; l < config_.num_hidden_layers; ++l) {
    const auto& L = weights_.layers[l];
    RETURN_IF_ERROR(ops_.HyperPre(streams, *L.hc_attn_fn, *L.hc_attn_base, *L.hc_attn_scale,
                                  hyper_, collapsed, post, comb));
    RETURN_IF_ERROR(ops_.RmsNorm(collapsed, *L.attn_norm, eps_, xn));
    const int64_t mark = ops_.ScratchMark();
    RETURN_IF_ERROR(Attention(l, xn, y));
    if (!single) RETURN_IF_ERROR(ops_.AllReduce(y));  // this rank's heads' output projection
    ops_.ScratchRelease(mark);
    RETURN_IF_ERROR(ops_.HyperPost(y, post, comb, hyper_, streams));
    RETURN_IF_ERROR(ops_.HyperPre(streams, *L.hc_ffn_fn, *L.hc_ffn_base, *L.hc_ffn_scale, hyper_,
                                  collapsed, post, comb));
    RETURN_IF_ERROR(ops_.RmsNorm(collapsed, *L.ffn_norm, eps_, xn));
    RETURN_IF_ERROR(Moe(l, xn, y));
    ops_.ScratchRelease(mark);
    RETURN_IF_ERROR(ops_.HyperPost(y, post, comb, hyper_, streams));
  }
  RETURN_IF_ERROR(ops_.HyperHead(streams, *weights_.hc_head_fn, *weights_.hc_head_base,
                                 *weights_.hc_head_scale, hyper_, x));
  if (!single) RETURN_IF_ERROR(ops_.ReduceExpertLoad());
  return x;
}

absl::Status V4Program::Attention(int64_t layer, Tensor xn, Tensor y) {
  const auto& L = weights_.layers[layer];
  const V4AttnParams& p = attn_[layer];
  const int64_t N = xn.rows, qr = config_.q_lora_rank, d = p.head_dim, H = p.heads;
  const ElemType f = ElemType::kF32;
  // q_lat: [N, q_lora] normed q latent (also the indexer's query input); q: [N, H * d];
  // kv: [N, d].
  ASSIGN_OR_RETURN(Tensor q_lat, ops_.Scratch(N, qr, f));
  RETURN_IF_ERROR(ops_.Linear(xn, *L.wq_a, q_lat, false));
  ASSIGN_OR_RETURN(Tensor q_lat_n, ops_.Scratch(N, qr, ops_.gemm_dtype()));
  RETURN_IF_ERROR(ops_.RmsNorm(q_lat, *L.q_norm, eps_, q_lat_n));
  V4AttnInputs in;
  ASSIGN_OR_RETURN(in.q, ops_.Scratch(N, H * d, f));
  RETURN_IF_ERROR(ops_.Linear(q_lat_n, *L.wq_b, in.q, false));
  ASSIGN_OR_RETURN(in.kv, ops_.Scratch(N, d, f));
  RETURN_IF_ERROR(ops_.Linear(xn, *L.wkv, in.kv, false));
  RETURN_IF_ERROR(ops_.RmsNorm(in.kv, *L.kv_norm, eps_, in.kv));
  in.sinks = L.sinks.get();
  if (p.rate > 0) {
    const int64_t cw = p.overlap ? 2 * d : d;
    ASSIGN_OR_RETURN(in.comp, ops_.Scratch(N, 2 * cw, f));  // [kv | gate]
    RETURN_IF_ERROR(ops_.Linear(xn, *L.comp_wkv, in.comp.Cols(0, cw), false));
    RETURN_IF_ERROR(ops_.Linear(xn, *L.comp_wgate, in.comp.Cols(cw, cw), false));
    in.comp_ape = L.comp_ape.get();
    in.comp_norm = L.comp_norm.get();
  }
  if (p.overlap) {
    const int64_t di = p.index_dim;
    ASSIGN_OR_RETURN(in.idx_comp, ops_.Scratch(N, 4 * di, f));
    RETURN_IF_ERROR(ops_.Linear(xn, *L.idx_wkv, in.idx_comp.Cols(0, 2 * di), false));
    RETURN_IF_ERROR(ops_.Linear(xn, *L.idx_wgate, in.idx_comp.Cols(2 * di, 2 * di), false));
    ASSIGN_OR_RETURN(in.idx_q, ops_.Scratch(N, p.index_heads * di, f));
    RETURN_IF_ERROR(ops_.Linear(q_lat_n, *L.idx_wq_b, in.idx_q, false));
    ASSIGN_OR_RETURN(in.idx_w, ops_.Scratch(N, p.index_heads, f));
    RETURN_IF_ERROR(ops_.Linear(xn, *L.idx_weights, in.idx_w, false));
    in.idx_ape = L.idx_ape.get();
    in.idx_norm = L.idx_norm.get();
  }
  // o: [N, H * d] attention output of this rank's heads (rope channels rotated back);
  // og: [N, G * o_lora] of its G = o_groups / tp groups (a group reads H * d / G channels).
  ASSIGN_OR_RETURN(Tensor o, ops_.Scratch(N, H * d, f));
  RETURN_IF_ERROR(ops_.V4Attention(layer, p, in, o));
  const int64_t G = config_.v4.o_groups / layout_.tp, R = config_.v4.o_lora_rank, gin = H * d / G;
  ASSIGN_OR_RETURN(Tensor og, ops_.Scratch(N, G * R, f));
  for (int64_t g = 0; g < G; ++g)
    RETURN_IF_ERROR(ops_.Linear(o.Cols(g * gin, gin), *L.wo_a[g], og.Cols(g * R, R), false));
  return ops_.Linear(og, *L.wo_b, y, false);  // sharded: a partial sum over the groups
}

int64_t V4Program::AttentionScratch(int64_t layer, int64_t N) const {
  const V4AttnParams& p = attn_[layer];
  const ElemType f = ElemType::kF32, g = ops_.gemm_dtype();
  const int64_t qr = config_.q_lora_rank, d = p.head_dim, H = p.heads;
  int64_t b = ScratchBytesOf(N, qr, f) + ScratchBytesOf(N, qr, g) + ScratchBytesOf(N, H * d, f) +
              ScratchBytesOf(N, d, f);
  if (p.rate > 0) b += ScratchBytesOf(N, 2 * (p.overlap ? 2 * d : d), f);
  if (p.overlap) {
    b += ScratchBytesOf(N, 4 * p.index_dim, f) + ScratchBytesOf(N, p.index_heads * p.index_dim, f) +
         ScratchBytesOf(N, p.index_heads, f);
  }
  return b + ScratchBytesOf(N, H * d, f) +
         ScratchBytesOf(N, config_.v4.o_groups / layout_.tp * config_.v4.o_lora_rank, f);
}

absl::Status V4Program::Moe(int64_t layer, Tensor xn, Tensor y) {
  const auto& L = weights_.layers[layer];
  const int64_t N = xn.rows, D = config_.hidden_size, K = router_.top_k;
  const float limit = static_cast<float>(config_.v4.swiglu_limit);
  if (layout_.single()) {
    // ids, weights: [N, top_k].
    ASSIGN_OR_RETURN(Tensor ids, ops_.Scratch(N, K, ElemType::kI32));
    ASSIGN_OR_RETURN(Tensor w, ops_.Scratch(N, K, ElemType::kF32));
    RETURN_IF_ERROR(ops_.V4Route(layer, xn, 0, *L.router, L.router_bias.get(), L.tid2eid.get(),
                                 router_, ids, w));
    return ops_.V4Moe(xn, ids, w, L.experts.get(), L.shared_gate_up.get(), L.shared_down.get(),
                      limit, y);
  }
  // Sharded: this rank routes its slice [t0, t0 + nl) of the tokens (hash layers by their ids)
  // and sends it through dispatch / combine; its slice of the shared expert's intermediate dim
  // runs on every token; one all-reduce joins both (y = Σ_ranks shared partial + the rank's
  // routed rows).
  const int W = layout_.tp;
  const int64_t t0 = ShardLayout::PartBegin(N, W, layout_.rank);
  const int64_t nl = ShardLayout::PartBegin(N, W, layout_.rank + 1) - t0;
  // ids, w: [nl, top_k]; local: [nl, hidden] the slice's routed experts.
  ASSIGN_OR_RETURN(Tensor ids, ops_.Scratch(nl, K, ElemType::kI32));
  ASSIGN_OR_RETURN(Tensor w, ops_.Scratch(nl, K, ElemType::kF32));
  RETURN_IF_ERROR(ops_.V4Route(layer, xn.Rows(t0, nl), t0, *L.router, L.router_bias.get(),
                               L.tid2eid.get(), router_, ids, w));
  ASSIGN_OR_RETURN(Tensor local, ops_.Scratch(nl, D, ElemType::kF32));
  RETURN_IF_ERROR(DispatchCombine(
      ops_, config_, layout_, xn.Rows(t0, nl), ids, w,
      [&](Tensor rx, Tensor rids, Tensor rwts, Tensor partial) {
        return ops_.V4Moe(rx, rids, rwts, L.experts.get(), nullptr, nullptr, limit, partial);
      },
      local));
  RETURN_IF_ERROR(ops_.V4Moe(xn, Tensor{}, Tensor{}, nullptr, L.shared_gate_up.get(),
                             L.shared_down.get(), limit, y));
  RETURN_IF_ERROR(ops_.Add(y.Rows(t0, nl), local));
  return ops_.AllReduce(y);
}

absl::StatusOr<Tensor> V4Program::Logits(const StepInput& step, Tensor x, int64_t first,
                                         int64_t R) {
  return HeadLogits(ops_, config_, layout_, *weights_.final_norm, *weights_.lm_head, eps_, x,
                    first, R);
}

int64_t V4Program::ScratchBytes(int64_t N, int64_t R) const {
  // Mirrors Layers' and Logits' Scratch calls.
  const ElemType f = ElemType::kF32, g = ops_.gemm_dtype();
  const int64_t D = config_.hidden_size, hc = hyper_.hc, K = router_.top_k;
  const int64_t persistent = ScratchBytesOf(N, D, f) + ScratchBytesOf(N, hc * D, f) +
                             ScratchBytesOf(N, D, f) + ScratchBytesOf(N, D, g) +
                             ScratchBytesOf(N, D, f) + ScratchBytesOf(N, hc, f) +
                             ScratchBytesOf(N, hc * hc, f);
  int64_t block = ScratchBytesOf(N, K, ElemType::kI32) + ScratchBytesOf(N, K, f);
  if (const int W = layout_.tp; W > 1) {
    const int64_t nl = (N + W - 1) / W;
    block = ScratchBytesOf(nl, K, ElemType::kI32) + ScratchBytesOf(nl, K, f) +
            ScratchBytesOf(nl, D, f) + DispatchScratchBytes(N, W, D, K, g);
  }
  for (int64_t l = 0; l < config_.num_hidden_layers; ++l)
    block = std::max(block, AttentionScratch(l, N));
  const int64_t logits = HeadScratchBytes(config_, layout_, g, weights_.lm_head->rows, R);
  return persistent + std::max(block, logits);
}

WorkspaceNeeds V4Program::Needs(int64_t T, int64_t R, int64_t S) const {
  return {.scratch_bytes = ScratchBytes(T, R),
          .max_tokens = T,
          .max_logit_rows = R,
          .max_seqs = S,
          .max_positions = config_.max_position_embeddings,
          .num_layers = config_.num_hidden_layers,
          .hidden = config_.hidden_size,
          .vocab = config_.vocab_size,
          .max_mlp_inter = config_.moe_intermediate_size / layout_.tp,
          .n_experts = config_.n_routed_experts,
          .top_k = config_.num_experts_per_tok,
          .moe_inter = config_.moe_intermediate_size / layout_.moe_tp()};
}

}  // namespace dsinfer
