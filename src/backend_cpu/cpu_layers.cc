// The layer ops of the CPU backend over kernels/cpu: embedding, RMSNorm, GEMMs (f32, bf16, FP8
// block-scaled), MLA attention over the paged latent cache (absorbed form for decode tokens,
// expanded form for prefill chunks), SwiGLU MLP, the MoE router and experts.
#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "kernels/cpu/activation.h"
#include "kernels/cpu/linear.h"
#include "kernels/cpu/fp8_gemm.h"
#include "kernels/cpu/linear_fp4.h"
#include "kernels/cpu/linear_fp8.h"
#include "kernels/cpu/mla_attention.h"
#include "kernels/cpu/moe_router.h"
#include "kernels/cpu/rmsnorm.h"
#include "kernels/cpu/rope.h"
#include "kernels/cpu/v4_moe.h"
#include "src/backend_cpu/cpu_backend.h"
#include "src/core/numeric.h"
#include "src/core/status_macros.h"

namespace dsinfer::cpu_backend {
namespace {

const CpuWeight& W(const BackendWeight& w) { return static_cast<const CpuWeight&>(w); }

absl::Status NeedF32(Tensor t, const char* op) {
  if (t.dtype == ElemType::kF32) return absl::OkStatus();
  return absl::InternalError(absl::StrCat(op, ": the CPU backend takes f32 activations"));
}

}  // namespace

void CpuOps::MatMul(const Matrix& w, const float* x, int64_t ldx, int64_t m, float* y,
                    int64_t ldy, bool accumulate) {
  if (!w.fp4.empty()) {
    // FP4 kept (DeepSeek-V4 experts): decoded a tile of rows at a time, exactly; x rounded to
    // bf16 in bf16 runs. The weights are exact in bf16, so this equals the dequantise-at-load
    // model bit for bit in bf16 runs. (fp8_activations does not apply: the FP4 GEMM takes
    // bf16 / f32 activations.)
    for (const Fp4Segment& s : w.fp4) {
      cpu::LinearFp4({.x = x, .w = s.codes.data(), .scale = s.scales.data(), .y = y + s.row0,
                      .m = m, .n = s.rows, .k = w.cols, .ldx = ldx, .ldy = ldy,
                      .round_bf16 = opts_.precision == Precision::kBF16,
                      .accumulate = accumulate},
                     pfor_);
    }
    return;
  }
  if (w.fp8.empty()) {
    cpu::Linear({.x = x, .w = w.data(), .y = y, .m = m, .n = w.rows, .k = w.cols, .ldx = ldx,
                 .ldy = ldy, .w_bf16 = w.bf16, .accumulate = accumulate},
                pfor_);
    return;
  }
  if (opts_.fp8_activations) {
    // Activations quantised per row in 1x128 blocks (bf16-rounded first in bf16 runs, as the
    // GPU quantises its bf16 activations), then the block-scaled FP8 product.
    const int64_t k = w.cols, kb = (k + cpu::kFp8ActBlock - 1) / cpu::kFp8ActBlock;
    std::vector<float> xr;
    const float* xq = x;
    int64_t ldq = ldx;
    if (opts_.precision == Precision::kBF16) {
      xr.resize(m * k);
      for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < k; ++j) xr[i * k + j] = RoundToBf16(x[i * ldx + j]);
      xq = xr.data();
      ldq = k;
    }
    std::vector<uint8_t> codes(m * k);
    std::vector<float> scales(m * kb);
    cpu::ActQuantFp8({.x = xq, .q = codes.data(), .scale = scales.data(), .m = m, .k = k,
                      .ldx = ldq});
    for (const Fp8Segment& s : w.fp8) {
      cpu::Fp8BlockGemmRef({.a = codes.data(), .a_scale = scales.data(), .w = s.codes.data(),
                            .w_scale_inv = s.scale_inv.data(), .y = y + s.row0, .m = m,
                            .n = s.rows, .k = k, .ldy = ldy, .block_n = s.block_n,
                            .block_k = s.block_k, .accumulate = accumulate},
                           pfor_);
    }
    return;
  }
  // FP8 kept: the GEMM dequantises one tile of weight rows at a time (bf16-rounded in bf16 runs,
  // as the dequantise-at-load path holds them), one checkpoint part (segment) at a time.
  for (const Fp8Segment& s : w.fp8) {
    cpu::LinearFp8({.x = x, .w = s.codes.data(), .scale_inv = s.scale_inv.data(),
                    .y = y + s.row0, .m = m, .n = s.rows, .k = w.cols, .ldx = ldx, .ldy = ldy,
                    .block_n = s.block_n, .block_k = s.block_k,
                    .round_bf16 = opts_.precision == Precision::kBF16,
                    .accumulate = accumulate},
                   pfor_);
  }
}

absl::Status CpuOps::Embed(const BackendWeight& table, int64_t vocab_begin, Tensor x) {
  return EmbedIds(table, vocab_begin, absl::MakeConstSpan(step_->tokens), x);
}

absl::Status CpuOps::EmbedIds(const BackendWeight& table, int64_t vocab_begin,
                              absl::Span<const int32_t> ids, Tensor x) {
  RETURN_IF_ERROR(NeedF32(x, "embed"));
  if (static_cast<int64_t>(ids.size()) < x.rows)
    return absl::InternalError(absl::StrCat("embed: ", ids.size(), " ids for ", x.rows, " rows"));
  const Matrix& e = W(table).m;
  const int64_t D = x.cols, v1 = vocab_begin + e.rows;
  for (int64_t i = 0; i < x.rows; ++i) {
    float* dst = x.as<float>() + i * x.ld;
    const int64_t t = ids[i];
    if (t < vocab_begin || t >= v1) {
      std::memset(dst, 0, D * sizeof(float));
      continue;
    }
    const int64_t r = t - vocab_begin;
    if (e.bf16) {
      for (int64_t j = 0; j < D; ++j) dst[j] = Bf16ToF32(e.b16[r * D + j]);
    } else {
      std::memcpy(dst, e.f32.data() + r * D, D * sizeof(float));
    }
  }
  return absl::OkStatus();
}

absl::Status CpuOps::RmsNorm(Tensor x, const BackendWeight& w, float eps, Tensor y, Tensor y2) {
  RETURN_IF_ERROR(NeedF32(x, "rmsnorm"));
  RETURN_IF_ERROR(NeedF32(y, "rmsnorm"));
  cpu::RmsNorm({.x = x.as<float>(), .w = W(w).m.f32.data(), .y = y.as<float>(), .rows = x.rows,
                .dim = x.cols, .eps = eps, .ldx = x.ld, .ldy = y.ld});
  if (!y2.empty()) RETURN_IF_ERROR(CopyFromHost(y.data, y2));  // y is packed scratch
  return absl::OkStatus();
}

absl::Status CpuOps::Linear(Tensor x, const BackendWeight& w, Tensor y, bool accumulate) {
  RETURN_IF_ERROR(NeedF32(x, "linear"));
  const Matrix& m = W(w).m;
  if (x.cols != m.cols || y.cols != m.rows || x.rows != y.rows)
    return absl::InternalError(absl::StrCat("linear: [", x.rows, ", ", x.cols, "] x [", m.rows,
                                            ", ", m.cols, "]^T into [", y.rows, ", ", y.cols, "]"));
  if (!accumulate) {
    MatMul(m, x.as<float>(), x.ld, x.rows, y.as<float>(), y.ld, false);
    return absl::OkStatus();
  }
  // y += x·wᵀ as a separate sum (the residual add of a finished branch).
  std::vector<float> tmp(y.rows * y.cols);
  MatMul(m, x.as<float>(), x.ld, x.rows, tmp.data(), y.cols, false);
  return Add(y, Tensor{tmp.data(), ElemType::kF32, y.rows, y.cols, y.cols});
}

void CpuOps::MlpRows(const Matrix& gate_up, const Matrix& down, const float* x, int64_t ldx,
                     int64_t n, float* out, bool accumulate, std::optional<float> clip) {
  const int64_t I = gate_up.rows / 2, D = down.rows;
  std::vector<float> gu(n * 2 * I), act(n * I);
  MatMul(gate_up, x, ldx, n, gu.data(), 2 * I, false);
  if (clip.has_value()) {
    cpu::ClippedSiluMul(gu.data(), act.data(), n, I, *clip);
  } else {
    cpu::SiluMul(gu.data(), act.data(), n, I);
  }
  MatMul(down, act.data(), I, n, out, D, accumulate);
}

absl::Status CpuOps::RoutedRows(Tensor x, Tensor ids, Tensor weights, const CpuWeight& ex,
                                bool skip_foreign, std::optional<float> clip, float* sum) {
  const int64_t n = x.rows, K = ids.cols, D = ex.down.empty() ? 0 : ex.down[0].rows;
  const int64_t e0 = ex.first_expert, ne = static_cast<int64_t>(ex.gate_up.size());
  // Rows per expert, in row order, so each row's sum runs over its experts in ascending order
  // whatever else is in the batch.
  std::vector<std::vector<std::pair<int32_t, float>>> assigned(ne);
  for (int64_t t = 0; t < n; ++t)
    for (int64_t k = 0; k < K; ++k) {
      const int32_t id = ids.as<int32_t>()[t * ids.ld + k];
      if (id < 0) continue;
      if (id < e0 || id >= e0 + ne) {
        if (skip_foreign) continue;
        return absl::InternalError(absl::StrCat("moe: row for expert ", id,
                                                " which this rank does not hold"));
      }
      assigned[id - e0].push_back({static_cast<int32_t>(t), weights.as<float>()[t * weights.ld + k]});
    }
  std::vector<float> xs, ys;
  for (int64_t e = 0; e < ne; ++e) {
    const auto& rows = assigned[e];
    if (rows.empty()) continue;
    const int64_t cnt = static_cast<int64_t>(rows.size());
    xs.resize(cnt * x.cols);
    ys.resize(cnt * D);
    for (int64_t i = 0; i < cnt; ++i)
      std::memcpy(xs.data() + i * x.cols, x.as<float>() + rows[i].first * x.ld,
                  x.cols * sizeof(float));
    MlpRows(ex.gate_up[e], ex.down[e], xs.data(), x.cols, cnt, ys.data(), false, clip);
    for (int64_t i = 0; i < cnt; ++i) {
      float* dst = sum + rows[i].first * D;
      const float* src = ys.data() + i * D;
      const float wt = rows[i].second;
      for (int64_t j = 0; j < D; ++j) dst[j] += wt * src[j];
    }
  }
  return absl::OkStatus();
}

absl::Status CpuOps::Mlp(Tensor x, const BackendWeight& gate_up, const BackendWeight& down,
                         Tensor out, bool accumulate) {
  RETURN_IF_ERROR(NeedF32(x, "mlp"));
  if (x.rows == 0) return absl::OkStatus();
  if (out.ld != out.cols) return absl::InternalError("mlp: output rows must be packed");
  MlpRows(W(gate_up).m, W(down).m, x.as<float>(), x.ld, x.rows, out.as<float>(), accumulate);
  return absl::OkStatus();
}

absl::Status CpuOps::MoeRoute(int64_t layer, Tensor x, const BackendWeight& gate,
                              const BackendWeight* bias, const RouterParams& p, Tensor ids,
                              Tensor weights) {
  const int64_t n = x.rows, E = p.n_experts, K = p.top_k;
  if (n == 0) return absl::OkStatus();
  // Router in f32: [n, E] logits -> top-k ids and weights per token.
  std::vector<float> logits(n * E);
  MatMul(W(gate).m, x.as<float>(), x.ld, n, logits.data(), E, false);
  cpu::MoeRoute({.logits = logits.data(),
                 .bias = bias ? W(*bias).m.f32.data() : nullptr,
                 .topk_ids = ids.as<int32_t>(),
                 .topk_weights = weights.as<float>(),
                 .tokens = n,
                 .n_experts = E,
                 .top_k = K,
                 .n_group = p.n_group,
                 .topk_group = p.topk_group,
                 .scoring = p.sigmoid ? cpu::RouterScoring::kSigmoid : cpu::RouterScoring::kSoftmax,
                 .group_score = p.group_top2_sum ? cpu::RouterGroupScore::kTop2Sum
                                                 : cpu::RouterGroupScore::kMax,
                 .normalize = p.normalize,
                 .scale = p.scale,
                 .scale_when_normalized = p.scale_when_normalized});
  const int32_t* id = ids.as<int32_t>();
  for (int64_t i = 0; i < n * K; ++i) {
    if (!pending_load_.empty()) pending_load_[layer * load_experts_ + id[i]] += 1.f;
    else ++expert_load_.tokens[layer][id[i]];
  }
  return absl::OkStatus();
}

absl::Status CpuOps::Moe(Tensor x, Tensor ids, Tensor weights, const BackendWeight& experts,
                         const BackendWeight* shared_gate_up, const BackendWeight* shared_down,
                         Tensor out, bool accumulate) {
  RETURN_IF_ERROR(NeedF32(x, "moe"));
  const int64_t n = x.rows, D = out.cols;
  std::vector<float> sum_data(n * D, 0.f);
  const Tensor sum{sum_data.data(), ElemType::kF32, n, D, D};
  RETURN_IF_ERROR(RoutedRows(x, ids, weights, W(experts), /*skip_foreign=*/false, std::nullopt,
                             sum_data.data()));
  if (shared_gate_up != nullptr && n > 0)
    MlpRows(W(*shared_gate_up).m, W(*shared_down).m, x.as<float>(), x.ld, n, sum.as<float>(),
            /*accumulate=*/true);
  if (accumulate) return Add(out, sum);
  return CopyFromHost(sum.data, out);
}

absl::Status CpuOps::SelectLogitRows(Tensor x, int64_t first, Tensor out) {
  for (int64_t r = 0; r < out.rows; ++r)
    std::memcpy(out.as<float>() + r * out.ld, x.as<float>() + step_->logit_rows[first + r] * x.ld,
                x.cols * sizeof(float));
  return absl::OkStatus();
}

// Multi-head latent attention of one layer (DeepSeek-V2 paper, section 2.1): decode tokens in
// the absorbed form, prefill chunks in the expanded form, both over the paged latent cache.
absl::Status CpuOps::MlaAttention(int64_t layer, const MlaParams& p, const MlaInputs& in,
                                  Tensor out) {
  const StepInput& st = *step_;
  const int64_t N = st.num_tokens, H = p.heads, nope = p.nope, rope = p.rope, vd = p.v;
  const int64_t qk = nope + rope, kvl = p.kv_lora, width = kvl + rope;
  const int64_t kvb_row = nope + vd;  // rows of kv_b per head
  if (width != spec_.row_width) return absl::InternalError("mla: cache row width mismatch");
  const float* kv_b = W(*in.kv_b).m.f32.data();

  // q: [N, H, qk] packed (a copy when it is a column window of the projection).
  float* q = in.q.as<float>();
  std::vector<float> q_packed;
  if (in.q.ld != H * qk) {
    q_packed.resize(N * H * qk);
    RETURN_IF_ERROR(CopyToHost(in.q, q_packed.data()));
    q = q_packed.data();
  }
  float* kv = in.kv.as<float>();  // rows of [latent | k_pe], stride ld
  const int64_t ld = in.kv.ld;
  cpu::RmsNorm({.x = kv, .w = W(*in.kv_a_norm).m.f32.data(), .y = kv, .rows = N, .dim = kvl,
                .eps = p.eps, .ldx = ld, .ldy = ld});
  cpu::ApplyRope({.x = kv + kvl, .positions = st.positions.data(), .inv_freq = p.inv_freq.data(),
                  .rows = N, .heads = 1, .rope_dim = rope, .head_stride = 0, .row_stride = ld,
                  .attn_factor = p.rope_attn_factor});
  cpu::ApplyRope({.x = q + nope, .positions = st.positions.data(), .inv_freq = p.inv_freq.data(),
                  .rows = N, .heads = H, .rope_dim = rope, .head_stride = qk,
                  .row_stride = H * qk, .attn_factor = p.rope_attn_factor});

  // Append the new latent rows to each sequence's blocks.
  float* cache_layer = layer_cache(layer);
  const bool round = opts_.precision == Precision::kBF16;
  for (int64_t i = 0; i < N; ++i) {
    float* dst = cache_layer + static_cast<int64_t>(st.slots[i]) * width;
    const float* src = kv + i * ld;
    for (int64_t j = 0; j < width; ++j) dst[j] = round ? RoundToBf16(src[j]) : src[j];
  }
  const cpu::PagedLatentView view{
      .data = cache_layer, .block_size = spec_.block_size, .width = width};

  float* attn = out.as<float>();  // [N, H, v]
  if (out.ld != H * vd) return absl::InternalError("mla: output rows must be packed");
  if (!in.topk.empty()) return SparseMla(p, q, view, in.topk, kv_b, attn);
  // Decode queries (one token after a prefix, or a token and its draft), absorbed form.
  const int64_t Dn = static_cast<int64_t>(st.decode_rows.size());
  if (Dn > 0) {
    std::vector<float> q_nope(Dn * H * nope), q_pe(Dn * H * rope), q_lat(Dn * H * kvl);
    for (int64_t d = 0; d < Dn; ++d) {
      const float* src = q + st.decode_rows[d] * H * qk;
      for (int64_t h = 0; h < H; ++h) {
        std::memcpy(q_nope.data() + (d * H + h) * nope, src + h * qk, nope * sizeof(float));
        std::memcpy(q_pe.data() + (d * H + h) * rope, src + h * qk + nope, rope * sizeof(float));
      }
    }
    // q_lat[:, h] = q_nope[:, h] · W_UK_h   ([Dn, nope] x [nope, kv_lora])
    for (int64_t h = 0; h < H; ++h) {
      cpu::MatMulF32(q_nope.data() + h * nope, H * nope, kv_b + h * kvb_row * kvl, kvl,
                     q_lat.data() + h * kvl, H * kvl, Dn, kvl, nope);
    }
    std::vector<float> o_lat(Dn * H * kvl);
    cpu::MlaDecode({.q_latent = q_lat.data(), .q_pe = q_pe.data(), .cache = view,
                    .block_tables = st.decode_tables.data(), .max_blocks = st.max_blocks,
                    .seq_lens = st.decode_lens.data(), .out_latent = o_lat.data(), .batch = Dn,
                    .heads = H, .kv_lora = kvl, .rope = rope, .softmax_scale = p.softmax_scale},
                   pfor_);
    // out[:, h] = o_lat[:, h] · W_UV_h^T   ([Dn, kv_lora] x [kv_lora, v])
    std::vector<float> o_dec(Dn * H * vd);
    for (int64_t h = 0; h < H; ++h) {
      cpu::Linear({.x = o_lat.data() + h * kvl, .w = kv_b + (h * kvb_row + nope) * kvl,
                   .y = o_dec.data() + h * vd, .m = Dn, .n = vd, .k = kvl, .ldx = H * kvl,
                   .ldy = H * vd},
                  pfor_);
    }
    for (int64_t d = 0; d < Dn; ++d)
      std::memcpy(attn + st.decode_rows[d] * H * vd, o_dec.data() + d * H * vd,
                  H * vd * sizeof(float));
  }
  // Prefill chunks, expanded form: keys/values of the whole prefix expanded through kv_b.
  for (int32_t s : st.prefill_seqs) {
    const int64_t n = st.n_new[s], T = st.start_pos[s] + n;
    std::vector<float> rows(T * width), kvx(T * H * kvb_row);
    cpu::GatherPagedRows(view, st.table(s).data(), T, rows.data());
    cpu::Linear({.x = rows.data(), .w = kv_b, .y = kvx.data(), .m = T, .n = H * kvb_row,
                 .k = kvl, .ldx = width},
                pfor_);
    const int64_t off = st.token_offset[s];
    cpu::MlaPrefill({.q = q + off * H * qk, .kv = kvx.data(), .k_pe = rows.data() + kvl,
                     .ld_kpe = width, .out = attn + off * H * vd, .n_new = n, .n_total = T,
                     .heads = H, .nope = nope, .rope = rope, .v = vd,
                     .softmax_scale = p.softmax_scale},
                    pfor_);
  }
  return absl::OkStatus();
}

}  // namespace dsinfer::cpu_backend
