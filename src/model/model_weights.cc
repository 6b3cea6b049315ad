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

  // Reads tensor `name` of shape [rows, cols] into rows [row0, row0 + rows) of m.
  absl::Status ReadInto(const std::string& name, int64_t rows, int64_t cols, Matrix* m,
                        int64_t row0) {
    const int64_t shape[2] = {rows, cols};
    if (m->bf16) return store_.ReadBf16(name, shape, m->b16.data() + row0 * cols);
    return store_.ReadF32(name, shape, m->f32.data() + row0 * cols);
  }

  void Allocate(Matrix* m, int64_t rows, int64_t cols) {
    m->rows = rows;
    m->cols = cols;
    m->bf16 = precision_ == Precision::kBF16;
    if (m->bf16) m->b16.assign(static_cast<size_t>(rows * cols), 0);
    else m->f32.assign(static_cast<size_t>(rows * cols), 0.f);
    total_bytes_ += m->bytes();
  }

  absl::Status Matrix1(const std::string& name, int64_t rows, int64_t cols, Matrix* m) {
    Allocate(m, rows, cols);
    return ReadInto(name, rows, cols, m, 0);
  }

  // f32 vector/matrix; values rounded to bf16 in bf16 runs when round is set.
  absl::Status F32(const std::string& name, std::vector<int64_t> shape, std::vector<float>* v,
                   bool round) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    v->assign(static_cast<size_t>(n), 0.f);
    total_bytes_ += n * 4;
    RETURN_IF_ERROR(store_.ReadF32(name, shape, v->data()));
    if (round && precision_ == Precision::kBF16)
      for (float& x : *v) x = RoundToBf16(x);
    return absl::OkStatus();
  }

  absl::Status Mlp(const std::string& prefix, int64_t hidden, int64_t inter, MlpWeights* w) {
    w->inter = inter;
    Allocate(&w->gate_up, 2 * inter, hidden);
    RETURN_IF_ERROR(ReadInto(prefix + "gate_proj.weight", inter, hidden, &w->gate_up, 0));
    RETURN_IF_ERROR(ReadInto(prefix + "up_proj.weight", inter, hidden, &w->gate_up, inter));
    return Matrix1(prefix + "down_proj.weight", hidden, inter, &w->down);
  }

  int64_t total_bytes() const { return total_bytes_; }

 private:
  const WeightStore& store_;
  Precision precision_;
  int64_t total_bytes_ = 0;
};

absl::Status LoadAttention(const ModelConfig& c, const std::string& p, Loader& ld,
                           AttentionWeights* a) {
  const int64_t H = c.num_attention_heads, qk = c.qk_head_dim();
  const int64_t kv_a_rows = c.kv_lora_rank + c.qk_rope_head_dim;
  const int64_t qa_width = c.q_lora_rank > 0 ? c.q_lora_rank : H * qk;
  ld.Allocate(&a->qkv_a, qa_width + kv_a_rows, c.hidden_size);
  if (c.q_lora_rank > 0) {
    RETURN_IF_ERROR(ld.ReadInto(p + "q_a_proj.weight", qa_width, c.hidden_size, &a->qkv_a, 0));
    RETURN_IF_ERROR(ld.F32(p + "q_a_layernorm.weight", {c.q_lora_rank}, &a->q_a_norm, false));
    RETURN_IF_ERROR(ld.Matrix1(p + "q_b_proj.weight", H * qk, c.q_lora_rank, &a->q_b));
  } else {
    RETURN_IF_ERROR(ld.ReadInto(p + "q_proj.weight", qa_width, c.hidden_size, &a->qkv_a, 0));
  }
  RETURN_IF_ERROR(ld.ReadInto(p + "kv_a_proj_with_mqa.weight", kv_a_rows, c.hidden_size,
                              &a->qkv_a, qa_width));
  RETURN_IF_ERROR(ld.F32(p + "kv_a_layernorm.weight", {c.kv_lora_rank}, &a->kv_a_norm, false));
  RETURN_IF_ERROR(ld.F32(p + "kv_b_proj.weight",
                         {H * (c.qk_nope_head_dim + c.v_head_dim), c.kv_lora_rank}, &a->kv_b,
                         true));
  return ld.Matrix1(p + "o_proj.weight", c.hidden_size, H * c.v_head_dim, &a->o);
}

absl::Status LoadMoe(const ModelConfig& c, const std::string& p, Loader& ld, MoeWeights* m) {
  RETURN_IF_ERROR(ld.F32(p + "gate.weight", {c.n_routed_experts, c.hidden_size}, &m->gate, false));
  if (c.topk_method == TopkMethod::kNoauxTc) {
    RETURN_IF_ERROR(
        ld.F32(p + "gate.e_score_correction_bias", {c.n_routed_experts}, &m->bias, false));
  }
  m->experts.resize(c.n_routed_experts);
  for (int64_t e = 0; e < c.n_routed_experts; ++e) {
    RETURN_IF_ERROR(ld.Mlp(absl::StrCat(p, "experts.", e, "."), c.hidden_size,
                           c.moe_intermediate_size, &m->experts[e]));
  }
  if (c.n_shared_experts > 0) {
    RETURN_IF_ERROR(ld.Mlp(p + "shared_experts.", c.hidden_size,
                           c.n_shared_experts * c.moe_intermediate_size, &m->shared));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<ModelWeights>> LoadModelWeights(const ModelConfig& c,
                                                               const WeightStore& store,
                                                               Precision precision) {
  auto w = std::make_unique<ModelWeights>();
  w->precision = precision;
  Loader ld(store, precision);
  RETURN_IF_ERROR(ld.Matrix1("model.embed_tokens.weight", c.vocab_size, c.hidden_size, &w->embed));
  w->layers.resize(c.num_hidden_layers);
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const std::string p = absl::StrCat("model.layers.", l, ".");
    LayerWeights& L = w->layers[l];
    RETURN_IF_ERROR(ld.F32(p + "input_layernorm.weight", {c.hidden_size}, &L.input_norm, false));
    RETURN_IF_ERROR(ld.F32(p + "post_attention_layernorm.weight", {c.hidden_size},
                           &L.post_attention_norm, false));
    RETURN_IF_ERROR(LoadAttention(c, p + "self_attn.", ld, &L.attn));
    L.is_moe = c.IsMoeLayer(l);
    if (L.is_moe) {
      RETURN_IF_ERROR(LoadMoe(c, p + "mlp.", ld, &L.moe));
    } else {
      RETURN_IF_ERROR(ld.Mlp(p + "mlp.", c.hidden_size, c.intermediate_size, &L.mlp));
    }
  }
  RETURN_IF_ERROR(ld.F32("model.norm.weight", {c.hidden_size}, &w->final_norm, false));
  if (c.tie_word_embeddings && !store.Has("lm_head.weight")) {
    w->lm_head = w->embed;
  } else {
    RETURN_IF_ERROR(ld.Matrix1("lm_head.weight", c.vocab_size, c.hidden_size, &w->lm_head));
  }
  w->total_bytes = ld.total_bytes();
  return w;
}

}  // namespace dsinfer
