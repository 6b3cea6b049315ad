// Step-time model: a roofline over weights, FLOPs, KV reads and collectives (analytic), or a
// linear fit of measured step times. Formulas: README.md.
#include "src/capacity/cost_model.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "src/kv_cache/block_pool.h"
#include "src/model/model_program.h"

namespace dsinfer::capacity {

StepShape ShapeOf(const StepPlan& plan) {
  StepShape s;
  for (const StepItem& item : plan.items) {
    ++s.sequences;
    if (item.num_tokens == 1 && item.sample && item.start_pos > 0) {
      ++s.decode_sequences;
      s.decode_context += item.start_pos + 1;
    } else {
      s.prefill_tokens += item.num_tokens;
      // Token j of the chunk (0-based) attends start_pos + j + 1 keys (causal).
      s.prefill_context +=
          item.num_tokens * item.start_pos + item.num_tokens * (item.num_tokens + 1) / 2;
    }
  }
  return s;
}

double ModelFootprint::TotalParams() const {
  return attention_params + dense_mlp_params + shared_expert_params + router_params +
         static_cast<double>(moe_layers * experts) * expert_params + embedding_params +
         lm_head_params;
}

double ModelFootprint::ActiveParamsPerToken() const {
  return attention_params + dense_mlp_params + shared_expert_params + router_params +
         static_cast<double>(moe_layers * experts_per_token) * expert_params;
}

ModelFootprint FootprintOf(const ModelConfig& c) {
  const double H = static_cast<double>(c.hidden_size);
  const double nh = static_cast<double>(c.num_attention_heads);
  const double dq = static_cast<double>(c.qk_head_dim());
  const double nope = static_cast<double>(c.qk_nope_head_dim);
  const double rope = static_cast<double>(c.qk_rope_head_dim);
  const double dv = static_cast<double>(c.v_head_dim);
  const double rkv = static_cast<double>(c.kv_lora_rank);
  const double rq = static_cast<double>(c.q_lora_rank);
  const double L = static_cast<double>(c.num_hidden_layers);
  ModelFootprint f;
  if (c.IsV4()) {
    // V4: q-LoRA, one K=V head, grouped output projection, compressors and the CSA indexer.
    const V4Config& v = c.v4;
    const double d = static_cast<double>(c.head_dim);
    const double di = static_cast<double>(v.index_head_dim), hi = static_cast<double>(v.index_n_heads);
    const double go = static_cast<double>(v.o_groups * v.o_lora_rank);
    double p = 0;
    for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
      p += H * rq + rq * nh * d + H * d + nh * d / static_cast<double>(v.o_groups) * go + go * H;
      if (v.attn[l] == V4Attn::kHca) p += 2 * H * d;
      if (v.attn[l] == V4Attn::kCsa) p += 4 * H * d + hi * di * rq + hi * H + 4 * H * di;
    }
    f.attention_params = p;
  } else if (c.IsDense()) {
    // GQA: q, k, v and o projections (biases negligible); head_dim on both sides of the scores.
    const double hd = static_cast<double>(c.head_dim);
    const double kvh = static_cast<double>(c.num_key_value_heads);
    f.attention_params = L * (H * nh * hd + 2 * H * kvh * hd + nh * hd * H);
  } else {
    const double q = rq > 0 ? H * rq + rq * nh * dq : H * nh * dq;
    const double per_layer = q + H * (rkv + rope) + rkv * nh * (nope + dv) + nh * dv * H;
    // V3.2's indexer: wq_b, wk, k_norm (weight and bias), weights_proj.
    const SparseAttention& dsa = c.dsa;
    const double indexer =
        dsa.enabled ? static_cast<double>(dsa.index_n_heads * dsa.index_head_dim) * rq +
                          static_cast<double>(dsa.index_head_dim) * (H + 2) +
                          static_cast<double>(dsa.index_n_heads) * H
                    : 0;
    f.attention_params = L * (per_layer + indexer);
  }
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    if (c.IsMoeLayer(l)) ++f.moe_layers;
  }
  const double moe_l = static_cast<double>(f.moe_layers);
  const double I_moe = static_cast<double>(c.moe_intermediate_size);
  f.dense_mlp_params = (L - moe_l) * 3 * H * static_cast<double>(c.intermediate_size);
  f.shared_expert_params = moe_l * static_cast<double>(c.n_shared_experts) * 3 * H * I_moe;
  f.router_params = moe_l * H * static_cast<double>(c.n_routed_experts);
  f.expert_params = 3 * H * I_moe;
  f.experts = c.n_routed_experts;
  f.experts_per_token = c.num_experts_per_tok;
  const double V = static_cast<double>(c.vocab_size);
  f.lm_head_params = V * H;
  f.embedding_params = c.tie_word_embeddings ? 0 : V * H;
  // The KV row as the model program defines it (ModelKvCacheSpec: one formula everywhere).
  const KvCacheSpec kv = ModelKvCacheSpec(c, KvDType::kBF16);
  f.kv_elements_per_token = static_cast<double>(kv.num_layers * kv.row_width);
  f.kv_index_bytes_per_token = static_cast<double>(kv.num_layers * kv.index_row_bytes);
  if (c.IsV4()) {
    // V4's cache rows are f32 whatever the plan's kv element size (V4KvCacheSpec): counted in
    // bytes with the second component.
    f.kv_elements_per_token = 0;
    f.kv_index_bytes_per_token = static_cast<double>(kv.bytes_per_token());
  }
  if (c.IsDense() || c.IsV4()) {
    const double hd = static_cast<double>(c.head_dim);
    f.prefill_pair_flops = f.decode_pair_flops = L * nh * 2 * (hd + hd);
  } else {
    f.prefill_pair_flops = L * nh * 2 * (dq + dv);
    f.decode_pair_flops = L * nh * 2 * (rkv + rope + rkv);
  }
  return f;
}

double CostModel::ExpectedExpertsTouched(int64_t tokens) const {
  if (fp_.experts <= 0 || tokens <= 0) return 0;
  const double E = static_cast<double>(fp_.experts);
  const double k = static_cast<double>(fp_.experts_per_token);
  return E * (1 - std::pow(1 - k / E, static_cast<double>(tokens)));
}

absl::StatusOr<CostModel> CostModel::Create(const ModelConfig& model, const Precision& precision,
                                            const Deployment& d) {
  CostModel m;
  m.fp_ = FootprintOf(model);
  if (model.IsDense() && d.layout.tp > 1) {
    // A GQA cache is split by KV heads: each GPU of the group holds its heads' share.
    const KvCacheSpec kv = ModelKvCacheSpec(model, KvDType::kBF16,
                                            ShardLayout{.rank = 0, .tp = d.layout.tp, .ep = 1});
    m.fp_.kv_elements_per_token = static_cast<double>(kv.num_layers * kv.row_width);
  }
  m.precision_ = precision;
  m.layout_ = d.layout;
  m.gpu_ = d.gpu;
  m.measured_ = d.measured;
  m.hidden_ = static_cast<double>(model.hidden_size);
  m.num_layers_ = static_cast<double>(model.num_hidden_layers);
  const Layout& l = d.layout;
  const ModelFootprint& f = m.fp_;
  const double replicated = f.attention_params + f.dense_mlp_params + f.shared_expert_params +
                            f.router_params + f.lm_head_params + f.embedding_params;
  const double routed = static_cast<double>(f.moe_layers * f.experts) * f.expert_params;
  m.weight_bytes_per_gpu_ = (replicated / l.tp + routed / l.ep) * precision.weight_bytes;
  if (l.dp() == 1 && (precision.weight_bytes == 1 || precision.weight_bytes == 2)) {
    // A tensor / expert parallel layout the program shards: the schema's bytes of the fullest
    // rank (rank 0 holds the most vocabulary rows), FP8 block scales included.
    auto bytes = ModelStoredBytes(model, ShardLayout{.rank = 0, .tp = l.tp, .ep = l.ep},
                                     nullptr, /*fp8_kept=*/precision.weight_bytes == 1);
    if (bytes.ok()) m.weight_bytes_per_gpu_ = static_cast<double>(*bytes);
  }

  if (d.gpu && !d.measured) {
    const GpuSpec& g = *d.gpu;
    if ((l.tp > 1 || l.ep > 1) && g.link_bandwidth <= 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("deployment ", d.name, ": gpu.link_bandwidth is required for tp/ep > 1"));
    }
    if (l.ep > l.gpus_per_node && g.network_bandwidth <= 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("deployment ", d.name, ": gpu.network_bandwidth is required when ep (", l.ep,
                       ") spans more than one node of ", l.gpus_per_node, " GPUs"));
    }
  }
  if (d.limits.num_kv_blocks > 0) {
    m.num_kv_blocks_ = d.limits.num_kv_blocks;
  } else {
    if (!d.gpu) {
      return absl::InvalidArgumentError(absl::StrCat(
          "deployment ", d.name, ": scheduler.num_kv_blocks is required without a gpu"));
    }
    const double usable = d.gpu->memory_bytes * d.kv_memory_fraction;
    const double free_bytes = usable - m.weight_bytes_per_gpu_;
    if (free_bytes <= 0) {
      return absl::ResourceExhaustedError(absl::StrFormat(
          "deployment %s: weights need %.1f GB per GPU (tp %d, ep %d), more than %.2f x %.1f GB "
          "of gpu.memory",
          d.name, m.weight_bytes_per_gpu_ / 1e9, l.tp, l.ep, d.kv_memory_fraction,
          d.gpu->memory_bytes / 1e9));
    }
    const double tokens = free_bytes / m.kv_bytes_per_token() * l.dp();
    const double blocks = std::floor(tokens / static_cast<double>(kKvBlockSize));
    m.num_kv_blocks_ = static_cast<int32_t>(
        std::min(blocks, static_cast<double>(std::numeric_limits<int32_t>::max())));
    if (m.num_kv_blocks_ < 1) {
      return absl::ResourceExhaustedError(
          absl::StrCat("deployment ", d.name, ": no memory left for one KV block"));
    }
  }
  return m;
}

StepBreakdown CostModel::Breakdown(const StepShape& s) const {
  StepBreakdown b;
  const double T = static_cast<double>(s.tokens());
  const double N = static_cast<double>(s.sequences);
  if (measured_) {
    const MeasuredCosts& c = *measured_;
    b.compute = s.sequences > 0 ? c.Base(s.sequences) + c.token_seconds * (T - N) : 0;
    b.kv = c.context_token_seconds * static_cast<double>(s.context());
    b.total = b.compute + b.kv;
    return b;
  }
  const GpuSpec& g = *gpu_;
  b.overhead = g.step_overhead_seconds;
  if (s.tokens() == 0) {
    b.total = b.overhead;
    return b;
  }
  const ModelFootprint& f = fp_;
  const Layout& l = layout_;
  const double G = l.gpus(), tp = l.tp, ep = l.ep, dp = l.dp();
  const double bw = g.memory_bandwidth * g.bandwidth_efficiency;

  // Weights: every replicated matrix once per step, plus the routed experts the step's tokens
  // touch (expected distinct experts per layer), spread over the ep GPUs.
  const double replicated = f.attention_params + f.dense_mlp_params + f.shared_expert_params +
                            f.router_params + f.lm_head_params;
  const double experts =
      static_cast<double>(f.moe_layers) * ExpectedExpertsTouched(s.tokens()) * f.expert_params;
  b.weights = (replicated / tp + experts / ep) * precision_.weight_bytes / bw;

  // FLOPs: 2 per active parameter per token, the lm_head once per item, attention per pair.
  const double flops = 2 * T * f.ActiveParamsPerToken() + 2 * N * f.lm_head_params +
                       static_cast<double>(s.prefill_context) * f.prefill_pair_flops +
                       static_cast<double>(s.decode_context) * f.decode_pair_flops;
  b.compute = flops / G / (g.flops * g.mfu);

  // Latent KV read by decodes: each attention group reads its own sequences' cache.
  b.kv = static_cast<double>(s.decode_context) * kv_bytes_per_token() / dp / bw;

  // Collectives: 2 all-reduces per layer inside an attention group (tp > 1); a dispatch and a
  // combine all-to-all per MoE layer across ep GPUs, split into on-node and off-node bytes.
  const double act = precision_.activation_bytes;
  if (l.tp > 1) {
    const double bytes = 2 * (tp - 1) / tp * (T / dp) * hidden_ * act;
    b.comm += 2 * num_layers_ * (bytes / g.link_bandwidth + g.collective_latency_seconds);
  }
  if (l.ep > 1 && f.moe_layers > 0) {
    const double gpn = std::min<double>(l.gpus_per_node, ep);
    const double per_gpu = (T / G) * static_cast<double>(f.experts_per_token) * hidden_ * act;
    const double on_node = per_gpu * (gpn - 1) / ep;
    const double off_node = per_gpu * (ep - gpn) / ep;
    double t = on_node / g.link_bandwidth;
    if (off_node > 0) t = std::max(t, off_node / g.network_bandwidth);
    b.comm += 2 * static_cast<double>(f.moe_layers) * (t + g.collective_latency_seconds);
  }
  b.total = std::max(b.weights, b.compute) + b.kv + b.comm + b.overhead;
  return b;
}

}  // namespace dsinfer::capacity
