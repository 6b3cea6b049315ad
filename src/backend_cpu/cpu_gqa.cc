// The dense families' ops of the CPU backend: grouped-query attention over the paged [K | V]
// cache (kernels/cpu/gqa_attention.h) and projection biases.
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "kernels/cpu/gqa_attention.h"
#include "kernels/cpu/rope.h"
#include "src/backend_cpu/cpu_backend.h"
#include "src/core/numeric.h"

namespace dsinfer::cpu_backend {

absl::Status CpuOps::AddBias(Tensor y, const BackendWeight& bias) {
  const Matrix& b = static_cast<const CpuWeight&>(bias).m;
  if (y.dtype != ElemType::kF32 || static_cast<int64_t>(b.f32.size()) != y.cols)
    return absl::InternalError(absl::StrCat("add bias: [", y.rows, ", ", y.cols,
                                            "] f32 rows and a bias of ", b.f32.size()));
  for (int64_t r = 0; r < y.rows; ++r) {
    float* row = y.as<float>() + r * y.ld;
    for (int64_t j = 0; j < y.cols; ++j) row[j] += b.f32[j];
  }
  return absl::OkStatus();
}

absl::Status CpuOps::GqaAttention(int64_t layer, const GqaParams& p, Tensor q, Tensor k, Tensor v,
                                  Tensor out) {
  const StepInput& st = *step_;
  const int64_t N = st.num_tokens, H = p.heads, KV = p.kv_heads, hd = p.head_dim;
  const int64_t width = 2 * KV * hd;
  if (width != spec_.row_width) return absl::InternalError("gqa: cache row width mismatch");
  if (q.cols != H * hd || k.cols != KV * hd || v.cols != KV * hd || out.cols != H * hd ||
      q.rows != N || k.rows != N || v.rows != N || out.rows != N)
    return absl::InternalError(absl::StrCat("gqa: q [", q.rows, ", ", q.cols, "], k [", k.rows,
                                            ", ", k.cols, "], v, out [", out.rows, ", ",
                                            out.cols, "] for ", N, " tokens of ", H, "/", KV,
                                            " heads of ", hd));
  for (Tensor t : {q, k, v, out})
    if (t.dtype != ElemType::kF32) return absl::InternalError("gqa: f32 activations expected");
  if (N == 0) return absl::OkStatus();
  // RoPE in HF's rotate_half layout on q and k, in place.
  cpu::ApplyRope({.x = q.as<float>(), .positions = st.positions.data(),
                  .inv_freq = p.inv_freq.data(), .rows = N, .heads = H, .rope_dim = hd,
                  .head_stride = hd, .row_stride = q.ld, .half_split = true});
  cpu::ApplyRope({.x = k.as<float>(), .positions = st.positions.data(),
                  .inv_freq = p.inv_freq.data(), .rows = N, .heads = KV, .rope_dim = hd,
                  .head_stride = hd, .row_stride = k.ld, .half_split = true});
  // Append each token's [k | v] row (bf16-rounded in bf16 runs, as the GPU stores it).
  float* cache_layer = layer_cache(layer);
  const bool round = opts_.precision == Precision::kBF16;
  const int64_t kw = KV * hd;
  for (int64_t i = 0; i < N; ++i) {
    float* dst = cache_layer + static_cast<int64_t>(st.slots[i]) * width;
    const float* ks = k.as<float>() + i * k.ld;
    const float* vs = v.as<float>() + i * v.ld;
    for (int64_t j = 0; j < kw; ++j) {
      dst[j] = round ? RoundToBf16(ks[j]) : ks[j];
      dst[kw + j] = round ? RoundToBf16(vs[j]) : vs[j];
    }
  }
  const cpu::PagedKvView view{
      .data = cache_layer, .block_size = spec_.block_size, .width = width};
  std::vector<const int32_t*> tables(N);
  for (int64_t s = 0; s < st.num_seqs; ++s)
    for (int64_t i = 0; i < st.n_new[s]; ++i) tables[st.token_offset[s] + i] = st.table(s).data();
  cpu::GqaAttention({.q = q.as<float>(), .ld_q = q.ld, .cache = view,
                     .block_tables = tables.data(), .positions = st.positions.data(),
                     .out = out.as<float>(), .ld_out = out.ld, .n = N, .heads = H,
                     .kv_heads = KV, .head_dim = hd, .softmax_scale = p.softmax_scale},
                    pfor_);
  return absl::OkStatus();
}

}  // namespace dsinfer::cpu_backend
