// The layer ops of the CUDA backend: embedding, RMSNorm, cuBLAS GEMMs, MLA attention in the
// absorbed form over the paged latent cache (one kernel for decode and prefill; DeepSeek Sparse
// Attention's selected rows in cuda_sparse.cc), SwiGLU MLP,
// the MoE router and the routed experts through the grouped GEMM. Precision follows the CPU
// bf16 backend: bf16 weights and GEMM inputs, f32 accumulation, f32 residual stream, norms and
// router; the latent cache is bf16.
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "kernels/cuda/elementwise.h"
#include "kernels/cuda/fp8_gemm.h"
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/mla_attention.h"
#include "kernels/cuda/moe.h"
#include "kernels/cuda/rmsnorm.h"
#include "kernels/cuda/rope.h"
#include "src/backend_cuda/cuda_backend.h"
#include "src/core/status_macros.h"

namespace dsinfer::cuda_backend {

using bf16 = __nv_bfloat16;

namespace {

const CudaWeight& W(const BackendWeight& w) { return static_cast<const CudaWeight&>(w); }

}  // namespace

// x [m, k] -> E4M3 codes [m, kp] (zero columns past k) and block scales in the FP8 workspaces.
absl::Status CudaOps::QuantizeActivations(const void* x, bool x_f32, int64_t ldx, int64_t m,
                                          int64_t k, int64_t kp) {
  if (m * kp > static_cast<int64_t>(ws_.aq.bytes()))
    return absl::InternalError("fp8: activations larger than their workspace");
  if (kp != k) DSINFER_CUDA_RETURN_IF_ERROR(cudaMemsetAsync(ws_.aq.get(), 0, m * kp, stream_));
  DSINFER_CUDA_RETURN_IF_ERROR(cuda::ActQuantFp8({.x = x,
                                                  .x_f32 = x_f32,
                                                  .q = ws_.aq.as<uint8_t>(),
                                                  .scale = ws_.aq_scale.as<float>(),
                                                  .m = m,
                                                  .k = k,
                                                  .ldx = ldx,
                                                  .ldq = kp,
                                                  .ld_scale = (k + 127) / 128},
                                                 stream_));
  return absl::OkStatus();
}

absl::Status CudaOps::GemmFp8(Tensor x, const CudaWeight& w, float* y, int64_t ldy,
                              bool accumulate) {
  const int64_t m = x.rows, k = w.fp8_k, kb = (x.cols + 127) / 128;
  RETURN_IF_ERROR(QuantizeActivations(x.data, x.dtype == ElemType::kF32, x.ld, m, x.cols, k));
  for (const Fp8Part& part : w.fp8) {
    // Split k over more CTAs when the tiles alone leave SMs idle (decode), within the workspace.
    int64_t splits = cuda::Fp8GemmSplits(m, part.rows, k, num_sms_);
    const int64_t room = static_cast<int64_t>(ws_.fp8_split.bytes()) / 4 / std::max<int64_t>(1, m * part.rows);
    splits = std::max<int64_t>(1, std::min(splits, room));
    DSINFER_CUDA_RETURN_IF_ERROR(cuda::Fp8Gemm({.a = ws_.aq.as<uint8_t>(),
                                                .a_scale = ws_.aq_scale.as<float>(),
                                                .w = part.codes.as<uint8_t>(),
                                                .w_scale = part.scales.as<float>(),
                                                .y = y + part.row0,
                                                .m = m,
                                                .n = part.rows,
                                                .k = k,
                                                .lda = k,
                                                .ldw = k,
                                                .ld_a_scale = kb,
                                                .ldy = ldy,
                                                .accumulate = accumulate,
                                                .k_splits = splits,
                                                .workspace = ws_.fp8_split.as<float>()},
                                               stream_));
  }
  return absl::OkStatus();
}

absl::Status CudaOps::Gemm(Tensor x, const CudaWeight& w, float* y, int64_t ldy, bool accumulate) {
  if (x.rows == 0) return absl::OkStatus();
  if (!w.fp8.empty()) return GemmFp8(x, w, y, ldy, accumulate);
  if (x.cols != w.cols) return absl::InternalError(absl::StrCat("gemm: x has ", x.cols,
                                                                " columns, the weight ", w.cols));
  const void* xp = x.data;
  int64_t ldx = x.ld;
  cuda::GemmType xt = x.dtype == ElemType::kF32 ? cuda::GemmType::kF32 : cuda::GemmType::kBF16;
  if (!w.f32 && x.dtype == ElemType::kF32) {
    // A bf16 weight takes bf16 activations (the CPU bf16 backend rounds them the same way).
    if (x.rows * x.cols * 2 > static_cast<int64_t>(ws_.x_bf16.bytes()))
      return absl::InternalError("gemm: f32 input larger than its bf16 workspace");
    for (int64_t r = 0; r < x.rows; ++r)
      DSINFER_CUDA_RETURN_IF_ERROR(cuda::CastF32ToBf16(x.as<float>() + r * x.ld,
                                                       ws_.x_bf16.as<bf16>() + r * x.cols, x.cols,
                                                       stream_));
    xp = ws_.x_bf16.get();
    ldx = x.cols;
    xt = cuda::GemmType::kBF16;
  }
  if (w.f32 && x.dtype == ElemType::kBF16) {
    // An f32 weight (the indexer's weights_proj) takes its bf16 input widened, exactly.
    if (x.rows * x.cols * 4 > static_cast<int64_t>(ws_.x_f32.bytes()))
      return absl::InternalError("gemm: bf16 input larger than its f32 workspace");
    for (int64_t r = 0; r < x.rows; ++r)
      DSINFER_CUDA_RETURN_IF_ERROR(cuda::CastBf16ToF32(x.as<bf16>() + r * x.ld,
                                                       ws_.x_f32.as<float>() + r * x.cols,
                                                       x.cols, stream_));
    xp = ws_.x_f32.get();
    ldx = x.cols;
    xt = cuda::GemmType::kF32;
  }
  if (w.f32 != (xt == cuda::GemmType::kF32))
    return absl::InternalError("gemm: an f32 weight takes f32 activations");
  DSINFER_BLAS_RETURN_IF_ERROR(cuda::Gemm(blas_, {.x = xp,
                                                  .w = w.data.get(),
                                                  .y = y,
                                                  .m = x.rows,
                                                  .n = w.rows,
                                                  .k = w.cols,
                                                  .ldx = ldx,
                                                  .ldw = w.cols,
                                                  .ldy = ldy,
                                                  .x_type = xt,
                                                  .w_type = xt,
                                                  .accumulate = accumulate}));
  return absl::OkStatus();
}

namespace {

// x[r] = table[tokens[r] - vocab_begin] (zero where this rank's vocabulary slice lacks it).
absl::Status Gather(const CudaWeight& e, int64_t vocab_begin, const int32_t* tokens, int64_t rows,
                    Tensor x, cudaStream_t stream) {
  DSINFER_CUDA_RETURN_IF_ERROR(cuda::EmbeddingGather({.tokens = tokens,
                                                      .table = e.data.as<bf16>(),
                                                      .out = x.as<float>(),
                                                      .rows = rows,
                                                      .dim = x.cols,
                                                      .vocab_begin = vocab_begin,
                                                      .table_rows = e.rows,
                                                      .ld_out = x.ld},
                                                     stream));
  return absl::OkStatus();
}

}  // namespace

absl::Status CudaOps::Embed(const BackendWeight& table, int64_t vocab_begin, Tensor x) {
  return Gather(W(table), vocab_begin, step_.tokens, step_.num_tokens, x, stream_);
}

absl::Status CudaOps::EmbedIds(const BackendWeight& table, int64_t vocab_begin,
                               absl::Span<const int32_t> ids, Tensor x) {
  if (static_cast<int64_t>(ids.size()) < x.rows)
    return absl::InternalError(absl::StrCat("embed: ", ids.size(), " ids for ", x.rows, " rows"));
  ASSIGN_OR_RETURN(const int32_t* dev_ids, UploadIndex(ids.first(x.rows)));
  return Gather(W(table), vocab_begin, dev_ids, x.rows, x, stream_);
}

absl::Status CudaOps::RmsNorm(Tensor x, const BackendWeight& w, float eps, Tensor y, Tensor y2) {
  if (x.dtype != ElemType::kF32) return absl::InternalError("rmsnorm: f32 input expected");
  cuda::RmsNormParams p{.x = x.as<float>(), .w = W(w).data.as<float>(), .rows = x.rows,
                        .dim = x.cols, .ldx = x.ld, .eps = eps};
  for (const Tensor* t : {&y, &y2}) {
    if (t->data == nullptr) continue;
    if (t->dtype == ElemType::kF32) {
      p.y_f32 = t->as<float>();
      p.ldy = t->ld;
    } else {
      p.y_bf16 = t->as<bf16>();
      p.ldy_bf16 = t->ld;
    }
  }
  DSINFER_CUDA_RETURN_IF_ERROR(cuda::RmsNorm(p, stream_));
  return absl::OkStatus();
}

absl::Status CudaOps::Linear(Tensor x, const BackendWeight& w, Tensor y, bool accumulate) {
  if (y.dtype != ElemType::kF32 || y.cols != w.rows || y.rows != x.rows)
    return absl::InternalError("linear: output shape");
  return Gemm(x, W(w), y.as<float>(), y.ld, accumulate);
}

absl::Status CudaOps::MlaAttention(int64_t layer, const MlaParams& p, const MlaInputs& in,
                                   Tensor out) {
  const int64_t N = step_.num_tokens, H = p.heads, nope = p.nope, rope = p.rope, vd = p.v;
  const int64_t kvl = p.kv_lora, width = kvl + rope;
  const CudaWeight& kv_b = W(*in.kv_b);
  if (out.dtype != ElemType::kBF16 || out.ld != H * vd)
    return absl::InternalError("mla: bf16 output rows [N, heads * v] expected");
  bf16* cache = layer_cache(layer);
  // Cache rows [kv_a_norm(latent) | rope(k_pe)] of the new tokens, bf16.
  DSINFER_CUDA_RETURN_IF_ERROR(cuda::MlaKvAppend({.kv = in.kv.as<float>(),
                                                  .ld_kv = in.kv.ld,
                                                  .norm_w = W(*in.kv_a_norm).data.as<float>(),
                                                  .positions = step_.positions,
                                                  .slots = step_.slots,
                                                  .inv_freq = inv_freq_.as<float>(),
                                                  .cache = cache,
                                                  .tokens = N,
                                                  .kv_lora = kvl,
                                                  .rope = rope,
                                                  .eps = p.eps,
                                                  .attn_factor = p.rope_attn_factor},
                                                 stream_));
  // The step plan's attention over the paged cache; each precision path sets its q and out.
  cuda::MlaAttentionParams attn{.cache = cache,
                                .block_tables = step_.tables,
                                .seqs = step_.seqs,
                                .work = step_.work,
                                .num_work = step_.work_grid,
                                .combine = step_.combine,
                                .num_combine = step_.combine_grid,
                                .num_work_dev = step_.counts,
                                .num_combine_dev = step_.counts + 1,
                                .partial_out = ws_.partial_out.as<float>(),
                                .partial_lse = ws_.partial_lse.as<float>(),
                                .kernel = step_.kernel,
                                .tile_rows = step_.tile_rows,
                                .heads = H,
                                .kv_lora = kvl,
                                .rope = rope,
                                .block_size = 64,
                                .softmax_scale = p.softmax_scale};
  const float* q = in.q.as<float>();
  const int64_t ldq = in.q.ld;
  if (tc_attention_) {
    // q_attn[:, h] = [q_nope_h · W_UK_h | rope(q_pe_h)]: [N, H, kvl + rope] bf16
    DSINFER_CUDA_RETURN_IF_ERROR(cuda::MlaQPrep({.q = q,
                                                 .ldq = ldq,
                                                 .positions = step_.positions,
                                                 .inv_freq = inv_freq_.as<float>(),
                                                 .q_nope = ws_.q_nope.as<bf16>(),
                                                 .q_attn = ws_.q_attn.as<bf16>(),
                                                 .tokens = N,
                                                 .heads = H,
                                                 .nope = nope,
                                                 .rope = rope,
                                                 .kv_lora = kvl,
                                                 .attn_factor = p.rope_attn_factor},
                                                stream_));
    DSINFER_BLAS_RETURN_IF_ERROR(cuda::BatchedGemm(blas_, {.x = ws_.q_nope.get(),
                                                           .w = kv_b.data.get(),
                                                           .y = ws_.q_attn.get(),
                                                           .m = N,
                                                           .n = kvl,
                                                           .k = nope,
                                                           .batch = H,
                                                           .ldx = H * nope,
                                                           .ldw = kvl,
                                                           .ldy = H * width,
                                                           .stride_x = nope,
                                                           .stride_w = (nope + vd) * kvl,
                                                           .stride_y = width,
                                                           .w_transposed = false}));
    // o_lat = softmax(q_attn · cache^T) · cache[:, :kvl]: [N, H, kvl] bf16
    attn.q = ws_.q_attn.as<bf16>();
    attn.out = ws_.o_lat.as<bf16>();
    if (in.topk.data != nullptr) {
      RETURN_IF_ERROR(SparseAttend(layer, p, in.topk, attn.q, nullptr, attn.out, nullptr));
    } else {
      DSINFER_CUDA_RETURN_IF_ERROR(cuda::MlaAttention(attn, stream_));
    }
    // out[:, h] = o_lat[:, h] · W_UV_h^T: [N, H * v] bf16
    DSINFER_BLAS_RETURN_IF_ERROR(cuda::BatchedGemm(blas_, {.x = ws_.o_lat.get(),
                                                           .w = kv_b.data.as<bf16>() + nope * kvl,
                                                           .y = out.data,
                                                           .m = N,
                                                           .n = vd,
                                                           .k = kvl,
                                                           .batch = H,
                                                           .ldx = H * kvl,
                                                           .ldw = kvl,
                                                           .ldy = H * vd,
                                                           .stride_x = kvl,
                                                           .stride_w = (nope + vd) * kvl,
                                                           .stride_y = vd,
                                                           .w_transposed = true}));
    return absl::OkStatus();
  }
  // The CPU bf16 backend's precision: the absorption, attention and W_UV in f32 over the bf16
  // cache; the output is rounded to bf16 only as the o_proj input.
  DSINFER_CUDA_RETURN_IF_ERROR(cuda::MlaQPrep({.q = q,
                                               .ldq = ldq,
                                               .positions = step_.positions,
                                               .inv_freq = inv_freq_.as<float>(),
                                               .q_attn_f32 = ws_.q_attn_f32.as<float>(),
                                               .tokens = N,
                                               .heads = H,
                                               .nope = nope,
                                               .rope = rope,
                                               .kv_lora = kvl,
                                               .attn_factor = p.rope_attn_factor},
                                              stream_));
  DSINFER_BLAS_RETURN_IF_ERROR(cuda::BatchedGemm(blas_, {.x = q,
                                                         .w = kv_b.data2.get(),
                                                         .y = ws_.q_attn_f32.get(),
                                                         .m = N,
                                                         .n = kvl,
                                                         .k = nope,
                                                         .batch = H,
                                                         .ldx = ldq,
                                                         .ldw = kvl,
                                                         .ldy = H * width,
                                                         .stride_x = nope + rope,
                                                         .stride_w = (nope + vd) * kvl,
                                                         .stride_y = width,
                                                         .w_transposed = false,
                                                         .xw_type = cuda::GemmType::kF32}));
  attn.q_f32 = ws_.q_attn_f32.as<float>();
  attn.out_f32 = ws_.o_lat_f32.as<float>();
  if (in.topk.data != nullptr) {
    RETURN_IF_ERROR(SparseAttend(layer, p, in.topk, nullptr, attn.q_f32, nullptr, attn.out_f32));
  } else {
    DSINFER_CUDA_RETURN_IF_ERROR(cuda::MlaAttention(attn, stream_));
  }
  DSINFER_BLAS_RETURN_IF_ERROR(cuda::BatchedGemm(blas_, {.x = ws_.o_lat_f32.get(),
                                                         .w = kv_b.data2.as<float>() + nope * kvl,
                                                         .y = ws_.attn_f32.get(),
                                                         .m = N,
                                                         .n = vd,
                                                         .k = kvl,
                                                         .batch = H,
                                                         .ldx = H * kvl,
                                                         .ldw = kvl,
                                                         .ldy = H * vd,
                                                         .stride_x = kvl,
                                                         .stride_w = (nope + vd) * kvl,
                                                         .stride_y = vd,
                                                         .w_transposed = true,
                                                         .xw_type = cuda::GemmType::kF32}));
  DSINFER_CUDA_RETURN_IF_ERROR(
      cuda::CastF32ToBf16(ws_.attn_f32.as<float>(), out.as<bf16>(), N * H * vd, stream_));
  return absl::OkStatus();
}

absl::Status CudaOps::MlpRows(const bf16* x, int64_t ldx, int64_t n, const CudaWeight& gate_up,
                              const CudaWeight& down, float* out, int64_t ldo, bool accumulate) {
  const int64_t I = gate_up.rows / 2, D = gate_up.cols;
  const int64_t C = std::min(opts_.chunk_tokens, opts_.max_batched_tokens);
  for (int64_t c0 = 0; c0 < n; c0 += C) {
    const int64_t m = std::min(C, n - c0);
    // gate_up: [m, 2I] f32 -> act = silu(gate) * up: [m, I] bf16 -> out (+)= act · W_down^T
    RETURN_IF_ERROR(Gemm(Tensor{const_cast<bf16*>(x + c0 * ldx), ElemType::kBF16, m, D, ldx},
                         gate_up, ws_.gu.as<float>(), 2 * I, false));
    DSINFER_CUDA_RETURN_IF_ERROR(cuda::SiluMul(
        {.gate_up = ws_.gu.as<float>(), .out = ws_.act.as<bf16>(), .rows = m, .inter = I},
        stream_));
    RETURN_IF_ERROR(Gemm(Tensor{ws_.act.get(), ElemType::kBF16, m, I, I}, down, out + c0 * ldo,
                         ldo, accumulate));
  }
  return absl::OkStatus();
}

absl::Status CudaOps::Mlp(Tensor x, const BackendWeight& gate_up, const BackendWeight& down,
                          Tensor out, bool accumulate) {
  if (x.dtype != ElemType::kBF16) return absl::InternalError("mlp: bf16 input expected");
  return MlpRows(x.as<bf16>(), x.ld, x.rows, W(gate_up), W(down), out.as<float>(), out.ld,
                 accumulate);
}

absl::Status CudaOps::MoeRoute(int64_t layer, Tensor x, const BackendWeight& gate,
                               const BackendWeight* bias, const RouterParams& p, Tensor ids,
                               Tensor weights) {
  const int64_t N = x.rows, E = p.n_experts, K = p.top_k;
  if (N == 0) return absl::OkStatus();
  if (E > cuda::kMoeMaxExperts || K > cuda::kMoeMaxTopK || p.n_group > 32)
    return absl::UnimplementedError(absl::StrCat("CUDA router: n_routed_experts <= ",
                                                 cuda::kMoeMaxExperts, ", top_k <= ",
                                                 cuda::kMoeMaxTopK, ", n_group <= 32"));
  if (!ids.contiguous() || !weights.contiguous()) return absl::InternalError("router: layout");
  // Router in f32: logits [N, E] -> top-k ids / weights [N, K].
  RETURN_IF_ERROR(Gemm(x, W(gate), ws_.router.as<float>(), E, false));
  DSINFER_CUDA_RETURN_IF_ERROR(cuda::MoeRoute(
      {.logits = ws_.router.as<float>(),
       .bias = bias ? W(*bias).data.as<float>() : nullptr,
       .topk_ids = ids.as<int32_t>(),
       .topk_weights = weights.as<float>(),
       .tokens = N,
       .n_experts = E,
       .top_k = K,
       .n_group = p.n_group,
       .topk_group = p.topk_group,
       .scoring = p.sigmoid ? cuda::MoeScoring::kSigmoid : cuda::MoeScoring::kSoftmax,
       .group_score = p.group_top2_sum ? cuda::MoeGroupScore::kTop2Sum : cuda::MoeGroupScore::kMax,
       .normalize = p.normalize,
       .scale = p.scale,
       .scale_when_normalized = p.scale_when_normalized},
      stream_));
  if (!ws_.expert_load.empty())
    DSINFER_CUDA_RETURN_IF_ERROR(cuda::CountIds(ids.as<int32_t>(), N * K,
                                                ws_.expert_load.as<int64_t>() + layer * E, E,
                                                stream_));
  return absl::OkStatus();
}

// The routed experts of one chunk on FP8 weights: x rows quantised per 1x128 block and gathered
// by the permutation inside the grouped GEMM (SiLU epilogue), the activations quantised again
// for the down projection.
absl::Status CudaOps::MoeExpertsFp8(Tensor x, int64_t c0, int64_t n, int64_t K,
                                    const CudaWeight& ex, int64_t max_tiles) {
  // D: the padded hidden width of the codes (x has x.cols <= D columns); I: padded inter.
  const int64_t D0 = x.cols, D = ex.fp8_k, I = ex.rows, E = ex.local_experts;
  const int64_t kd = (D0 + 127) / 128, ki = (I + 127) / 128;
  RETURN_IF_ERROR(QuantizeActivations(x.as<bf16>() + c0 * x.ld, false, x.ld, n, D0, D));
  DSINFER_CUDA_RETURN_IF_ERROR(
      cuda::Fp8GroupedGemm({.a = ws_.aq.as<uint8_t>(),
                            .a_scale = ws_.aq_scale.as<float>(),
                            .a_row_index = ws_.row_token.as<int32_t>(),
                            .w = ex.data.as<uint8_t>(),
                            .w_scale = ex.scale_gu.as<float>(),
                            .expert_offsets = ws_.expert_offsets.as<int32_t>(),
                            .tile_offsets = ws_.tile_offsets.as<int32_t>(),
                            .n_experts = E,
                            .n = 2 * I,
                            .k = D,
                            .lda = D,
                            .ld_a_scale = kd,
                            .max_tiles = max_tiles,
                            .epilogue = cuda::GroupedEpilogue::kSiluMul,
                            .act = ws_.moe_act.as<bf16>(),
                            .ldc = I},
                           stream_));
  RETURN_IF_ERROR(QuantizeActivations(ws_.moe_act.get(), false, I, n * K, I, I));
  DSINFER_CUDA_RETURN_IF_ERROR(
      cuda::Fp8GroupedGemm({.a = ws_.aq.as<uint8_t>(),
                            .a_scale = ws_.aq_scale.as<float>(),
                            .a_row_index = nullptr,
                            .w = ex.data2.as<uint8_t>(),
                            .w_scale = ex.scale_dn.as<float>(),
                            .expert_offsets = ws_.expert_offsets.as<int32_t>(),
                            .tile_offsets = ws_.tile_offsets.as<int32_t>(),
                            .n_experts = E,
                            .n = D0,
                            .k = I,
                            .lda = I,
                            .ld_a_scale = ki,
                            .max_tiles = max_tiles,
                            .epilogue = cuda::GroupedEpilogue::kStoreF32,
                            .c = ws_.moe_y.as<float>(),
                            .ldc = D0},
                           stream_));
  return absl::OkStatus();
}

absl::Status CudaOps::Moe(Tensor x, Tensor ids, Tensor weights, const BackendWeight& experts,
                          const BackendWeight* shared_gate_up, const BackendWeight* shared_down,
                          Tensor out, bool accumulate) {
  const CudaWeight& ex = W(experts);
  const int64_t N = x.rows, D = x.cols, K = ids.cols, I = ex.rows, E = ex.local_experts;
  if (x.dtype != ElemType::kBF16) return absl::InternalError("moe: bf16 input expected");
  if (out.ld != D || !ids.contiguous() || !weights.contiguous())
    return absl::InternalError("moe: packed output, ids and weights expected");
  if (!accumulate) RETURN_IF_ERROR(Zero(out));
  if (N == 0) return absl::OkStatus();
  const int32_t* id = ids.as<int32_t>();
  const float* wt = weights.as<float>();
  if (E != ex.total_experts) {
    // An expert group: ids are global (or -1 for another group's expert). Local ids; a -1 becomes
    // this group's first expert at weight 0, which adds exactly nothing.
    std::vector<int32_t> h_ids(N * K);
    std::vector<float> h_w(N * K);
    RETURN_IF_ERROR(CopyToHost(ids, h_ids.data()));
    RETURN_IF_ERROR(CopyToHost(weights, h_w.data()));
    RETURN_IF_ERROR(Sync());
    for (int64_t i = 0; i < N * K; ++i) {
      if (h_ids[i] < 0) {
        h_ids[i] = 0;
        h_w[i] = 0.f;
        continue;
      }
      h_ids[i] -= static_cast<int32_t>(ex.first_expert);
      if (h_ids[i] < 0 || h_ids[i] >= E)
        return absl::InternalError("moe: row for an expert this rank does not hold");
    }
    DSINFER_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(ws_.moe_ids.get(), h_ids.data(), N * K * 4,
                                                 cudaMemcpyHostToDevice, stream_));
    DSINFER_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(ws_.moe_w.get(), h_w.data(), N * K * 4,
                                                 cudaMemcpyHostToDevice, stream_));
    id = ws_.moe_ids.as<int32_t>();
    wt = ws_.moe_w.as<float>();
  }
  const int64_t C = std::min(opts_.chunk_tokens, opts_.max_batched_tokens);
  for (int64_t c0 = 0; c0 < N; c0 += C) {
    const int64_t n = std::min(C, N - c0);
    const int32_t* cids = id + c0 * K;
    DSINFER_CUDA_RETURN_IF_ERROR(
        cuda::MoePermute({.topk_ids = cids,
                          .tokens = n,
                          .top_k = K,
                          .n_experts = E,
                          .expert_offsets = ws_.expert_offsets.as<int32_t>(),
                          .tile_offsets = ws_.tile_offsets.as<int32_t>(),
                          .slot_of = ws_.slot_of.as<int32_t>(),
                          .row_token = ws_.row_token.as<int32_t>(),
                          .expert_load = nullptr},
                         stream_));
    const int64_t max_tiles = cuda::GroupedGemmMaxTiles(n * K, E);
    if (ex.fp8_experts) {
      RETURN_IF_ERROR(MoeExpertsFp8(x, c0, n, K, ex, max_tiles));
    } else {
    // act = silu(x W_gate^T) * (x W_up^T) per routed row: [n*K, I] bf16
    DSINFER_CUDA_RETURN_IF_ERROR(
        cuda::GroupedGemm({.a = x.as<bf16>() + c0 * x.ld,
                           .a_row_index = ws_.row_token.as<int32_t>(),
                           .w = ex.data.as<bf16>(),
                           .expert_offsets = ws_.expert_offsets.as<int32_t>(),
                           .tile_offsets = ws_.tile_offsets.as<int32_t>(),
                           .n_experts = E,
                           .n = 2 * I,
                           .k = D,
                           .lda = x.ld,
                           .max_tiles = max_tiles,
                           .epilogue = cuda::GroupedEpilogue::kSiluMul,
                           .c = nullptr,
                           .act = ws_.moe_act.as<bf16>(),
                           .ldc = I},
                          stream_));
    // y = act · W_down^T: [n*K, D] f32
    DSINFER_CUDA_RETURN_IF_ERROR(
        cuda::GroupedGemm({.a = ws_.moe_act.as<bf16>(),
                           .a_row_index = nullptr,
                           .w = ex.data2.as<bf16>(),
                           .expert_offsets = ws_.expert_offsets.as<int32_t>(),
                           .tile_offsets = ws_.tile_offsets.as<int32_t>(),
                           .n_experts = E,
                           .n = D,
                           .k = I,
                           .lda = I,
                           .max_tiles = max_tiles,
                           .epilogue = cuda::GroupedEpilogue::kStoreF32,
                           .c = ws_.moe_y.as<float>(),
                           .act = nullptr,
                           .ldc = D},
                          stream_));
    }
    const bool shared = shared_gate_up != nullptr;
    if (shared) {
      RETURN_IF_ERROR(MlpRows(x.as<bf16>() + c0 * x.ld, x.ld, n, W(*shared_gate_up),
                              W(*shared_down), ws_.shared_out.as<float>(), D, false));
    }
    // out += sum_k w_k y_k (ascending expert) + shared
    DSINFER_CUDA_RETURN_IF_ERROR(
        cuda::MoeUnpermute({.y = ws_.moe_y.as<float>(),
                            .slot_of = ws_.slot_of.as<int32_t>(),
                            .topk_ids = cids,
                            .topk_weights = wt + c0 * K,
                            .shared = shared ? ws_.shared_out.as<float>() : nullptr,
                            .x = out.as<float>() + c0 * out.ld,
                            .tokens = n,
                            .top_k = K,
                            .dim = D},
                           stream_));
  }
  return absl::OkStatus();
}

}  // namespace dsinfer::cuda_backend
