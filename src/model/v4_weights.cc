#include "src/model/v4_weights.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "src/core/status_macros.h"
#include "src/model/model_program.h"
#include "src/model/schema_parts.h"

namespace dsinfer {

using namespace schema;  // NOLINT: the schema building blocks

namespace {

WeightDesc Lin(const std::string& key, const std::string& name, int64_t rows, int64_t cols,
               WeightRole role = WeightRole::kLinear) {
  return Desc(key, role, {Whole(name, {rows, cols})});
}

// Visits every (schema member, loaded member) pair of a layer in load order.
template <typename S, typename L, typename F>
void ForEachLayerMember(S& s, L& l, F&& f) {
  f(s.hc_attn_fn, l.hc_attn_fn);
  f(s.hc_attn_base, l.hc_attn_base);
  f(s.hc_attn_scale, l.hc_attn_scale);
  f(s.hc_ffn_fn, l.hc_ffn_fn);
  f(s.hc_ffn_base, l.hc_ffn_base);
  f(s.hc_ffn_scale, l.hc_ffn_scale);
  f(s.attn_norm, l.attn_norm);
  f(s.ffn_norm, l.ffn_norm);
  f(s.wq_a, l.wq_a);
  f(s.q_norm, l.q_norm);
  f(s.wq_b, l.wq_b);
  f(s.wkv, l.wkv);
  f(s.kv_norm, l.kv_norm);
  for (size_t g = 0; g < s.wo_a.size(); ++g) f(s.wo_a[g], l.wo_a[g]);
  f(s.wo_b, l.wo_b);
  f(s.sinks, l.sinks);
  f(s.comp_wkv, l.comp_wkv);
  f(s.comp_wgate, l.comp_wgate);
  f(s.comp_ape, l.comp_ape);
  f(s.comp_norm, l.comp_norm);
  f(s.idx_wq_b, l.idx_wq_b);
  f(s.idx_weights, l.idx_weights);
  f(s.idx_wkv, l.idx_wkv);
  f(s.idx_wgate, l.idx_wgate);
  f(s.idx_ape, l.idx_ape);
  f(s.idx_norm, l.idx_norm);
  f(s.router, l.router);
  f(s.router_bias, l.router_bias);
  f(s.tid2eid, l.tid2eid);
  f(s.experts, l.experts);
  f(s.shared_gate_up, l.shared_gate_up);
  f(s.shared_down, l.shared_down);
}

}  // namespace

V4Schema MakeV4Schema(const ModelConfig& c, const ShardLayout& lay) {
  const V4Config& v = c.v4;
  const int64_t D = c.hidden_size, H = c.num_attention_heads, d = c.head_dim;
  const int64_t hc = v.hc_mult, qr = c.q_lora_rank, E = c.n_routed_experts;
  const int64_t I = c.moe_intermediate_size, G = v.o_groups, R = v.o_lora_rank;
  const int64_t Hi = v.index_n_heads, di = v.index_head_dim;
  // This rank's share (shard_layout.h): heads [h0, h0 + Hl), output groups [g0, g0 + Gl),
  // vocabulary rows [v0, v0 + nv), routed experts of its group (intermediate slice [i0, i0 + Il)),
  // shared-expert intermediate slice [s0, s0 + Is).
  const int64_t Hl = lay.LocalHeads(c), h0 = lay.HeadBegin(c);
  const int64_t Gl = G / lay.tp, g0 = lay.rank * Gl;
  const int64_t v0 = lay.VocabBegin(c), nv = lay.VocabEnd(c) - v0;
  const int64_t Il = I / lay.moe_tp(), i0 = lay.moe_tp_rank() * Il;
  const int64_t Is = I / lay.tp, s0 = lay.rank * Is;
  V4Schema s;
  s.embed = Desc("embed", WeightRole::kEmbedding,
                 {Rows("model.embed_tokens.weight", c.vocab_size, D, v0, nv)});
  s.lm_head = Desc("lm_head", WeightRole::kLinear, {Rows("head.weight", c.vocab_size, D, v0, nv)});
  s.final_norm = Vector("norm", "model.norm.weight", D);
  s.hc_head_fn = Lin("hc_head.fn", "model.hc_head.hc_fn", hc, hc * D, WeightRole::kLinearF32);
  s.hc_head_base = Vector("hc_head.base", "model.hc_head.hc_base", hc);
  s.hc_head_scale = Vector("hc_head.scale", "model.hc_head.hc_scale", 1);
  s.layers.resize(c.num_hidden_layers);
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    V4LayerOf<WeightDesc>& L = s.layers[l];
    const std::string p = absl::StrCat("model.layers.", l, ".");
    const std::string k = absl::StrCat("layers.", l, ".");
    const int64_t hcw = (2 + hc) * hc;
    for (const char* site : {"attn", "ffn"}) {
      const std::string b = absl::StrCat(p, "hc_", site, "_");
      const bool attn = std::string(site) == "attn";
      (attn ? L.hc_attn_fn : L.hc_ffn_fn) =
          Lin(k + "hc_" + site + ".fn", b + "fn", hcw, hc * D, WeightRole::kLinearF32);
      (attn ? L.hc_attn_base : L.hc_ffn_base) = Vector(k + "hc_" + site + ".base", b + "base", hcw);
      (attn ? L.hc_attn_scale : L.hc_ffn_scale) =
          Vector(k + "hc_" + site + ".scale", b + "scale", 3);
    }
    L.attn_norm = Vector(k + "attn_norm", p + "attn_norm.weight", D);
    L.ffn_norm = Vector(k + "ffn_norm", p + "ffn_norm.weight", D);
    const std::string a = p + "attn.";
    L.wq_a = Lin(k + "wq_a", a + "wq_a.weight", qr, D);
    L.q_norm = Vector(k + "q_norm", a + "q_norm.weight", qr);
    L.wq_b = Desc(k + "wq_b", WeightRole::kLinear,
                  {Rows(a + "wq_b.weight", H * d, qr, h0 * d, Hl * d)});
    L.wkv = Lin(k + "wkv", a + "wkv.weight", d, D);
    L.kv_norm = Vector(k + "kv_norm", a + "norm.weight", d);
    const int64_t gin = H * d / G;
    for (int64_t g = g0; g < g0 + Gl; ++g) {
      L.wo_a.push_back(Desc(absl::StrCat(k, "wo_a.", g), WeightRole::kLinear,
                            {Rows(a + "wo_a.weight", G * R, gin, g * R, R)}));
    }
    L.wo_b = Desc(k + "wo_b", WeightRole::kLinear,
                  {Cols(a + "wo_b.weight", D, G * R, g0 * R, Gl * R)});
    L.sinks = Desc(k + "attn_sink", WeightRole::kVector, {Elems(a + "attn_sink", H, h0, Hl)});
    if (v.attn[l] != V4Attn::kSliding) {
      const bool csa = v.attn[l] == V4Attn::kCsa;
      const int64_t cw = csa ? 2 * d : d, rate = v.rate(l);
      const std::string cp = a + "compressor.";
      L.comp_wkv = Lin(k + "compressor.wkv", cp + "wkv.weight", cw, D, WeightRole::kLinearF32);
      L.comp_wgate = Lin(k + "compressor.wgate", cp + "wgate.weight", cw, D, WeightRole::kLinearF32);
      L.comp_ape = Lin(k + "compressor.ape", cp + "ape", rate, cw, WeightRole::kLinearF32);
      L.comp_norm = Vector(k + "compressor.norm", cp + "norm.weight", d);
      if (csa) {
        const std::string ip = a + "indexer.";
        L.idx_wq_b = Lin(k + "indexer.wq_b", ip + "wq_b.weight", Hi * di, qr);
        L.idx_weights = Lin(k + "indexer.weights_proj", ip + "weights_proj.weight", Hi, D,
                            WeightRole::kLinearF32);
        L.idx_wkv = Lin(k + "indexer.compressor.wkv", ip + "compressor.wkv.weight", 2 * di, D,
                        WeightRole::kLinearF32);
        L.idx_wgate = Lin(k + "indexer.compressor.wgate", ip + "compressor.wgate.weight", 2 * di,
                          D, WeightRole::kLinearF32);
        L.idx_ape = Lin(k + "indexer.compressor.ape", ip + "compressor.ape", rate, 2 * di,
                        WeightRole::kLinearF32);
        L.idx_norm = Vector(k + "indexer.compressor.norm", ip + "compressor.norm.weight", di);
      }
    }
    const std::string f = p + "ffn.";
    L.router = Lin(k + "gate", f + "gate.weight", E, D, WeightRole::kLinearF32);
    if (v.hash_moe[l]) {
      L.tid2eid = Lin(k + "gate.tid2eid", f + "gate.tid2eid", c.vocab_size, c.num_experts_per_tok,
                      WeightRole::kLinearF32);
    } else {
      L.router_bias = Vector(k + "gate.bias", f + "gate.bias", E);
    }
    WeightDesc ex{.key = k + "experts", .role = WeightRole::kExperts, .rows = Il, .cols = D,
                  .first_expert = lay.ExpertBegin(c), .local_experts = lay.ExpertsPerGroup(c),
                  .total_experts = E};
    for (int64_t e = ex.first_expert; e < ex.first_expert + ex.local_experts; ++e) {
      const std::string ep = absl::StrCat(f, "experts.", e, ".");
      ex.parts.push_back(Rows(ep + "w1.weight", I, D, i0, Il));
      ex.parts.push_back(Rows(ep + "w3.weight", I, D, i0, Il));
      ex.parts.push_back(Cols(ep + "w2.weight", D, I, i0, Il));
    }
    L.experts = std::move(ex);
    L.shared_gate_up = Desc(k + "shared_experts.gate_up", WeightRole::kLinear,
                            {Rows(f + "shared_experts.w1.weight", I, D, s0, Is),
                             Rows(f + "shared_experts.w3.weight", I, D, s0, Is)});
    L.shared_down = Desc(k + "shared_experts.down", WeightRole::kLinear,
                         {Cols(f + "shared_experts.w2.weight", D, I, s0, Is)});
  }
  return s;
}

void ForEachV4Weight(const V4Schema& s, const std::function<void(const WeightDesc&)>& f) {
  auto visit = [&](const WeightDesc& d) {
    if (!d.parts.empty()) f(d);
  };
  visit(s.embed);
  for (const auto& L : s.layers) ForEachLayerMember(L, L, [&](const WeightDesc& d, const WeightDesc&) { visit(d); });
  visit(s.final_norm);
  visit(s.hc_head_fn);
  visit(s.hc_head_base);
  visit(s.hc_head_scale);
  visit(s.lm_head);
}

absl::StatusOr<int64_t> V4StoredBytes(const ModelConfig& c, const ShardLayout& layout,
                                      const WeightStore* store) {
  RETURN_IF_ERROR(layout.Validate(c));
  int64_t total = 0;
  absl::Status st;
  ForEachV4Weight(MakeV4Schema(c, layout), [&](const WeightDesc& d) {
    for (const TensorPart& p : d.parts) {
      const int64_t n = p.rows() * p.cols();
      if (store != nullptr) {
        absl::StatusOr<DType> t = store->StoredType(p.name);
        if (!t.ok()) {
          if (st.ok()) st = t.status();
          continue;
        }
        total += n * DTypeSize(*t);
        if (*t == DType::kF8E4M3)
          total += ((p.rows() + c.fp8.block_n - 1) / c.fp8.block_n) *
                   ((p.cols() + c.fp8.block_k - 1) / c.fp8.block_k) * 4;
        continue;
      }
      const bool fp8 = c.fp8.enabled &&
                       (d.role == WeightRole::kLinear || d.role == WeightRole::kExperts);
      total += fp8 ? n + ((p.rows() + c.fp8.block_n - 1) / c.fp8.block_n) *
                             ((p.cols() + c.fp8.block_k - 1) / c.fp8.block_k) * 4
                   : n * 2;
    }
  });
  RETURN_IF_ERROR(st);
  return total;
}

absl::StatusOr<V4Weights> LoadV4Weights(const ModelConfig& c, const ShardLayout& layout,
                                        const WeightStore& store, BackendOps& ops) {
  RETURN_IF_ERROR(layout.Validate(c));
  const V4Schema s = MakeV4Schema(c, layout);
  WeightReader reader(store);
  V4Weights w;
  absl::Status st;
  auto load = [&](const WeightDesc& d, std::unique_ptr<BackendWeight>& out) {
    if (st.ok()) st = LoadDescribed(d, ops, reader, &out, &w.bytes, &w.fp8_bytes);
  };
  load(s.embed, w.embed);
  w.layers.resize(s.layers.size());
  for (size_t l = 0; l < s.layers.size(); ++l) {
    w.layers[l].wo_a.resize(s.layers[l].wo_a.size());
    ForEachLayerMember(s.layers[l], w.layers[l], load);
  }
  load(s.final_norm, w.final_norm);
  load(s.hc_head_fn, w.hc_head_fn);
  load(s.hc_head_base, w.hc_head_base);
  load(s.hc_head_scale, w.hc_head_scale);
  load(s.lm_head, w.lm_head);
  RETURN_IF_ERROR(st);
  return w;
}

}  // namespace dsinfer
