// Multi-head latent attention of one layer (DeepSeek-V2 paper, section 2.1): prefill chunks in
// the expanded form, decode tokens in the absorbed form, both over the paged latent cache.
#include <cstring>

#include "kernels/cpu/linear.h"
#include "kernels/cpu/mla_attention.h"
#include "kernels/cpu/rmsnorm.h"
#include "kernels/cpu/rope.h"
#include "src/core/numeric.h"
#include "src/model/deepseek_model.h"

namespace dsinfer {

void DeepseekModel::Attention(int64_t layer, absl::Span<const SequenceInput> seqs,
                              const ForwardPlan& plan, const float* xn, LatentCacheStorage& cache,
                              float* out) {
  const ModelConfig& c = config_;
  const AttentionWeights& a = weights_->layers[layer].attn;
  const int64_t N = plan.num_tokens, H = weights_->layout.LocalHeads(c);  // this rank's heads
  const int64_t nope = c.qk_nope_head_dim, rope = c.qk_rope_head_dim, vd = c.v_head_dim;
  const int64_t qk = nope + rope, kvl = c.kv_lora_rank, width = kvl + rope;
  const int64_t aw = a.qkv_a.rows, qa_w = aw - width;
  const int64_t kvb_row = nope + vd;  // rows of kv_b per head

  // [N, qa_w + kv_lora + rope]: q_a (or q), latent, k_pe.
  std::vector<float> qkv_a(N * aw);
  cpu::Linear({.x = xn, .w = a.qkv_a.data(), .y = qkv_a.data(), .m = N, .n = aw,
               .k = c.hidden_size, .w_bf16 = a.qkv_a.bf16},
              pfor_);
  // q: [N, H, qk]
  std::vector<float> q(N * H * qk);
  if (c.q_lora_rank > 0) {
    std::vector<float> qn(N * qa_w);  // [N, q_lora_rank]
    cpu::RmsNorm({.x = qkv_a.data(), .w = a.q_a_norm.data(), .y = qn.data(), .rows = N,
                  .dim = qa_w, .eps = static_cast<float>(c.rms_norm_eps), .ldx = aw});
    cpu::Linear({.x = qn.data(), .w = a.q_b.data(), .y = q.data(), .m = N, .n = H * qk,
                 .k = qa_w, .w_bf16 = a.q_b.bf16},
                pfor_);
  } else {
    for (int64_t t = 0; t < N; ++t)
      std::memcpy(q.data() + t * H * qk, qkv_a.data() + t * aw, H * qk * sizeof(float));
  }
  float* kv = qkv_a.data() + qa_w;  // rows of [latent | k_pe], stride aw
  cpu::RmsNorm({.x = kv, .w = a.kv_a_norm.data(), .y = kv, .rows = N, .dim = kvl,
                .eps = static_cast<float>(c.rms_norm_eps), .ldx = aw, .ldy = aw});
  cpu::ApplyRope({.x = kv + kvl, .positions = plan.positions.data(), .inv_freq = inv_freq_.data(),
                  .rows = N, .heads = 1, .rope_dim = rope, .head_stride = 0, .row_stride = aw,
                  .attn_factor = rope_attn_factor_});
  cpu::ApplyRope({.x = q.data() + nope, .positions = plan.positions.data(),
                  .inv_freq = inv_freq_.data(), .rows = N, .heads = H, .rope_dim = rope,
                  .head_stride = qk, .row_stride = H * qk, .attn_factor = rope_attn_factor_});

  // Append the new latent rows to each sequence's blocks.
  float* cache_layer = cache.layer(layer);
  const bool round = weights_->precision == Precision::kBF16;
  for (size_t s = 0; s < seqs.size(); ++s) {
    const SequenceInput& in = seqs[s];
    for (size_t i = 0; i < in.tokens.size(); ++i) {
      const int64_t pos = in.start_pos + static_cast<int64_t>(i);
      float* dst = cache_layer +
                   (static_cast<int64_t>(in.block_table[pos / kKvBlockSize]) * kKvBlockSize +
                    pos % kKvBlockSize) * width;
      const float* src = kv + (plan.token_offset[s] + static_cast<int64_t>(i)) * aw;
      for (int64_t j = 0; j < width; ++j) dst[j] = round ? RoundToBf16(src[j]) : src[j];
    }
  }
  const cpu::PagedLatentView view{.data = cache_layer, .block_size = kKvBlockSize, .width = width};

  std::vector<float> attn(N * H * vd);  // [N, H, v]
  // Decode tokens, absorbed form.
  const int64_t Dn = static_cast<int64_t>(plan.decode_seqs.size());
  if (Dn > 0) {
    std::vector<float> q_nope(Dn * H * nope), q_pe(Dn * H * rope), q_lat(Dn * H * kvl);
    for (int64_t d = 0; d < Dn; ++d) {
      const float* src = q.data() + plan.token_offset[plan.decode_seqs[d]] * H * qk;
      for (int64_t h = 0; h < H; ++h) {
        std::memcpy(q_nope.data() + (d * H + h) * nope, src + h * qk, nope * sizeof(float));
        std::memcpy(q_pe.data() + (d * H + h) * rope, src + h * qk + nope, rope * sizeof(float));
      }
    }
    // q_lat[:, h] = q_nope[:, h] · W_UK_h   ([Dn, nope] x [nope, kv_lora])
    for (int64_t h = 0; h < H; ++h) {
      cpu::MatMulF32(q_nope.data() + h * nope, H * nope, a.kv_b.data() + h * kvb_row * kvl, kvl,
                     q_lat.data() + h * kvl, H * kvl, Dn, kvl, nope);
    }
    std::vector<float> o_lat(Dn * H * kvl);
    cpu::MlaDecode({.q_latent = q_lat.data(), .q_pe = q_pe.data(), .cache = view,
                    .block_tables = plan.decode_tables.data(), .max_blocks = plan.max_blocks,
                    .seq_lens = plan.decode_lens.data(), .out_latent = o_lat.data(), .batch = Dn,
                    .heads = H, .kv_lora = kvl, .rope = rope, .softmax_scale = softmax_scale_},
                   pfor_);
    // out[:, h] = o_lat[:, h] · W_UV_h^T   ([Dn, kv_lora] x [kv_lora, v])
    std::vector<float> o_dec(Dn * H * vd);
    for (int64_t h = 0; h < H; ++h) {
      cpu::Linear({.x = o_lat.data() + h * kvl, .w = a.kv_b.data() + (h * kvb_row + nope) * kvl,
                   .y = o_dec.data() + h * vd, .m = Dn, .n = vd, .k = kvl, .ldx = H * kvl,
                   .ldy = H * vd},
                  pfor_);
    }
    for (int64_t d = 0; d < Dn; ++d)
      std::memcpy(attn.data() + plan.token_offset[plan.decode_seqs[d]] * H * vd,
                  o_dec.data() + d * H * vd, H * vd * sizeof(float));
  }
  // Prefill chunks, expanded form: keys/values of the whole prefix expanded through kv_b.
  for (int32_t s : plan.prefill_seqs) {
    const SequenceInput& in = seqs[s];
    const int64_t n = static_cast<int64_t>(in.tokens.size()), T = in.start_pos + n;
    std::vector<float> rows(T * width), kvx(T * H * kvb_row);
    cpu::GatherPagedRows(view, in.block_table.data(), T, rows.data());
    cpu::Linear({.x = rows.data(), .w = a.kv_b.data(), .y = kvx.data(), .m = T, .n = H * kvb_row,
                 .k = kvl, .ldx = width},
                pfor_);
    const int64_t off = plan.token_offset[s];
    cpu::MlaPrefill({.q = q.data() + off * H * qk, .kv = kvx.data(), .k_pe = rows.data() + kvl,
                     .ld_kpe = width, .out = attn.data() + off * H * vd, .n_new = n,
                     .n_total = T, .heads = H, .nope = nope, .rope = rope, .v = vd,
                     .softmax_scale = softmax_scale_},
                    pfor_);
  }
  cpu::Linear({.x = attn.data(), .w = a.o.data(), .y = out, .m = N, .n = c.hidden_size,
               .k = H * vd, .w_bf16 = a.o.bf16},
              pfor_);
}

}  // namespace dsinfer
