#include "src/model/deepseek_weights.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "src/core/numeric.h"
#include "src/weights/fp8_block.h"
#include "src/core/status_macros.h"
#include "src/model/model_program.h"
#include "src/model/schema_parts.h"

namespace dsinfer {
using namespace schema;  // NOLINT: the schema building blocks

bool HasMtpHead(const ModelConfig& c, const WeightStore* store) {
  if (c.mtp_layers == 0) return false;
  if (store == nullptr) return true;  // DeepSeek-V3's release stores shared_head.head
  return store->Has(absl::StrCat("model.layers.", c.num_hidden_layers, ".shared_head.head.weight"));
}

DeepseekSchema MakeDeepseekSchema(const ModelConfig& c, const ShardLayout& lay,
                                  bool tied_lm_head, bool mtp_head) {
  DeepseekSchema s;
  const int64_t D = c.hidden_size, H = c.num_attention_heads, qk = c.qk_head_dim();
  const int64_t Hl = lay.LocalHeads(c), h0 = lay.HeadBegin(c);
  const int64_t v0 = lay.VocabBegin(c), nv = lay.VocabEnd(c) - v0;
  s.embed = Desc("embed", WeightRole::kEmbedding,
                 {Rows("model.embed_tokens.weight", c.vocab_size, D, v0, nv)});
  s.lm_head = Desc("lm_head", WeightRole::kLinear,
                   {Rows(tied_lm_head ? "model.embed_tokens.weight" : "lm_head.weight",
                         c.vocab_size, D, v0, nv)});
  s.final_norm = Vector("final_norm", "model.norm.weight", D);
  // The MTP block (when loaded) is stored like a decoder layer at index num_hidden_layers.
  const int64_t layers = c.num_hidden_layers + c.mtp_layers;
  if (c.mtp_layers > 0) {
    const std::string p = absl::StrCat("model.layers.", c.num_hidden_layers, ".");
    s.mtp.enorm = Vector("mtp.enorm", p + "enorm.weight", D);
    s.mtp.hnorm = Vector("mtp.hnorm", p + "hnorm.weight", D);
    s.mtp.eh_proj = Desc("mtp.eh_proj", WeightRole::kLinear, {Whole(p + "eh_proj.weight", {D, 2 * D})});
    s.mtp.head_norm = Vector("mtp.head_norm", p + "shared_head.norm.weight", D);
    if (mtp_head) {
      s.mtp.head = Desc("mtp.head", WeightRole::kLinear,
                        {Rows(p + "shared_head.head.weight", c.vocab_size, D, v0, nv)});
    }
  }
  s.layers.resize(layers);
  for (int64_t l = 0; l < layers; ++l) {
    const std::string p = absl::StrCat("model.layers.", l, ".");
    const std::string key = absl::StrCat("layers.", l);
    DeepseekLayerOf<WeightDesc>& L = s.layers[l];
    L.input_norm = Vector(key + ".input_norm", p + "input_layernorm.weight", D);
    L.post_attention_norm =
        Vector(key + ".post_attention_norm", p + "post_attention_layernorm.weight", D);
    // Attention: this rank's heads of q / q_b and kv_b, its columns of o; q_a and kv_a whole.
    const std::string a = p + "self_attn.";
    const int64_t kv_a_rows = c.kv_lora_rank + c.qk_rope_head_dim;
    const TensorPart kv_a = Whole(a + "kv_a_proj_with_mqa.weight", {kv_a_rows, D});
    if (c.q_lora_rank > 0) {
      L.qa_width = c.q_lora_rank;
      L.qkv_a = Desc(key + ".attn.qkv_a", WeightRole::kLinear,
                     {Whole(a + "q_a_proj.weight", {c.q_lora_rank, D}), kv_a});
      L.q_a_norm = Vector(key + ".attn.q_a_norm", a + "q_a_layernorm.weight", c.q_lora_rank);
      L.q_b = Desc(key + ".attn.q_b", WeightRole::kLinear,
                   {Rows(a + "q_b_proj.weight", H * qk, c.q_lora_rank, h0 * qk, Hl * qk)});
    } else {
      L.qa_width = Hl * qk;
      L.qkv_a = Desc(key + ".attn.qkv_a", WeightRole::kLinear,
                     {Rows(a + "q_proj.weight", H * qk, D, h0 * qk, Hl * qk), kv_a});
    }
    L.kv_a_norm = Vector(key + ".attn.kv_a_norm", a + "kv_a_layernorm.weight", c.kv_lora_rank);
    const int64_t kvb = c.qk_nope_head_dim + c.v_head_dim;
    L.kv_b = Desc(key + ".attn.kv_b", WeightRole::kMlaKvB,
                  {Rows(a + "kv_b_proj.weight", H * kvb, c.kv_lora_rank, h0 * kvb, Hl * kvb)});
    L.o = Desc(key + ".attn.o", WeightRole::kLinear,
               {Cols(a + "o_proj.weight", D, H * c.v_head_dim, h0 * c.v_head_dim,
                     Hl * c.v_head_dim)});
    if (c.dsa.enabled) {
      const std::string x = a + "indexer.";
      const int64_t Di = c.dsa.index_head_dim, Hi = c.dsa.index_n_heads;
      L.idx_wq_b = Desc(key + ".indexer.wq_b", WeightRole::kLinear,
                        {Whole(x + "wq_b.weight", {Hi * Di, c.q_lora_rank})});
      L.idx_wk = Desc(key + ".indexer.wk", WeightRole::kLinear, {Whole(x + "wk.weight", {Di, D})});
      L.idx_k_norm = Vector(key + ".indexer.k_norm", x + "k_norm.weight", Di);
      L.idx_k_norm_bias = Vector(key + ".indexer.k_norm_bias", x + "k_norm.bias", Di);
      L.idx_weights = Desc(key + ".indexer.weights_proj", WeightRole::kLinearF32,
                           {Whole(x + "weights_proj.weight", {Hi, D})});
    }
    L.is_moe = c.IsMoeLayer(l);
    const std::string m = p + "mlp.";
    if (!L.is_moe) {
      const int64_t Il = c.intermediate_size / lay.tp;
      MlpSchema(key + ".mlp", m, D, c.intermediate_size, lay.rank * Il, Il, &L.gate_up, &L.down);
      continue;
    }
    const int64_t E = c.n_routed_experts, I = c.moe_intermediate_size, Il = I / lay.moe_tp();
    L.router = Desc(key + ".router", WeightRole::kLinearF32, {Whole(m + "gate.weight", {E, D})});
    if (c.topk_method == TopkMethod::kNoauxTc)
      L.router_bias = Vector(key + ".router_bias", m + "gate.e_score_correction_bias", E);
    WeightDesc& ex = L.experts;
    ex.key = key + ".experts";
    ex.role = WeightRole::kExperts;
    ex.rows = Il;
    ex.cols = D;
    ex.first_expert = lay.ExpertBegin(c);
    ex.local_experts = lay.ExpertsPerGroup(c);
    ex.total_experts = E;
    const int64_t i0 = lay.moe_tp_rank() * Il;
    for (int64_t e = ex.first_expert; e < ex.first_expert + ex.local_experts; ++e) {
      const std::string q = absl::StrCat(m, "experts.", e, ".");
      ex.parts.push_back(Rows(q + "gate_proj.weight", I, D, i0, Il));
      ex.parts.push_back(Rows(q + "up_proj.weight", I, D, i0, Il));
      ex.parts.push_back(Cols(q + "down_proj.weight", D, I, i0, Il));
    }
    if (c.n_shared_experts > 0) {
      const int64_t Is = c.n_shared_experts * I;
      MlpSchema(key + ".shared", m + "shared_experts.", D, Is, 0, Is, &L.shared_gate_up,
                &L.shared_down);
    }
  }
  return s;
}

void ForEachWeight(const DeepseekSchema& s, const std::function<void(const WeightDesc&)>& f) {
  auto each = [&](const WeightDesc& d) {
    if (!d.parts.empty()) f(d);
  };
  each(s.embed);
  for (const auto& L : s.layers) {
    for (const WeightDesc* d : {&L.input_norm, &L.post_attention_norm, &L.qkv_a, &L.q_a_norm,
                                &L.q_b, &L.kv_a_norm, &L.kv_b, &L.o, &L.gate_up, &L.down,
                                &L.router, &L.router_bias, &L.experts, &L.shared_gate_up,
                                &L.shared_down, &L.idx_wq_b, &L.idx_wk, &L.idx_k_norm,
                                &L.idx_k_norm_bias, &L.idx_weights})
      each(*d);
  }
  each(s.final_norm);
  each(s.lm_head);
  for (const WeightDesc* d : {&s.mtp.enorm, &s.mtp.hnorm, &s.mtp.eh_proj, &s.mtp.head_norm,
                              &s.mtp.head})
    each(*d);
}

absl::StatusOr<int64_t> DeepseekStoredBytes(const ModelConfig& c, const ShardLayout& layout,
                                            const WeightStore* store, bool fp8_kept) {
  RETURN_IF_ERROR(layout.Validate(c));
  const bool tied = c.tie_word_embeddings && (store == nullptr || !store->Has("lm_head.weight"));
  const DeepseekSchema schema = MakeDeepseekSchema(c, layout, tied, HasMtpHead(c, store));
  const int64_t bn = c.fp8.block_n, bk = c.fp8.block_k;
  int64_t total = 0;
  absl::Status st;
  ForEachWeight(schema, [&](const WeightDesc& d) {
    for (const TensorPart& p : d.parts) {
      DType t = DType::kBF16;
      // Packed FP4 (routed experts under expert_dtype fp4): half a byte a value plus one E8M0
      // scale per 32 of a row, when kept.
      const bool fp4 = store != nullptr ? store->IsFp4(p.name)
                                        : c.fp8.experts_fp4 && d.role == WeightRole::kExperts;
      if (fp4 && fp8_kept) {
        total += p.rows() * p.cols() / 2 + p.rows() * CeilDiv(p.cols(), 32);
        continue;
      }
      if (fp4) {
        total += p.rows() * p.cols() * DTypeSize(DType::kBF16);
        continue;
      }
      if (store != nullptr) {
        auto stored = store->StoredType(p.name);
        if (!stored.ok()) {
          if (st.ok()) st = stored.status();
          continue;
        }
        t = *stored;
      } else if (absl::EndsWith(p.name, "e_score_correction_bias")) {
        t = DType::kF32;
      } else if (absl::StartsWith(p.name, "model.layers.") && c.fp8.enabled &&
                 !absl::EndsWith(p.name, "indexer.weights_proj.weight") &&
                 (absl::EndsWith(p.name, "_proj.weight") ||
                  absl::EndsWith(p.name, "_proj_with_mqa.weight") ||
                  absl::EndsWith(p.name, "indexer.wq_b.weight") ||
                  absl::EndsWith(p.name, "indexer.wk.weight"))) {
        t = DType::kF8E4M3;
      }
      if (t == DType::kF8E4M3 && !fp8_kept) t = DType::kBF16;
      const int64_t rows = p.rows(), cols = p.cols();
      total += rows * cols * DTypeSize(t);
      if (t == DType::kF8E4M3) total += CeilDiv(rows, bn) * CeilDiv(cols, bk) * 4;
    }
  });
  RETURN_IF_ERROR(st);
  return total;
}

absl::StatusOr<DeepseekWeights> LoadDeepseekWeights(const ModelConfig& c,
                                                    const ShardLayout& layout,
                                                    const WeightStore& store, BackendOps& ops) {
  RETURN_IF_ERROR(layout.Validate(c));
  const bool tied = c.tie_word_embeddings && !store.Has("lm_head.weight");
  const DeepseekSchema schema = MakeDeepseekSchema(c, layout, tied, HasMtpHead(c, &store));
  WeightReader reader(store);
  DeepseekWeights w;
  auto load = [&](const WeightDesc& d, std::unique_ptr<BackendWeight>* out) {
    return LoadDescribed(d, ops, reader, out, &w.bytes, &w.fp8_bytes);
  };
  RETURN_IF_ERROR(load(schema.embed, &w.embed));
  w.layers.resize(schema.layers.size());
  for (size_t l = 0; l < schema.layers.size(); ++l) {
    const auto& S = schema.layers[l];
    DeepseekLayerWeights& L = w.layers[l];
    L.is_moe = S.is_moe;
    L.qa_width = S.qa_width;
    RETURN_IF_ERROR(load(S.input_norm, &L.input_norm));
    RETURN_IF_ERROR(load(S.post_attention_norm, &L.post_attention_norm));
    RETURN_IF_ERROR(load(S.qkv_a, &L.qkv_a));
    RETURN_IF_ERROR(load(S.q_a_norm, &L.q_a_norm));
    RETURN_IF_ERROR(load(S.q_b, &L.q_b));
    RETURN_IF_ERROR(load(S.kv_a_norm, &L.kv_a_norm));
    RETURN_IF_ERROR(load(S.kv_b, &L.kv_b));
    RETURN_IF_ERROR(load(S.o, &L.o));
    RETURN_IF_ERROR(load(S.gate_up, &L.gate_up));
    RETURN_IF_ERROR(load(S.down, &L.down));
    RETURN_IF_ERROR(load(S.router, &L.router));
    RETURN_IF_ERROR(load(S.router_bias, &L.router_bias));
    RETURN_IF_ERROR(load(S.experts, &L.experts));
    RETURN_IF_ERROR(load(S.shared_gate_up, &L.shared_gate_up));
    RETURN_IF_ERROR(load(S.shared_down, &L.shared_down));
    RETURN_IF_ERROR(load(S.idx_wq_b, &L.idx_wq_b));
    RETURN_IF_ERROR(load(S.idx_wk, &L.idx_wk));
    RETURN_IF_ERROR(load(S.idx_k_norm, &L.idx_k_norm));
    RETURN_IF_ERROR(load(S.idx_k_norm_bias, &L.idx_k_norm_bias));
    RETURN_IF_ERROR(load(S.idx_weights, &L.idx_weights));
  }
  RETURN_IF_ERROR(load(schema.final_norm, &w.final_norm));
  RETURN_IF_ERROR(load(schema.lm_head, &w.lm_head));
  RETURN_IF_ERROR(load(schema.mtp.enorm, &w.mtp.enorm));
  RETURN_IF_ERROR(load(schema.mtp.hnorm, &w.mtp.hnorm));
  RETURN_IF_ERROR(load(schema.mtp.eh_proj, &w.mtp.eh_proj));
  RETURN_IF_ERROR(load(schema.mtp.head_norm, &w.mtp.head_norm));
  RETURN_IF_ERROR(load(schema.mtp.head, &w.mtp.head));
  return w;
}

}  // namespace dsinfer
