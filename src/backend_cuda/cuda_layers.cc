// One decoder layer on the GPU: MLA attention in the absorbed form over the paged latent cache,
// then the dense MLP or the MoE (routed experts through the grouped GEMM, shared experts dense).
// Precision follows the CPU bf16 backend: bf16 weights and GEMM inputs, f32 accumulation, f32
// residual stream, norms and router; the latent cache is bf16.
#include <algorithm>

#include "kernels/cuda/elementwise.h"
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/mla_attention.h"
#include "kernels/cuda/moe.h"
#include "kernels/cuda/rmsnorm.h"
#include "kernels/cuda/rope.h"
#include "src/backend_cuda/cuda_executor_impl.h"
#include "src/core/status_macros.h"

namespace dsinfer::cuda_backend {

using bf16 = __nv_bfloat16;

absl::Status CudaExecutor::Attention(int64_t layer) {
  const ModelConfig& c = config_;
  const DeviceAttention& a = w_->layers[layer].attn;
  const int64_t N = step_.num_tokens, D = c.hidden_size, H = c.num_attention_heads;
  const int64_t nope = c.qk_nope_head_dim, rope = c.qk_rope_head_dim, vd = c.v_head_dim;
  const int64_t qk = nope + rope, kvl = c.kv_lora_rank, aw = a.qa_width + width_;
  const float eps = static_cast<float>(c.rms_norm_eps);

  // xn = norm(x): [N, D] bf16;  qkv_a = xn · [q_a | kv_a]^T: [N, aw] f32
  DSINFER_CUDA_RETURN_IF_ERROR(cuda::RmsNorm({.x = ws_.x.as<float>(),
                                              .w = w_->layers[layer].input_norm.as<float>(),
                                              .y_bf16 = ws_.xn_bf16.as<bf16>(),
                                              .rows = N,
                                              .dim = D,
                                              .eps = eps},
                                             stream_));
  DSINFER_BLAS_RETURN_IF_ERROR(cuda::Gemm(
      blas_,
      {.x = ws_.xn_bf16.get(), .w = a.qkv_a.get(), .y = ws_.qkv_a.get(), .m = N, .n = aw, .k = D}));
  // q: [N, H, qk] f32 (row stride ldq)
  const float* q = ws_.qkv_a.as<float>();
  int64_t ldq = aw;
  if (c.q_lora_rank > 0) {
    DSINFER_CUDA_RETURN_IF_ERROR(cuda::RmsNorm({.x = ws_.qkv_a.as<float>(),
                                                .w = a.q_a_norm.as<float>(),
                                                .y_bf16 = ws_.qn.as<bf16>(),
                                                .rows = N,
                                                .dim = c.q_lora_rank,
                                                .ldx = aw,
                                                .eps = eps},
                                               stream_));
    DSINFER_BLAS_RETURN_IF_ERROR(cuda::Gemm(blas_, {.x = ws_.qn.get(),
                                                    .w = a.q_b.get(),
                                                    .y = ws_.q.get(),
                                                    .m = N,
                                                    .n = H * qk,
                                                    .k = c.q_lora_rank}));
    q = ws_.q.as<float>();
    ldq = H * qk;
  }
  // Cache rows [kv_a_norm(latent) | rope(k_pe)] of the new tokens, bf16.
  bf16* cache = layer_cache(layer);
  DSINFER_CUDA_RETURN_IF_ERROR(cuda::MlaKvAppend({.kv = ws_.qkv_a.as<float>() + a.qa_width,
                                                  .ld_kv = aw,
                                                  .norm_w = a.kv_a_norm.as<float>(),
                                                  .positions = step_.positions,
                                                  .slots = step_.slots,
                                                  .inv_freq = inv_freq_.as<float>(),
                                                  .cache = cache,
                                                  .tokens = N,
                                                  .kv_lora = kvl,
                                                  .rope = rope,
                                                  .eps = eps,
                                                  .attn_factor = rope_attn_factor_},
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
                                .softmax_scale = softmax_scale_};
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
                                                 .attn_factor = rope_attn_factor_},
                                                stream_));
    DSINFER_BLAS_RETURN_IF_ERROR(cuda::BatchedGemm(blas_, {.x = ws_.q_nope.get(),
                                                           .w = a.kv_b.get(),
                                                           .y = ws_.q_attn.get(),
                                                           .m = N,
                                                           .n = kvl,
                                                           .k = nope,
                                                           .batch = H,
                                                           .ldx = H * nope,
                                                           .ldw = kvl,
                                                           .ldy = H * width_,
                                                           .stride_x = nope,
                                                           .stride_w = (nope + vd) * kvl,
                                                           .stride_y = width_,
                                                           .w_transposed = false}));
    // o_lat = softmax(q_attn · cache^T) · cache[:, :kvl]: [N, H, kvl] bf16
    attn.q = ws_.q_attn.as<bf16>();
    attn.out = ws_.o_lat.as<bf16>();
    DSINFER_CUDA_RETURN_IF_ERROR(cuda::MlaAttention(attn, stream_));
    // attn[:, h] = o_lat[:, h] · W_UV_h^T: [N, H * v] bf16
    DSINFER_BLAS_RETURN_IF_ERROR(cuda::BatchedGemm(blas_, {.x = ws_.o_lat.get(),
                                                           .w = a.kv_b.as<bf16>() + nope * kvl,
                                                           .y = ws_.attn.get(),
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
  } else {
    // The CPU bf16 backend's precision: the absorption, attention and W_UV in f32 over the
    // bf16 cache; attn is rounded to bf16 only as the o_proj input.
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
                                                 .attn_factor = rope_attn_factor_},
                                                stream_));
    DSINFER_BLAS_RETURN_IF_ERROR(cuda::BatchedGemm(blas_, {.x = q,
                                                           .w = a.kv_b_f32.get(),
                                                           .y = ws_.q_attn_f32.get(),
                                                           .m = N,
                                                           .n = kvl,
                                                           .k = nope,
                                                           .batch = H,
                                                           .ldx = ldq,
                                                           .ldw = kvl,
                                                           .ldy = H * width_,
                                                           .stride_x = qk,
                                                           .stride_w = (nope + vd) * kvl,
                                                           .stride_y = width_,
                                                           .w_transposed = false,
                                                           .xw_type = cuda::GemmType::kF32}));
    attn.q_f32 = ws_.q_attn_f32.as<float>();
    attn.out_f32 = ws_.o_lat_f32.as<float>();
    DSINFER_CUDA_RETURN_IF_ERROR(cuda::MlaAttention(attn, stream_));
    DSINFER_BLAS_RETURN_IF_ERROR(cuda::BatchedGemm(blas_, {.x = ws_.o_lat_f32.get(),
                                                           .w = a.kv_b_f32.as<float>() + nope * kvl,
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
        cuda::CastF32ToBf16(ws_.attn_f32.as<float>(), ws_.attn.as<bf16>(), N * H * vd, stream_));
  }
  // x += attn · W_o^T
  DSINFER_BLAS_RETURN_IF_ERROR(cuda::Gemm(blas_, {.x = ws_.attn.get(),
                                                  .w = a.o.get(),
                                                  .y = ws_.x.get(),
                                                  .m = N,
                                                  .n = D,
                                                  .k = H * vd,
                                                  .accumulate = true}));
  return absl::OkStatus();
}

absl::Status CudaExecutor::Mlp(const DeviceMlp& m, const bf16* x, int64_t n, float* out,
                               bool accumulate) {
  const int64_t D = config_.hidden_size, I = m.inter;
  // gate_up: [n, 2I] f32 -> act = silu(gate) * up: [n, I] bf16 -> out (+)= act · W_down^T
  DSINFER_BLAS_RETURN_IF_ERROR(cuda::Gemm(
      blas_, {.x = x, .w = m.gate_up.get(), .y = ws_.gu.get(), .m = n, .n = 2 * I, .k = D}));
  DSINFER_CUDA_RETURN_IF_ERROR(cuda::SiluMul(
      {.gate_up = ws_.gu.as<float>(), .out = ws_.act.as<bf16>(), .rows = n, .inter = I}, stream_));
  DSINFER_BLAS_RETURN_IF_ERROR(cuda::Gemm(blas_, {.x = ws_.act.get(),
                                                  .w = m.down.get(),
                                                  .y = out,
                                                  .m = n,
                                                  .n = D,
                                                  .k = I,
                                                  .accumulate = accumulate}));
  return absl::OkStatus();
}

absl::Status CudaExecutor::FeedForward(int64_t layer) {
  const ModelConfig& c = config_;
  const DeviceLayer& L = w_->layers[layer];
  const int64_t N = step_.num_tokens, D = c.hidden_size;
  DSINFER_CUDA_RETURN_IF_ERROR(cuda::RmsNorm({.x = ws_.x.as<float>(),
                                              .w = L.post_attention_norm.as<float>(),
                                              .y_f32 = L.is_moe ? ws_.xn_f32.as<float>() : nullptr,
                                              .y_bf16 = ws_.xn_bf16.as<bf16>(),
                                              .rows = N,
                                              .dim = D,
                                              .eps = static_cast<float>(c.rms_norm_eps)},
                                             stream_));
  if (L.is_moe) return Moe(layer);
  const int64_t C = std::min(opts_.chunk_tokens, opts_.max_batched_tokens);
  for (int64_t c0 = 0; c0 < N; c0 += C) {
    const int64_t n = std::min(C, N - c0);
    RETURN_IF_ERROR(Mlp(L.mlp, ws_.xn_bf16.as<bf16>() + c0 * D, n, ws_.x.as<float>() + c0 * D,
                        /*accumulate=*/true));
  }
  return absl::OkStatus();
}

absl::Status CudaExecutor::Moe(int64_t layer) {
  const ModelConfig& c = config_;
  const DeviceMoe& m = w_->layers[layer].moe;
  const int64_t N = step_.num_tokens, D = c.hidden_size, E = c.n_routed_experts;
  const int64_t K = c.num_experts_per_tok, I = c.moe_intermediate_size;

  // Router in f32: logits [N, E] -> top-k ids / weights [N, K].
  DSINFER_BLAS_RETURN_IF_ERROR(cuda::Gemm(blas_, {.x = ws_.xn_f32.get(),
                                                  .w = m.gate.get(),
                                                  .y = ws_.router.get(),
                                                  .m = N,
                                                  .n = E,
                                                  .k = D,
                                                  .x_type = cuda::GemmType::kF32,
                                                  .w_type = cuda::GemmType::kF32}));
  DSINFER_CUDA_RETURN_IF_ERROR(cuda::MoeRoute(
      {.logits = ws_.router.as<float>(),
       .bias = m.bias.empty() ? nullptr : m.bias.as<float>(),
       .topk_ids = ws_.topk_ids.as<int32_t>(),
       .topk_weights = ws_.topk_w.as<float>(),
       .tokens = N,
       .n_experts = E,
       .top_k = K,
       .n_group = c.n_group,
       .topk_group = c.topk_group,
       .scoring = c.scoring_func == ScoringFunc::kSigmoid ? cuda::MoeScoring::kSigmoid
                                                          : cuda::MoeScoring::kSoftmax,
       .group_score = c.topk_method == TopkMethod::kNoauxTc ? cuda::MoeGroupScore::kTop2Sum
                                                            : cuda::MoeGroupScore::kMax,
       .normalize = c.norm_topk_prob,
       .scale = static_cast<float>(c.routed_scaling_factor),
       // DeepSeek-V2 scales only un-normalised weights; V3 and later scale both.
       .scale_when_normalized = c.model_type != "deepseek_v2"},
      stream_));

  const int64_t C = std::min(opts_.chunk_tokens, opts_.max_batched_tokens);
  for (int64_t c0 = 0; c0 < N; c0 += C) {
    const int64_t n = std::min(C, N - c0);
    const int32_t* ids = ws_.topk_ids.as<int32_t>() + c0 * K;
    DSINFER_CUDA_RETURN_IF_ERROR(
        cuda::MoePermute({.topk_ids = ids,
                          .tokens = n,
                          .top_k = K,
                          .n_experts = E,
                          .expert_offsets = ws_.expert_offsets.as<int32_t>(),
                          .tile_offsets = ws_.tile_offsets.as<int32_t>(),
                          .slot_of = ws_.slot_of.as<int32_t>(),
                          .row_token = ws_.row_token.as<int32_t>(),
                          .expert_load = ws_.expert_load.as<int64_t>() + layer * E},
                         stream_));
    const int64_t max_tiles = cuda::GroupedGemmMaxTiles(n * K, E);
    // act = silu(x W_gate^T) * (x W_up^T) per routed row: [n*K, I] bf16
    DSINFER_CUDA_RETURN_IF_ERROR(
        cuda::GroupedGemm({.a = ws_.xn_bf16.as<bf16>() + c0 * D,
                           .a_row_index = ws_.row_token.as<int32_t>(),
                           .w = m.experts_gate_up.as<bf16>(),
                           .expert_offsets = ws_.expert_offsets.as<int32_t>(),
                           .tile_offsets = ws_.tile_offsets.as<int32_t>(),
                           .n_experts = E,
                           .n = 2 * I,
                           .k = D,
                           .lda = D,
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
                           .w = m.experts_down.as<bf16>(),
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
    const bool shared = c.n_shared_experts > 0;
    if (shared) {
      RETURN_IF_ERROR(Mlp(m.shared, ws_.xn_bf16.as<bf16>() + c0 * D, n, ws_.shared_out.as<float>(),
                          /*accumulate=*/false));
    }
    // x += sum_k w_k y_k (ascending expert) + shared
    DSINFER_CUDA_RETURN_IF_ERROR(
        cuda::MoeUnpermute({.y = ws_.moe_y.as<float>(),
                            .slot_of = ws_.slot_of.as<int32_t>(),
                            .topk_ids = ids,
                            .topk_weights = ws_.topk_w.as<float>() + c0 * K,
                            .shared = shared ? ws_.shared_out.as<float>() : nullptr,
                            .x = ws_.x.as<float>() + c0 * D,
                            .tokens = n,
                            .top_k = K,
                            .dim = D},
                           stream_));
  }
  return absl::OkStatus();
}

}  // namespace dsinfer::cuda_backend
