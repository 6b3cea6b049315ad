#include "src/model/dense_weights.h"

#include "absl/strings/str_cat.h"
#include "src/core/status_macros.h"
#include "src/model/model_program.h"
#include "src/model/schema_parts.h"

namespace dsinfer {
using namespace schema;  // NOLINT: the schema building blocks

DenseSchema MakeDenseSchema(const ModelConfig& c, const ShardLayout& lay, bool tied_lm_head) {
  DenseSchema s;
  const int64_t D = c.hidden_size, V = c.vocab_size, hd = c.head_dim;
  const int64_t qw = c.num_attention_heads * hd, kw = c.num_key_value_heads * hd;
  // This rank's query heads, KV heads, intermediate and vocabulary slices (shard_layout.h).
  const int64_t q0 = lay.HeadBegin(c) * hd, ql = lay.LocalHeads(c) * hd;
  const int64_t k0 = lay.KvHeadBegin(c) * hd, kl = lay.LocalKvHeads(c) * hd;
  const int64_t v0 = lay.VocabBegin(c), nv = lay.VocabEnd(c) - v0;
  s.embed = Desc("embed", WeightRole::kEmbedding, {Rows("model.embed_tokens.weight", V, D, v0, nv)});
  s.lm_head = Desc("lm_head", WeightRole::kLinear,
                   {Rows(tied_lm_head ? "model.embed_tokens.weight" : "lm_head.weight", V, D, v0, nv)});
  s.final_norm = Vector("final_norm", "model.norm.weight", D);
  s.layers.resize(c.num_hidden_layers);
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const std::string p = absl::StrCat("model.layers.", l, ".");
    const std::string key = absl::StrCat("layers.", l);
    const std::string a = p + "self_attn.";
    DenseLayerOf<WeightDesc>& L = s.layers[l];
    L.input_norm = Vector(key + ".input_norm", p + "input_layernorm.weight", D);
    L.post_attention_norm =
        Vector(key + ".post_attention_norm", p + "post_attention_layernorm.weight", D);
    L.qkv = Desc(key + ".attn.qkv", WeightRole::kLinear,
                 {Rows(a + "q_proj.weight", qw, D, q0, ql), Rows(a + "k_proj.weight", kw, D, k0, kl),
                  Rows(a + "v_proj.weight", kw, D, k0, kl)});
    if (c.qkv_bias) {
      L.q_bias = Desc(key + ".attn.q_bias", WeightRole::kVector, {Elems(a + "q_proj.bias", qw, q0, ql)});
      L.k_bias = Desc(key + ".attn.k_bias", WeightRole::kVector, {Elems(a + "k_proj.bias", kw, k0, kl)});
      L.v_bias = Desc(key + ".attn.v_bias", WeightRole::kVector, {Elems(a + "v_proj.bias", kw, k0, kl)});
    }
    L.o = Desc(key + ".attn.o", WeightRole::kLinear, {Cols(a + "o_proj.weight", D, qw, q0, ql)});
    if (c.o_bias) L.o_bias = Vector(key + ".attn.o_bias", a + "o_proj.bias", D);
    const int64_t I = c.intermediate_size, Il = I / lay.tp;
    MlpSchema(key + ".mlp", p + "mlp.", D, I, lay.rank * Il, Il, &L.gate_up, &L.down);
  }
  return s;
}

void ForEachDenseWeight(const DenseSchema& s, const std::function<void(const WeightDesc&)>& f) {
  auto each = [&](const WeightDesc& d) {
    if (!d.parts.empty()) f(d);
  };
  each(s.embed);
  for (const auto& L : s.layers) {
    for (const WeightDesc* d : {&L.input_norm, &L.post_attention_norm, &L.qkv, &L.q_bias,
                                &L.k_bias, &L.v_bias, &L.o, &L.o_bias, &L.gate_up, &L.down})
      each(*d);
  }
  each(s.final_norm);
  each(s.lm_head);
}

absl::StatusOr<DenseWeights> LoadDenseWeights(const ModelConfig& c, const ShardLayout& layout,
                                              const WeightStore& store, BackendOps& ops) {
  RETURN_IF_ERROR(layout.Validate(c));
  const DenseSchema schema =
      MakeDenseSchema(c, layout, c.tie_word_embeddings && !store.Has("lm_head.weight"));
  WeightReader reader(store);
  DenseWeights w;
  auto load = [&](const WeightDesc& d, std::unique_ptr<BackendWeight>* out) {
    return LoadDescribed(d, ops, reader, out, &w.bytes, &w.fp8_bytes);
  };
  RETURN_IF_ERROR(load(schema.embed, &w.embed));
  w.layers.resize(schema.layers.size());
  for (size_t l = 0; l < schema.layers.size(); ++l) {
    const auto& S = schema.layers[l];
    auto& L = w.layers[l];
    RETURN_IF_ERROR(load(S.input_norm, &L.input_norm));
    RETURN_IF_ERROR(load(S.post_attention_norm, &L.post_attention_norm));
    RETURN_IF_ERROR(load(S.qkv, &L.qkv));
    RETURN_IF_ERROR(load(S.q_bias, &L.q_bias));
    RETURN_IF_ERROR(load(S.k_bias, &L.k_bias));
    RETURN_IF_ERROR(load(S.v_bias, &L.v_bias));
    RETURN_IF_ERROR(load(S.o, &L.o));
    RETURN_IF_ERROR(load(S.o_bias, &L.o_bias));
    RETURN_IF_ERROR(load(S.gate_up, &L.gate_up));
    RETURN_IF_ERROR(load(S.down, &L.down));
  }
  RETURN_IF_ERROR(load(schema.final_norm, &w.final_norm));
  RETURN_IF_ERROR(load(schema.lm_head, &w.lm_head));
  return w;
}

}  // namespace dsinfer
