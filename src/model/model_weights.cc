#include "src/model/model_weights.h"

#include "absl/strings/str_cat.h"
#include "src/core/numeric.h"
#include "src/core/status_macros.h"

namespace dsinfer {

absl::StatusOr<Precision> ParsePrecision(absl::string_view name) {
  if (name == "f32" || name == "float32") return Precision::kF32;
  if (name == "bf16" || name == "bfloat16") return Precision::kBF16;
  return absl::InvalidArgumentError(
      absl::StrCat("dtype \"", name, "\" is not one of f32, bf16"));
}

namespace {

class Loader {
 public:
  Loader(const WeightStore& store, Precision precision) : store_(store), precision_(precision) {}

  // Reads tensor `name` of shape [rows, cols] (or its `slice`, which has m->cols columns) into
  // m from row row0 on.
  absl::Status ReadInto(const std::string& name, int64_t rows, int64_t cols, Matrix* m,
                        int64_t row0, const TensorSlice* slice = nullptr) {
    const int64_t shape[2] = {rows, cols};
    if (m->bf16) return store_.ReadBf16(name, shape, m->b16.data() + row0 * m->cols, slice);
    return store_.ReadF32(name, shape, m->f32.data() + row0 * m->cols, slice);
  }

  void Allocate(Matrix* m, int64_t rows, int64_t cols) {
    m->rows = rows;
    m->cols = cols;
    m->bf16 = precision_ == Precision::kBF16;
    if (m->bf16) m->b16.assign(static_cast<size_t>(rows * cols), 0);
    else m->f32.assign(static_cast<size_t>(rows * cols), 0.f);
    total_bytes_ += m->bytes();
  }

  // Rows [r0, r0 + n) of a [rows, cols] tensor.
  absl::Status Rows(const std::string& name, int64_t rows, int64_t cols, int64_t r0, int64_t n,
                    Matrix* m) {
    Allocate(m, n, cols);
    const TensorSlice sl{.row0 = r0, .rows = n, .col0 = 0, .cols = cols};
    return ReadInto(name, rows, cols, m, 0, &sl);
  }

  // f32 vector/matrix; values rounded to bf16 in bf16 runs when round is set. With a slice, only
  // that part of the 2-D tensor `shape`.
  absl::Status F32(const std::string& name, std::vector<int64_t> shape, std::vector<float>* v,
                   bool round, const TensorSlice* slice = nullptr) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    if (slice != nullptr) n = slice->rows * slice->cols;
    v->assign(static_cast<size_t>(n), 0.f);
    total_bytes_ += n * 4;
    RETURN_IF_ERROR(store_.ReadF32(name, shape, v->data(), slice));
    if (round && precision_ == Precision::kBF16)
      for (float& x : *v) x = RoundToBf16(x);
    return absl::OkStatus();
  }

  // SwiGLU MLP with intermediate slice [i0, i0 + n) of inter (all of it: i0 = 0, n = inter).
  absl::Status Mlp(const std::string& prefix, int64_t hidden, int64_t inter, int64_t i0,
                   int64_t n, MlpWeights* w) {
    w->inter = n;
    Allocate(&w->gate_up, 2 * n, hidden);
    const TensorSlice rows{.row0 = i0, .rows = n, .col0 = 0, .cols = hidden};
    RETURN_IF_ERROR(ReadInto(prefix + "gate_proj.weight", inter, hidden, &w->gate_up, 0, &rows));
    RETURN_IF_ERROR(ReadInto(prefix + "up_proj.weight", inter, hidden, &w->gate_up, n, &rows));
    Allocate(&w->down, hidden, n);
    const TensorSlice cols{.row0 = 0, .rows = hidden, .col0 = i0, .cols = n};
    return ReadInto(prefix + "down_proj.weight", hidden, inter, &w->down, 0, &cols);
  }

  int64_t total_bytes() const { return total_bytes_; }

 private:
  const WeightStore& store_;
  Precision precision_;
  int64_t total_bytes_ = 0;
};

absl::Status LoadAttention(const ModelConfig& c, const ShardLayout& lay, const std::string& p,
                           Loader& ld, AttentionWeights* a) {
  const int64_t H = c.num_attention_heads, qk = c.qk_head_dim();
  const int64_t Hl = lay.LocalHeads(c), h0 = lay.HeadBegin(c);
  const int64_t kv_a_rows = c.kv_lora_rank + c.qk_rope_head_dim;
  const int64_t qa_width = c.q_lora_rank > 0 ? c.q_lora_rank : Hl * qk;
  ld.Allocate(&a->qkv_a, qa_width + kv_a_rows, c.hidden_size);
  if (c.q_lora_rank > 0) {
    RETURN_IF_ERROR(ld.ReadInto(p + "q_a_proj.weight", qa_width, c.hidden_size, &a->qkv_a, 0));
    RETURN_IF_ERROR(ld.F32(p + "q_a_layernorm.weight", {c.q_lora_rank}, &a->q_a_norm, false));
    RETURN_IF_ERROR(ld.Rows(p + "q_b_proj.weight", H * qk, c.q_lora_rank, h0 * qk, Hl * qk,
                            &a->q_b));
  } else {
    const TensorSlice q_rows{.row0 = h0 * qk, .rows = Hl * qk, .col0 = 0, .cols = c.hidden_size};
    RETURN_IF_ERROR(
        ld.ReadInto(p + "q_proj.weight", H * qk, c.hidden_size, &a->qkv_a, 0, &q_rows));
  }
  RETURN_IF_ERROR(ld.ReadInto(p + "kv_a_proj_with_mqa.weight", kv_a_rows, c.hidden_size,
                              &a->qkv_a, qa_width));
  RETURN_IF_ERROR(ld.F32(p + "kv_a_layernorm.weight", {c.kv_lora_rank}, &a->kv_a_norm, false));
  const int64_t kvb = c.qk_nope_head_dim + c.v_head_dim;
  const TensorSlice kvb_rows{.row0 = h0 * kvb, .rows = Hl * kvb, .col0 = 0, .cols = c.kv_lora_rank};
  RETURN_IF_ERROR(ld.F32(p + "kv_b_proj.weight", {H * kvb, c.kv_lora_rank}, &a->kv_b, true,
                         &kvb_rows));
  ld.Allocate(&a->o, c.hidden_size, Hl * c.v_head_dim);
  const TensorSlice o_cols{.row0 = 0, .rows = c.hidden_size, .col0 = h0 * c.v_head_dim,
                           .cols = Hl * c.v_head_dim};
  return ld.ReadInto(p + "o_proj.weight", c.hidden_size, H * c.v_head_dim, &a->o, 0, &o_cols);
}

absl::Status LoadMoe(const ModelConfig& c, const ShardLayout& lay, const std::string& p,
                     Loader& ld, MoeWeights* m) {
  RETURN_IF_ERROR(ld.F32(p + "gate.weight", {c.n_routed_experts, c.hidden_size}, &m->gate, false));
  if (c.topk_method == TopkMethod::kNoauxTc) {
    RETURN_IF_ERROR(
        ld.F32(p + "gate.e_score_correction_bias", {c.n_routed_experts}, &m->bias, false));
  }
  m->experts.resize(c.n_routed_experts);
  const int64_t I = c.moe_intermediate_size, Il = I / lay.moe_tp();
  const int64_t e0 = lay.ExpertBegin(c), e1 = e0 + lay.ExpertsPerGroup(c);
  for (int64_t e = e0; e < e1; ++e) {
    RETURN_IF_ERROR(ld.Mlp(absl::StrCat(p, "experts.", e, "."), c.hidden_size, I,
                           lay.moe_tp_rank() * Il, Il, &m->experts[e]));
  }
  if (c.n_shared_experts > 0) {
    const int64_t Is = c.n_shared_experts * I;
    RETURN_IF_ERROR(ld.Mlp(p + "shared_experts.", c.hidden_size, Is, 0, Is, &m->shared));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<ModelWeights>> LoadModelWeights(const ModelConfig& c,
                                                               const WeightStore& store,
                                                               Precision precision,
                                                               const ShardLayout& layout) {
  RETURN_IF_ERROR(layout.Validate(c));
  auto w = std::make_unique<ModelWeights>();
  w->precision = precision;
  w->layout = layout;
  Loader ld(store, precision);
  const int64_t v0 = layout.VocabBegin(c), nv = layout.VocabEnd(c) - v0;
  RETURN_IF_ERROR(
      ld.Rows("model.embed_tokens.weight", c.vocab_size, c.hidden_size, v0, nv, &w->embed));
  w->layers.resize(c.num_hidden_layers);
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const std::string p = absl::StrCat("model.layers.", l, ".");
    LayerWeights& L = w->layers[l];
    RETURN_IF_ERROR(ld.F32(p + "input_layernorm.weight", {c.hidden_size}, &L.input_norm, false));
    RETURN_IF_ERROR(ld.F32(p + "post_attention_layernorm.weight", {c.hidden_size},
                           &L.post_attention_norm, false));
    RETURN_IF_ERROR(LoadAttention(c, layout, p + "self_attn.", ld, &L.attn));
    L.is_moe = c.IsMoeLayer(l);
    if (L.is_moe) {
      RETURN_IF_ERROR(LoadMoe(c, layout, p + "mlp.", ld, &L.moe));
    } else {
      const int64_t Il = c.intermediate_size / layout.tp;
      RETURN_IF_ERROR(ld.Mlp(p + "mlp.", c.hidden_size, c.intermediate_size, layout.rank * Il, Il,
                             &L.mlp));
    }
  }
  RETURN_IF_ERROR(ld.F32("model.norm.weight", {c.hidden_size}, &w->final_norm, false));
  if (c.tie_word_embeddings && !store.Has("lm_head.weight")) {
    w->lm_head = w->embed;
  } else {
    RETURN_IF_ERROR(ld.Rows("lm_head.weight", c.vocab_size, c.hidden_size, v0, nv, &w->lm_head));
  }
  w->total_bytes = ld.total_bytes();
  return w;
}

}  // namespace dsinfer
