// DeepSeek Sparse Attention on the CPU backend (DeepSeek-V3.2-Exp): the lightning indexer's FP8
// index keys in their own paged cache and its top-k selection (kernels/cpu/dsa_indexer.h), and
// MLA over the selected rows only. Every token is computed on its own (row-independent), so a
// sequence's result does not depend on its batch or on how its prompt was chunked.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "kernels/cpu/dsa_indexer.h"
#include "kernels/cpu/linear.h"
#include "kernels/cpu/mla_attention.h"
#include "src/backend_cpu/cpu_backend.h"

namespace dsinfer::cpu_backend {
namespace {

std::vector<int32_t> SequenceOfTokens(const StepInput& st) {
  std::vector<int32_t> seq(st.num_tokens);
  for (int64_t s = 0; s < st.num_seqs; ++s)
    for (int64_t i = 0; i < st.n_new[s]; ++i) seq[st.token_offset[s] + i] = static_cast<int32_t>(s);
  return seq;
}

}  // namespace

absl::Status CpuOps::IndexerTopK(int64_t layer, const IndexerParams& p, const IndexerInputs& in,
                                 Tensor topk) {
  const StepInput& st = *step_;
  const int64_t N = st.num_tokens, H = p.heads, D = p.head_dim, K = p.topk;
  const int64_t row_bytes = cpu::IndexKeyRowBytes(D);
  if (D != cpu::kIndexQuantBlock || (D & (D - 1)) != 0)
    return absl::InternalError(absl::StrCat("indexer: head_dim ", D, " is not 128"));
  if (spec_.index_row_bytes != row_bytes)
    return absl::InternalError(absl::StrCat("indexer: the KV cache holds ", spec_.index_row_bytes,
                                            " index bytes per token, the layer needs ", row_bytes));
  if (topk.dtype != ElemType::kI32 || topk.cols != K || topk.rows != N || in.q.cols != H * D ||
      in.k.cols != D || in.w.cols != H)
    return absl::InternalError("indexer: tensor shapes do not match the indexer's");
  if (N == 0) return absl::OkStatus();
  const cpu::PagedIndexView view{.data = index_cache_.data() + layer * index_layer_stride_,
                                 .block_size = spec_.block_size,
                                 .dim = D};
  const float* norm_w = static_cast<const CpuWeight&>(*in.k_norm).m.f32.data();
  const float* norm_b = static_cast<const CpuWeight&>(*in.k_norm_bias).m.f32.data();
  const float rot_scale = static_cast<float>(std::pow(static_cast<double>(D), -0.5));
  const float head_scale = static_cast<float>(std::pow(static_cast<double>(H), -0.5));
  const float softmax_scale = rot_scale;  // head_dim ** -0.5
  // Keys first: every key of the step is cached before any token of it scores.
  pfor_(N, [&](int64_t i0, int64_t i1) {
    std::vector<float> k(D);
    for (int64_t i = i0; i < i1; ++i) {
      std::memcpy(k.data(), in.k.as<float>() + i * in.k.ld, D * sizeof(float));
      cpu::LayerNormRow(k.data(), norm_w, norm_b, D, p.eps);
      cpu::RopeHalfRow(k.data(), st.positions[i], p.inv_freq.data(), p.rope, p.rope_attn_factor);
      cpu::HadamardTransform(k.data(), D, rot_scale);
      uint8_t* row = index_cache_.data() + layer * index_layer_stride_ +
                     static_cast<int64_t>(st.slots[i]) * row_bytes;
      const float s = cpu::QuantizeIndexBlock(k.data(), D, p.ue8m0, row);
      std::memcpy(row + D, &s, sizeof(float));
    }
  });
  const std::vector<int32_t> seq = SequenceOfTokens(st);
  pfor_(N, [&](int64_t i0, int64_t i1) {
    std::vector<uint8_t> codes(H * D);
    std::vector<float> w(H), scores;
    for (int64_t i = i0; i < i1; ++i) {
      float* q = in.q.as<float>() + i * in.q.ld;
      const float* wi = in.w.as<float>() + i * in.w.ld;
      for (int64_t h = 0; h < H; ++h) {
        float* qh = q + h * D;
        cpu::RopeHalfRow(qh, st.positions[i], p.inv_freq.data(), p.rope, p.rope_attn_factor);
        cpu::HadamardTransform(qh, D, rot_scale);
        const float s = cpu::QuantizeIndexBlock(qh, D, p.ue8m0, codes.data() + h * D);
        w[h] = wi[h] * head_scale * s * softmax_scale;
      }
      const int64_t n = st.positions[i] + 1;
      scores.resize(n);
      cpu::IndexScores({.q_codes = codes.data(), .head_weights = w.data(), .keys = view,
                        .block_table = st.table(seq[i]).data(), .n_keys = n, .heads = H,
                        .scores = scores.data()});
      int32_t* out = topk.as<int32_t>() + i * topk.ld;
      const int64_t m = cpu::TopKPositions(scores.data(), n, K, out);
      std::fill(out + m, out + K, -1);
    }
  });
  return absl::OkStatus();
}

// Absorbed form for every token (as decode tokens are): the token's selected latent rows are
// gathered into a contiguous block of its own and cpu::MlaDecode attends over them.
absl::Status CpuOps::SparseMla(const MlaParams& p, const float* q,
                               const cpu::PagedLatentView& view, Tensor topk, const float* kv_b,
                               float* out) {
  const StepInput& st = *step_;
  const int64_t N = st.num_tokens, H = p.heads, nope = p.nope, rope = p.rope, vd = p.v;
  const int64_t qk = nope + rope, kvl = p.kv_lora, width = kvl + rope, kvb_row = nope + vd;
  const int64_t K = topk.cols;
  if (topk.dtype != ElemType::kI32 || topk.rows != N)
    return absl::InternalError("mla: top-k positions must be [tokens, index_topk] i32");
  const std::vector<int32_t> seq = SequenceOfTokens(st);
  // Tokens per pass: gathered rows of about 16M floats at most.
  const int64_t chunk = std::max<int64_t>(1, (int64_t{1} << 24) / std::max<int64_t>(K * width, 1));
  std::vector<float> q_nope, q_pe, q_lat, rows, o_lat;
  std::vector<int32_t> tables, lens;
  for (int64_t t0 = 0; t0 < N; t0 += chunk) {
    const int64_t n = std::min(chunk, N - t0);
    q_nope.resize(n * H * nope);
    q_pe.resize(n * H * rope);
    q_lat.resize(n * H * kvl);
    rows.resize(n * K * width);
    o_lat.resize(n * H * kvl);
    tables.resize(n);
    lens.resize(n);
    for (int64_t d = 0; d < n; ++d) {
      const float* src = q + (t0 + d) * H * qk;
      for (int64_t h = 0; h < H; ++h) {
        std::memcpy(q_nope.data() + (d * H + h) * nope, src + h * qk, nope * sizeof(float));
        std::memcpy(q_pe.data() + (d * H + h) * rope, src + h * qk + nope, rope * sizeof(float));
      }
      const int32_t* sel = topk.as<int32_t>() + (t0 + d) * topk.ld;
      const int32_t* table = st.table(seq[t0 + d]).data();
      int32_t cnt = 0;
      while (cnt < K && sel[cnt] >= 0) {
        if (sel[cnt] > st.positions[t0 + d])
          return absl::InternalError("mla: a selected key lies after its query");
        std::memcpy(rows.data() + (d * K + cnt) * width, view.Row(table, sel[cnt]),
                    width * sizeof(float));
        ++cnt;
      }
      tables[d] = static_cast<int32_t>(d);
      lens[d] = cnt;
    }
    for (int64_t h = 0; h < H; ++h) {
      cpu::MatMulF32(q_nope.data() + h * nope, H * nope, kv_b + h * kvb_row * kvl, kvl,
                     q_lat.data() + h * kvl, H * kvl, n, kvl, nope);
    }
    cpu::MlaDecode({.q_latent = q_lat.data(), .q_pe = q_pe.data(),
                    .cache = {.data = rows.data(), .block_size = K, .width = width},
                    .block_tables = tables.data(), .max_blocks = 1, .seq_lens = lens.data(),
                    .out_latent = o_lat.data(), .batch = n, .heads = H, .kv_lora = kvl,
                    .rope = rope, .softmax_scale = p.softmax_scale},
                   pfor_);
    for (int64_t h = 0; h < H; ++h) {
      cpu::Linear({.x = o_lat.data() + h * kvl, .w = kv_b + (h * kvb_row + nope) * kvl,
                   .y = out + t0 * H * vd + h * vd, .m = n, .n = vd, .k = kvl, .ldx = H * kvl,
                   .ldy = H * vd},
                  pfor_);
    }
  }
  return absl::OkStatus();
}

}  // namespace dsinfer::cpu_backend
