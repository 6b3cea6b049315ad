#include "src/backend_cuda/device_weights.h"

#include <cuda_runtime.h>

#include "absl/strings/str_cat.h"
#include "kernels/cuda/moe.h"
#include "src/core/numeric.h"
#include "src/core/status_macros.h"

namespace dsinfer::cuda_backend {
namespace {

class Uploader {
 public:
  explicit Uploader(const WeightStore& store) : store_(store) {}

  // bf16 tensor [rows, cols] into dst (device).
  absl::Status Bf16Into(const std::string& name, int64_t rows, int64_t cols, void* dst) {
    const int64_t shape[2] = {rows, cols};
    host16_.resize(static_cast<size_t>(rows * cols));
    RETURN_IF_ERROR(store_.ReadBf16(name, shape, host16_.data()));
    DSINFER_CUDA_RETURN_IF_ERROR(
        cudaMemcpy(dst, host16_.data(), host16_.size() * 2, cudaMemcpyHostToDevice));
    return absl::OkStatus();
  }

  absl::Status Alloc(DeviceBuffer* b, size_t bytes) {
    RETURN_IF_ERROR(b->Allocate(bytes));
    bytes_ += static_cast<int64_t>(bytes);
    return absl::OkStatus();
  }

  absl::Status Bf16(const std::string& name, int64_t rows, int64_t cols, DeviceBuffer* out) {
    RETURN_IF_ERROR(Alloc(out, static_cast<size_t>(rows * cols) * 2));
    return Bf16Into(name, rows, cols, out->get());
  }

  absl::Status F32(const std::string& name, int64_t n, DeviceBuffer* out) {
    const int64_t shape[1] = {n};
    host32_.resize(static_cast<size_t>(n));
    RETURN_IF_ERROR(store_.ReadF32(name, shape, host32_.data()));
    RETURN_IF_ERROR(Alloc(out, static_cast<size_t>(n) * 4));
    DSINFER_CUDA_RETURN_IF_ERROR(
        cudaMemcpy(out->get(), host32_.data(), host32_.size() * 4, cudaMemcpyHostToDevice));
    return absl::OkStatus();
  }

  absl::Status F32Matrix(const std::string& name, int64_t rows, int64_t cols, DeviceBuffer* out) {
    const int64_t shape[2] = {rows, cols};
    host32_.resize(static_cast<size_t>(rows * cols));
    RETURN_IF_ERROR(store_.ReadF32(name, shape, host32_.data()));
    RETURN_IF_ERROR(Alloc(out, host32_.size() * 4));
    DSINFER_CUDA_RETURN_IF_ERROR(
        cudaMemcpy(out->get(), host32_.data(), host32_.size() * 4, cudaMemcpyHostToDevice));
    return absl::OkStatus();
  }

  absl::Status Mlp(const std::string& p, int64_t hidden, int64_t inter, DeviceMlp* m) {
    m->inter = inter;
    RETURN_IF_ERROR(Alloc(&m->gate_up, static_cast<size_t>(2 * inter * hidden) * 2));
    auto* gu = m->gate_up.as<uint16_t>();
    RETURN_IF_ERROR(Bf16Into(p + "gate_proj.weight", inter, hidden, gu));
    RETURN_IF_ERROR(Bf16Into(p + "up_proj.weight", inter, hidden, gu + inter * hidden));
    return Bf16(p + "down_proj.weight", hidden, inter, &m->down);
  }

  // Routed experts stacked: gate/up interleaved for the grouped GEMM, down as is.
  absl::Status Experts(const std::string& p, int64_t n, int64_t hidden, int64_t inter,
                       DeviceMoe* m) {
    RETURN_IF_ERROR(Alloc(&m->experts_gate_up, static_cast<size_t>(n * 2 * inter * hidden) * 2));
    RETURN_IF_ERROR(Alloc(&m->experts_down, static_cast<size_t>(n * hidden * inter) * 2));
    std::vector<uint16_t> gate(inter * hidden), up(inter * hidden), mixed(2 * inter * hidden);
    const int64_t shape[2] = {inter, hidden};
    for (int64_t e = 0; e < n; ++e) {
      const std::string q = absl::StrCat(p, "experts.", e, ".");
      RETURN_IF_ERROR(store_.ReadBf16(q + "gate_proj.weight", shape, gate.data()));
      RETURN_IF_ERROR(store_.ReadBf16(q + "up_proj.weight", shape, up.data()));
      cuda::InterleaveGateUp(gate.data(), up.data(), inter, hidden, mixed.data());
      DSINFER_CUDA_RETURN_IF_ERROR(
          cudaMemcpy(m->experts_gate_up.as<uint16_t>() + e * 2 * inter * hidden, mixed.data(),
                     mixed.size() * 2, cudaMemcpyHostToDevice));
      RETURN_IF_ERROR(Bf16Into(q + "down_proj.weight", hidden, inter,
                               m->experts_down.as<uint16_t>() + e * hidden * inter));
    }
    return absl::OkStatus();
  }

  // f32 copy of a bf16 device tensor of n elements (the values the host last uploaded).
  absl::Status CopyAsF32(const DeviceBuffer& src, int64_t n, DeviceBuffer* out) {
    host16_.resize(static_cast<size_t>(n));
    DSINFER_CUDA_RETURN_IF_ERROR(
        cudaMemcpy(host16_.data(), src.get(), host16_.size() * 2, cudaMemcpyDeviceToHost));
    host32_.resize(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) host32_[i] = ::dsinfer::Bf16ToF32(host16_[i]);
    RETURN_IF_ERROR(Alloc(out, host32_.size() * 4));
    DSINFER_CUDA_RETURN_IF_ERROR(
        cudaMemcpy(out->get(), host32_.data(), host32_.size() * 4, cudaMemcpyHostToDevice));
    return absl::OkStatus();
  }

  int64_t bytes() const { return bytes_; }

 private:
  const WeightStore& store_;
  std::vector<uint16_t> host16_;
  std::vector<float> host32_;
  int64_t bytes_ = 0;
};

absl::Status UploadAttention(const ModelConfig& c, const std::string& p, bool kv_b_f32,
                             Uploader& up, DeviceAttention* a) {
  const int64_t H = c.num_attention_heads, qk = c.qk_head_dim(), D = c.hidden_size;
  const int64_t kv_a_rows = c.kv_lora_rank + c.qk_rope_head_dim;
  a->qa_width = c.q_lora_rank > 0 ? c.q_lora_rank : H * qk;
  RETURN_IF_ERROR(up.Alloc(&a->qkv_a, static_cast<size_t>((a->qa_width + kv_a_rows) * D) * 2));
  auto* qkv = a->qkv_a.as<uint16_t>();
  if (c.q_lora_rank > 0) {
    RETURN_IF_ERROR(up.Bf16Into(p + "q_a_proj.weight", a->qa_width, D, qkv));
    RETURN_IF_ERROR(up.F32(p + "q_a_layernorm.weight", c.q_lora_rank, &a->q_a_norm));
    RETURN_IF_ERROR(up.Bf16(p + "q_b_proj.weight", H * qk, c.q_lora_rank, &a->q_b));
  } else {
    RETURN_IF_ERROR(up.Bf16Into(p + "q_proj.weight", a->qa_width, D, qkv));
  }
  RETURN_IF_ERROR(
      up.Bf16Into(p + "kv_a_proj_with_mqa.weight", kv_a_rows, D, qkv + a->qa_width * D));
  RETURN_IF_ERROR(up.F32(p + "kv_a_layernorm.weight", c.kv_lora_rank, &a->kv_a_norm));
  RETURN_IF_ERROR(up.Bf16(p + "kv_b_proj.weight", H * (c.qk_nope_head_dim + c.v_head_dim),
                          c.kv_lora_rank, &a->kv_b));
  if (kv_b_f32) {
    RETURN_IF_ERROR(up.CopyAsF32(a->kv_b, H * (c.qk_nope_head_dim + c.v_head_dim) * c.kv_lora_rank,
                                 &a->kv_b_f32));
  }
  return up.Bf16(p + "o_proj.weight", D, H * c.v_head_dim, &a->o);
}

}  // namespace

absl::StatusOr<std::unique_ptr<DeviceWeights>> UploadWeights(const ModelConfig& c,
                                                             const WeightStore& store,
                                                             bool kv_b_f32) {
  auto w = std::make_unique<DeviceWeights>();
  Uploader up(store);
  const int64_t D = c.hidden_size;
  RETURN_IF_ERROR(up.Bf16("model.embed_tokens.weight", c.vocab_size, D, &w->embed));
  w->layers.resize(c.num_hidden_layers);
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const std::string p = absl::StrCat("model.layers.", l, ".");
    DeviceLayer& L = w->layers[l];
    RETURN_IF_ERROR(up.F32(p + "input_layernorm.weight", D, &L.input_norm));
    RETURN_IF_ERROR(up.F32(p + "post_attention_layernorm.weight", D, &L.post_attention_norm));
    RETURN_IF_ERROR(UploadAttention(c, p + "self_attn.", kv_b_f32, up, &L.attn));
    L.is_moe = c.IsMoeLayer(l);
    if (L.is_moe) {
      const std::string q = p + "mlp.";
      RETURN_IF_ERROR(up.F32Matrix(q + "gate.weight", c.n_routed_experts, D, &L.moe.gate));
      if (c.topk_method == TopkMethod::kNoauxTc) {
        RETURN_IF_ERROR(
            up.F32(q + "gate.e_score_correction_bias", c.n_routed_experts, &L.moe.bias));
      }
      RETURN_IF_ERROR(up.Experts(q, c.n_routed_experts, D, c.moe_intermediate_size, &L.moe));
      if (c.n_shared_experts > 0) {
        RETURN_IF_ERROR(up.Mlp(q + "shared_experts.", D,
                               c.n_shared_experts * c.moe_intermediate_size, &L.moe.shared));
      }
    } else {
      RETURN_IF_ERROR(up.Mlp(p + "mlp.", D, c.intermediate_size, &L.mlp));
    }
  }
  RETURN_IF_ERROR(up.F32("model.norm.weight", D, &w->final_norm));
  if (c.tie_word_embeddings && !store.Has("lm_head.weight")) {
    w->lm_head = w->embed.as<__nv_bfloat16>();
  } else {
    RETURN_IF_ERROR(up.Bf16("lm_head.weight", c.vocab_size, D, &w->lm_head_own));
    w->lm_head = w->lm_head_own.as<__nv_bfloat16>();
  }
  w->bytes = up.bytes();
  return w;
}

}  // namespace dsinfer::cuda_backend
