// How one rank's share of a DeepSeek model is cut (tensor parallelism for attention, dense MLPs,
// embedding and lm_head; expert parallelism for routed experts, tensor-split inside each expert
// group as TensorRT-LLM's moe_tp x moe_ep = tp). Rank r of tp ranks:
//   attention heads      [r·H/tp, (r+1)·H/tp)          (latent KV cache: every rank, whole)
//   dense MLP inter      [r·I/tp, (r+1)·I/tp)           (partial sums, all-reduced)
//   vocab rows           [r·V/tp, (r+1)·V/tp)           (embedding all-reduced, logits gathered)
//   expert group         g = r / moe_tp owns experts [g·E/ep, (g+1)·E/ep)
//   expert inter slice   (r % moe_tp) of moe_inter / moe_tp
//   shared experts       replicated; each rank runs them on its own token slice
//   MoE token slice      tokens [r·N/tp, (r+1)·N/tp) of a step are routed and dispatched by r
// Dense families (qwen2 / llama): attention heads as above; KV heads [r·KV/tp, (r+1)·KV/tp) when
// tp divides KV, else (KV divides tp) each rank keeps the one KV head its query heads read
// (replicated over tp / KV ranks, as Megatron-LM and vLLM do); its GQA cache holds only those.
// The o_proj bias is added once, after the all-reduce. ep is for routed experts: 1 for dense.
// DeepSeek-V4 (v4_program.h): q heads (wq_b rows, attn_sink) as attention heads above; the
// grouped output projection by whole groups, rank r holding groups [r·G/tp, (r+1)·G/tp) of wo_a
// and their columns of wo_b (G = o_groups, divisible by tp, so a rank's heads feed exactly its
// groups), partial sums all-reduced. Replicated: the q latent (wq_a, q_norm), the one shared
// K=V head (its cache row is whole on every rank), the compressors, the lightning indexer, mHC
// and the hyper-head, the router and tid2eid. Routed experts as above (hash and top-k layers);
// the shared expert's intermediate dim split over all tp ranks, its partial sums joined in the
// MoE's all-reduce.
#pragma once

#include <cstdint>

#include "absl/status/status.h"
#include "src/config/model_config.h"

namespace dsinfer {

struct ShardLayout {
  int rank = 0;
  int tp = 1;  // ranks in total
  int ep = 1;  // expert-parallel groups; divides tp

  int moe_tp() const { return tp / ep; }
  int ep_rank() const { return rank / moe_tp(); }
  int moe_tp_rank() const { return rank % moe_tp(); }
  bool single() const { return tp == 1; }

  // [begin, end) of part `i` of `n` items split into `parts` nearly equal runs.
  static int64_t PartBegin(int64_t n, int parts, int i) { return n * i / parts; }

  int64_t HeadBegin(const ModelConfig& c) const { return PartBegin(c.num_attention_heads, tp, rank); }
  int64_t LocalHeads(const ModelConfig& c) const { return c.num_attention_heads / tp; }
  int64_t LocalKvHeads(const ModelConfig& c) const {
    return c.num_key_value_heads >= tp ? c.num_key_value_heads / tp : 1;
  }
  int64_t KvHeadBegin(const ModelConfig& c) const {
    return c.num_key_value_heads >= tp ? rank * LocalKvHeads(c)
                                       : rank * c.num_key_value_heads / tp;
  }
  int64_t VocabBegin(const ModelConfig& c) const { return PartBegin(c.vocab_size, tp, rank); }
  int64_t VocabEnd(const ModelConfig& c) const { return PartBegin(c.vocab_size, tp, rank + 1); }
  int64_t ExpertsPerGroup(const ModelConfig& c) const { return c.n_routed_experts / ep; }
  int64_t ExpertBegin(const ModelConfig& c) const { return ep_rank() * ExpertsPerGroup(c); }
  int ExpertGroup(const ModelConfig& c, int64_t expert) const {
    return static_cast<int>(expert / ExpertsPerGroup(c));
  }

  // Names the first size that does not divide; OK for tp = ep = 1 always.
  absl::Status Validate(const ModelConfig& c) const;
};

}  // namespace dsinfer
