// DeepSeek-V4 weights: the schema (checkpoint tensor names as transformers' DeepseekV4 writes them
// with save_pretrained, i.e. DeepSeek's own names under "model.": attn.wq_a, attn.compressor.wkv,
// ffn.experts.<e>.w1 / w2 / w3, hc_attn_fn, ...) and the loaded weights: the slices one rank of
// a ShardLayout reads (shard_layout.h says what V4 splits and what it replicates).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "src/config/model_config.h"
#include "src/model/backend_ops.h"
#include "src/model/shard_layout.h"
#include "src/model/weight_desc.h"

namespace dsinfer {

template <typename T>
struct V4LayerOf {
  T hc_attn_fn, hc_attn_base, hc_attn_scale;  // [(2+hc)·hc, hc·hidden] f32, [(2+hc)·hc], [3]
  T hc_ffn_fn, hc_ffn_base, hc_ffn_scale;
  T attn_norm, ffn_norm;                      // [hidden]
  T wq_a, q_norm, wq_b;   // [q_lora, hidden], [q_lora], [heads · head_dim, q_lora]
  T wkv, kv_norm;         // [head_dim, hidden], [head_dim]
  // Per rank: wq_b and sinks of its heads, wo_a of its o_groups / tp groups and their columns
  // of wo_b, its routed experts' and the shared expert's intermediate slices.
  std::vector<T> wo_a;    // o_groups × [o_lora_rank, heads · head_dim / o_groups] (row slices)
  T wo_b;                 // [hidden, o_groups · o_lora_rank]
  T sinks;                // [heads] f32
  // Compressor (CSA / HCA layers): wkv, wgate [cw, hidden] f32 (cw: 2·head_dim CSA, head_dim
  // HCA), ape [rate, cw] f32 (the position bias), norm [head_dim].
  T comp_wkv, comp_wgate, comp_ape, comp_norm;
  // Lightning indexer (CSA layers): wq_b [index heads · index_head_dim, q_lora], weights_proj
  // [index heads, hidden] f32, its compressor wkv / wgate [2 · index_head_dim, hidden], ape
  // [rate, 2 · index_head_dim], norm [index_head_dim].
  T idx_wq_b, idx_weights, idx_wkv, idx_wgate, idx_ape, idx_norm;
  T router;       // [experts, hidden] f32
  T router_bias;  // [experts] (top-k layers)
  T tid2eid;      // [vocab, top_k] expert ids as f32 (hash layers)
  T experts;      // routed experts (w1 gate, w3 up, w2 down)
  T shared_gate_up, shared_down;
};

template <typename T>
struct V4WeightsOf {
  T embed, lm_head, final_norm;
  T hc_head_fn, hc_head_base, hc_head_scale;  // [hc, hc · hidden], [hc], [1]
  std::vector<V4LayerOf<T>> layers;
};

using V4Schema = V4WeightsOf<WeightDesc>;
struct V4Weights : V4WeightsOf<std::unique_ptr<BackendWeight>> {
  int64_t bytes = 0, fp8_bytes = 0;
};

V4Schema MakeV4Schema(const ModelConfig& c, const ShardLayout& layout);
void ForEachV4Weight(const V4Schema& s, const std::function<void(const WeightDesc&)>& f);
// Bytes of the weights as the checkpoint stores them (with a store: each part's stored type;
// without: FP8 codes and f32 block scales for kLinear roles when quantization_config says fp8,
// else bf16).
// Rank layout.rank's share.
absl::StatusOr<int64_t> V4StoredBytes(const ModelConfig& c, const ShardLayout& layout,
                                      const WeightStore* store);
absl::StatusOr<V4Weights> LoadV4Weights(const ModelConfig& c, const ShardLayout& layout,
                                        const WeightStore& store, BackendOps& ops);

}  // namespace dsinfer
