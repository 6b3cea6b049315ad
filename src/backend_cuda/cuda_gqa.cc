// The dense families' ops of the CUDA backend (qwen2, llama), the twin of the CPU backend's
// cpu_gqa.cc: grouped-query attention over the paged [K | V] bf16 cache
// (kernels/cuda/gqa_attention.h) and projection biases.
#include "absl/strings/str_cat.h"
#include "kernels/cuda/elementwise.h"
#include "kernels/cuda/gqa_attention.h"
#include "src/backend_cuda/cuda_backend.h"
#include "src/core/status_macros.h"

namespace dsinfer::cuda_backend {

absl::Status CudaOps::AddBias(Tensor y, const BackendWeight& bias) {
  const auto& b = static_cast<const CudaWeight&>(bias);
  if (y.dtype != ElemType::kF32 || !b.f32 || b.rows * b.cols != y.cols)
    return absl::InternalError(absl::StrCat("add bias: [", y.rows, ", ", y.cols,
                                            "] f32 rows and a bias of ", b.rows * b.cols));
  // A source row stride of 0 adds the one bias row to every row.
  DSINFER_CUDA_RETURN_IF_ERROR(cuda::AddRows({.dst = y.as<float>(),
                                              .src = b.data.as<float>(),
                                              .rows = y.rows,
                                              .cols = y.cols,
                                              .ld_dst = y.ld,
                                              .ld_src = 0},
                                             stream_));
  return absl::OkStatus();
}

absl::Status CudaOps::GqaAttention(int64_t layer, const GqaParams& p, Tensor q, Tensor k, Tensor v,
                                   Tensor out) {
  const int64_t N = step_.num_tokens, H = p.heads, KV = p.kv_heads, hd = p.head_dim;
  if (2 * KV * hd != spec_.row_width) return absl::InternalError("gqa: cache row width mismatch");
  if (q.cols != H * hd || k.cols != KV * hd || v.cols != KV * hd || out.cols != H * hd ||
      q.rows != N || k.rows != N || v.rows != N || out.rows != N)
    return absl::InternalError(absl::StrCat(
        "gqa: q [", q.rows, ", ", q.cols, "], k [", k.rows, ", ", k.cols, "], v, out [", out.rows,
        ", ", out.cols, "] for ", N, " tokens of ", H, "/", KV, " heads of ", hd));
  if (q.dtype != ElemType::kF32 || k.dtype != ElemType::kF32 || v.dtype != ElemType::kF32 ||
      out.dtype != ElemType::kBF16)
    return absl::InternalError("gqa: f32 q, k, v and a bf16 output expected");
  if (p.inv_freq != needs_.gqa.inv_freq)
    return absl::InternalError("gqa: rotary frequencies differ from the reserved ones");
  if (N == 0) return absl::OkStatus();
  __nv_bfloat16* cache = layer_cache(layer);
  DSINFER_CUDA_RETURN_IF_ERROR(cuda::GqaAppend({.q = q.as<float>(),
                                                .ld_q = q.ld,
                                                .k = k.as<float>(),
                                                .ld_k = k.ld,
                                                .v = v.as<float>(),
                                                .ld_v = v.ld,
                                                .positions = step_.positions,
                                                .slots = step_.slots,
                                                .inv_freq = inv_freq_.as<float>(),
                                                .cache = cache,
                                                .tokens = N,
                                                .heads = H,
                                                .kv_heads = KV,
                                                .head_dim = hd},
                                               stream_));
  DSINFER_CUDA_RETURN_IF_ERROR(cuda::GqaAttention({.q = q.as<float>(),
                                                   .ld_q = q.ld,
                                                   .cache = cache,
                                                   .block_tables = step_.tables,
                                                   .token_table = step_.token_table,
                                                   .positions = step_.positions,
                                                   .out = out.as<__nv_bfloat16>(),
                                                   .ld_out = out.ld,
                                                   .tokens = N,
                                                   .heads = H,
                                                   .kv_heads = KV,
                                                   .head_dim = hd,
                                                   .block_size = spec_.block_size,
                                                   .softmax_scale = p.softmax_scale},
                                                  stream_));
  return absl::OkStatus();
}

}  // namespace dsinfer::cuda_backend
