// DeepSeek Sparse Attention on the CUDA backend (DeepSeek-V3.2-Exp), the twin of the CPU
// backend's cpu_sparse.cc: the lightning indexer (kernels/cuda/dsa_indexer.h) keeps its FP8 index
// keys in the second paged cache (after the latent rows in cache_) and selects each token's
// top-k positions; MlaAttention then attends over those rows only (kernels/cuda/sparse_mla.h).
// Every token is computed on its own, so results do not depend on the batch or on chunking.
#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "kernels/cpu/dsa_indexer.h"
#include "kernels/cuda/dsa_indexer.h"
#include "kernels/cuda/sparse_mla.h"
#include "src/backend_cuda/cuda_backend.h"
#include "src/core/status_macros.h"

namespace dsinfer::cuda_backend {

absl::Status CudaOps::IndexerTopK(int64_t layer, const IndexerParams& p, const IndexerInputs& in,
                                  Tensor topk) {
  const int64_t N = step_.num_tokens, H = p.heads, D = p.head_dim, K = p.topk;
  if (D != cpu::kIndexQuantBlock)
    return absl::InternalError(absl::StrCat("indexer: head_dim ", D, " is not 128"));
  if (spec_.index_row_bytes != cpu::IndexKeyRowBytes(D))
    return absl::InternalError(absl::StrCat("indexer: the KV cache holds ", spec_.index_row_bytes,
                                            " index bytes per token, the layer needs ",
                                            cpu::IndexKeyRowBytes(D)));
  if (H != needs_.index.heads || D != needs_.index.head_dim || K != needs_.index.topk)
    return absl::InternalError("indexer: dimensions differ from the reserved workspaces'");
  if (p.inv_freq != needs_.mla.inv_freq || p.rope_attn_factor != needs_.mla.rope_attn_factor)
    return absl::InternalError("indexer: rotary frequencies differ from the attention's");
  if (topk.dtype != ElemType::kI32 || topk.cols != K || topk.rows != N || in.q.cols != H * D ||
      in.k.cols != D || in.w.cols != H || in.q.dtype != ElemType::kF32 ||
      in.k.dtype != ElemType::kF32 || in.w.dtype != ElemType::kF32)
    return absl::InternalError("indexer: tensor shapes do not match the indexer's");
  if (N == 0) return absl::OkStatus();
  const auto& norm_w = static_cast<const CudaWeight&>(*in.k_norm);
  const auto& norm_b = static_cast<const CudaWeight&>(*in.k_norm_bias);
  if (!norm_w.f32 || !norm_b.f32) return absl::InternalError("indexer: f32 k_norm expected");
  // The CPU backend's scales, computed the same way.
  const float rot_scale = static_cast<float>(std::pow(static_cast<double>(D), -0.5));
  const float head_scale = static_cast<float>(std::pow(static_cast<double>(H), -0.5));
  uint8_t* cache = index_cache(layer);
  // Keys first: every key of the step is cached before any token of it scores.
  DSINFER_CUDA_RETURN_IF_ERROR(cuda::IndexKeyAppend({.k = in.k.as<float>(),
                                                     .ld_k = in.k.ld,
                                                     .norm_w = norm_w.data.as<float>(),
                                                     .norm_b = norm_b.data.as<float>(),
                                                     .positions = step_.positions,
                                                     .slots = step_.slots,
                                                     .inv_freq = inv_freq_.as<float>(),
                                                     .cache = cache,
                                                     .tokens = N,
                                                     .dim = D,
                                                     .rope = p.rope,
                                                     .eps = p.eps,
                                                     .attn_factor = p.rope_attn_factor,
                                                     .rot_scale = rot_scale,
                                                     .ue8m0 = p.ue8m0},
                                                    stream_));
  DSINFER_CUDA_RETURN_IF_ERROR(cuda::IndexQueryPrep({.q = in.q.as<float>(),
                                                     .ld_q = in.q.ld,
                                                     .w = in.w.as<float>(),
                                                     .ld_w = in.w.ld,
                                                     .positions = step_.positions,
                                                     .inv_freq = inv_freq_.as<float>(),
                                                     .q_codes = ws_.idx_codes.as<uint8_t>(),
                                                     .head_weights = ws_.idx_w.as<float>(),
                                                     .tokens = N,
                                                     .heads = H,
                                                     .dim = D,
                                                     .rope = p.rope,
                                                     .attn_factor = p.rope_attn_factor,
                                                     .rot_scale = rot_scale,
                                                     .head_scale = head_scale,
                                                     .softmax_scale = rot_scale},
                                                    stream_));
  // Passes of index_rows_ tokens through the scores workspace; the number of CTAs per token
  // depends on the token count only (CUDA graphs replay a batch size's launches).
  const int64_t P = std::max<int64_t>(needs_.max_positions, 1);
  for (int64_t t0 = 0; t0 < N; t0 += index_rows_) {
    const int64_t n = std::min(index_rows_, N - t0);
    const int32_t splits =
        static_cast<int32_t>(std::clamp<int64_t>((2 * num_sms_ + n - 1) / n, 1, 64));
    DSINFER_CUDA_RETURN_IF_ERROR(
        cuda::IndexScores({.q_codes = ws_.idx_codes.as<uint8_t>() + t0 * H * D,
                           .head_weights = ws_.idx_w.as<float>() + t0 * H,
                           .cache = cache,
                           .block_tables = step_.tables,
                           .token_table = step_.token_table + t0,
                           .positions = step_.positions + t0,
                           .scores = ws_.idx_scores.as<float>(),
                           .ld_scores = P,
                           .tokens = n,
                           .heads = H,
                           .dim = D,
                           .block_size = spec_.block_size,
                           .splits = splits},
                          stream_));
    DSINFER_CUDA_RETURN_IF_ERROR(cuda::IndexTopK({.scores = ws_.idx_scores.as<float>(),
                                                  .ld_scores = P,
                                                  .positions = step_.positions + t0,
                                                  .out = topk.as<int32_t>() + t0 * topk.ld,
                                                  .ld_out = topk.ld,
                                                  .tokens = n,
                                                  .k = K},
                                                 stream_));
  }
  return absl::OkStatus();
}

absl::Status CudaOps::SparseAttend(int64_t layer, const MlaParams& p, Tensor topk,
                                   const __nv_bfloat16* q, const float* q_f32, __nv_bfloat16* out,
                                   float* out_f32) {
  if (topk.dtype != ElemType::kI32 || topk.rows != step_.num_tokens)
    return absl::InternalError("mla: top-k positions must be [tokens, index_topk] i32");
  DSINFER_CUDA_RETURN_IF_ERROR(cuda::SparseMlaAttention({.q = q,
                                                         .q_f32 = q_f32,
                                                         .cache = layer_cache(layer),
                                                         .block_tables = step_.tables,
                                                         .token_table = step_.token_table,
                                                         .topk = topk.as<int32_t>(),
                                                         .ld_topk = topk.ld,
                                                         .topk_count = topk.cols,
                                                         .out = out,
                                                         .out_f32 = out_f32,
                                                         .tokens = step_.num_tokens,
                                                         .heads = p.heads,
                                                         .kv_lora = p.kv_lora,
                                                         .rope = p.rope,
                                                         .block_size = spec_.block_size,
                                                         .softmax_scale = p.softmax_scale},
                                                        stream_));
  return absl::OkStatus();
}

}  // namespace dsinfer::cuda_backend
