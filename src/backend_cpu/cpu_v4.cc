// DeepSeek-V4's ops on the CPU backend (kernels/cpu/v4_*.h): hyper-connections, the routing and
// clipped-SwiGLU MoE, and the attention over the paged V4 cache row (V4AttnParams): window K=V,
// compressor inputs, compressed entries in the row of the token that closes their window.
// Tokens of a sequence are processed in position order, so a chunk that ends mid-window leaves
// its compressor inputs in the cache and the next chunk (or decode step) closes the window.
#include <algorithm>
#include <cmath>
#include <vector>

#include "absl/strings/str_cat.h"
#include "kernels/cpu/rmsnorm.h"
#include "kernels/cpu/v4_attention.h"
#include "kernels/cpu/v4_mhc.h"
#include "kernels/cpu/v4_moe.h"
#include "src/backend_cpu/cpu_backend.h"

namespace dsinfer::cpu_backend {
namespace {

const float* F32(const BackendWeight& w) { return static_cast<const CpuWeight&>(w).m.f32.data(); }

absl::Status NeedF32(const char* what, Tensor t) {
  if (t.dtype != ElemType::kF32 || !t.contiguous())
    return absl::InvalidArgumentError(absl::StrCat(what, ": contiguous f32 expected"));
  return absl::OkStatus();
}

}  // namespace

absl::Status CpuOps::HyperPre(Tensor streams, const BackendWeight& fn, const BackendWeight& base,
                              const BackendWeight& scale, const HyperParams& p, Tensor collapsed,
                              Tensor post, Tensor comb) {
  RETURN_IF_ERROR(NeedF32("hyper pre", streams));
  cpu::HcPre({.streams = streams.as<float>(), .fn = F32(fn), .base = F32(base),
              .scale = F32(scale), .collapsed = collapsed.as<float>(), .post = post.as<float>(),
              .comb = comb.as<float>(), .rows = streams.rows, .hc = p.hc, .dim = p.dim,
              .sinkhorn_iters = p.sinkhorn_iters, .hc_eps = p.hc_eps, .norm_eps = p.norm_eps});
  return absl::OkStatus();
}

absl::Status CpuOps::HyperPost(Tensor y, Tensor post, Tensor comb, const HyperParams& p,
                               Tensor streams) {
  RETURN_IF_ERROR(NeedF32("hyper post", streams));
  cpu::HcPost({.y = y.as<float>(), .post = post.as<float>(), .comb = comb.as<float>(),
               .streams = streams.as<float>(), .rows = streams.rows, .hc = p.hc, .dim = p.dim});
  return absl::OkStatus();
}

absl::Status CpuOps::HyperHead(Tensor streams, const BackendWeight& fn, const BackendWeight& base,
                               const BackendWeight& scale, const HyperParams& p, Tensor out) {
  RETURN_IF_ERROR(NeedF32("hyper head", streams));
  cpu::HcHead({.streams = streams.as<float>(), .fn = F32(fn), .base = F32(base),
               .scale = F32(scale)[0], .out = out.as<float>(), .rows = streams.rows, .hc = p.hc,
               .dim = p.dim, .hc_eps = p.hc_eps, .norm_eps = p.norm_eps});
  return absl::OkStatus();
}

absl::Status CpuOps::V4Route(int64_t layer, Tensor x, int64_t first_token,
                             const BackendWeight& gate, const BackendWeight* bias,
                             const BackendWeight* tid2eid, const V4RouterParams& p, Tensor ids,
                             Tensor weights) {
  const int64_t n = x.rows, E = p.n_experts, K = p.top_k;
  if (first_token < 0 || first_token + n > step_->num_tokens) {
    return absl::InternalError(absl::StrCat("V4 route: rows [", first_token, ", ",
                                            first_token + n, ") outside the step's ",
                                            step_->num_tokens, " tokens"));
  }
  std::vector<float> logits(n * E);
  MatMul(static_cast<const CpuWeight&>(gate).m, x.as<float>(), x.ld, n, logits.data(), E, false);
  std::vector<int32_t> hash;
  if (tid2eid != nullptr) {
    hash.resize(n * K);
    const float* table = F32(*tid2eid);
    for (int64_t r = 0; r < n; ++r) {
      const int32_t tok = step_->tokens[first_token + r];
      for (int64_t k = 0; k < K; ++k) {
        const float e = table[static_cast<int64_t>(tok) * K + k];
        if (!(e >= 0 && e < E)) {
          return absl::InvalidArgumentError(
              absl::StrCat("layer ", layer, " tid2eid[", tok, "] holds expert ", e,
                           " outside [0, ", E, ")"));
        }
        hash[r * K + k] = static_cast<int32_t>(e);
      }
    }
  }
  cpu::V4Route({.logits = logits.data(), .bias = bias ? F32(*bias) : nullptr,
                .hash_ids = hash.empty() ? nullptr : hash.data(), .ids = ids.as<int32_t>(),
                .weights = weights.as<float>(), .rows = n, .n_experts = E, .top_k = K,
                .scoring = static_cast<cpu::V4RouterScoring>(p.scoring), .scale = p.scale});
  const int32_t* id = ids.as<int32_t>();
  for (int64_t i = 0; i < n * K; ++i) {
    if (!pending_load_.empty()) pending_load_[layer * load_experts_ + id[i]] += 1.f;
    else ++expert_load_.tokens[layer][id[i]];
  }
  return absl::OkStatus();
}

absl::Status CpuOps::V4Moe(Tensor x, Tensor ids, Tensor weights, const BackendWeight* experts,
                           const BackendWeight* shared_gate_up, const BackendWeight* shared_down,
                           float limit, Tensor out) {
  if ((shared_gate_up == nullptr) != (shared_down == nullptr))
    return absl::InternalError("V4 MoE: the shared expert needs gate_up and down");
  const int64_t n = x.rows, D = out.cols;
  if (n == 0) return absl::OkStatus();
  // Each row: its routed experts in ascending id, then the shared expert; the routed rows of an
  // expert run as one GEMM (the same per-row bits as one row at a time: see RoutedRows).
  std::vector<float> sum(n * D, 0.f);
  if (experts != nullptr) {
    RETURN_IF_ERROR(RoutedRows(x, ids, weights, *static_cast<const CpuWeight*>(experts),
                               /*skip_foreign=*/true, limit, sum.data()));
  }
  if (shared_gate_up != nullptr) {
    MlpRows(static_cast<const CpuWeight*>(shared_gate_up)->m,
            static_cast<const CpuWeight*>(shared_down)->m, x.as<float>(), x.ld, n, sum.data(),
            /*accumulate=*/true, limit);
  }
  for (int64_t r = 0; r < n; ++r)
    std::copy(sum.data() + r * D, sum.data() + (r + 1) * D, out.as<float>() + r * out.ld);
  return absl::OkStatus();
}

absl::Status CpuOps::V4Attention(int64_t layer, const V4AttnParams& p, const V4AttnInputs& in,
                                 Tensor out) {
  const int64_t N = in.q.rows, H = p.heads, d = p.head_dim, R = p.rope_dim, W = p.row_width;
  const int64_t m = p.rate, cw = p.overlap ? 2 * d : d, di = p.index_dim, Hi = p.index_heads;
  const int64_t off_raw = d, off_entry = d + 2 * cw, off_iraw = off_entry + d,
                off_ientry = off_iraw + 4 * di;
  if (W != spec_.row_width) {
    return absl::FailedPreconditionError(absl::StrCat("V4 cache row ", W, " != allocated ",
                                                      spec_.row_width));
  }
  const int32_t* pos = step_->positions.data();
  // q: per-head unweighted RMSNorm, then every rotary of this step's rows.
  for (int64_t r = 0; r < N; ++r)
    for (int64_t h = 0; h < H; ++h) {
      float* q = in.q.as<float>() + r * in.q.ld + h * d;
      double ss = 0;
      for (int64_t c = 0; c < d; ++c) ss += static_cast<double>(q[c]) * q[c];
      const float inv = 1.0f / std::sqrt(static_cast<float>(ss / d) + p.eps);
      for (int64_t c = 0; c < d; ++c) q[c] *= inv;
    }
  cpu::TrailingRope({.x = in.q.as<float>(), .positions = pos, .inv_freq = p.inv_freq.data(),
                     .rows = N, .heads = H, .head_dim = d, .rope_dim = R, .row_stride = in.q.ld});
  cpu::TrailingRope({.x = in.kv.as<float>(), .positions = pos, .inv_freq = p.inv_freq.data(),
                     .rows = N, .heads = 1, .head_dim = d, .rope_dim = R, .row_stride = in.kv.ld});
  if (p.overlap) {
    cpu::TrailingRope({.x = in.idx_q.as<float>(), .positions = pos,
                       .inv_freq = p.compress_inv_freq.data(), .rows = N, .heads = Hi,
                       .head_dim = di, .rope_dim = R, .row_stride = in.idx_q.ld});
  }
  float* cache = layer_cache(layer);
  const int64_t bs = spec_.block_size;
  std::vector<float> wkv, wgate, pkv, pgate, pooled;
  std::vector<const float*> keys, index_keys;
  std::vector<int32_t> chosen;
  std::vector<float> scores, iw(Hi);
  // Pools window w of a compressor whose inputs sit at column `off` of the rows ([kv | gate],
  // width `width` each) into entry [dim], normed and rotated at position w · m.
  auto compress = [&](auto row, int64_t w, int64_t off, int64_t width, int64_t dim,
                      const BackendWeight& ape, const BackendWeight& norm, float* entry) {
    wkv.resize(m * width);
    wgate.resize(m * width);
    pkv.resize(m * width);
    pgate.resize(m * width);
    for (int64_t i = 0; i < m; ++i) {
      const float* src = row(w * m + i) + off;
      std::copy(src, src + width, wkv.data() + i * width);
      std::copy(src + width, src + 2 * width, wgate.data() + i * width);
      if (p.overlap && w > 0) {
        const float* prev = row((w - 1) * m + i) + off;
        std::copy(prev, prev + width, pkv.data() + i * width);
        std::copy(prev + width, prev + 2 * width, pgate.data() + i * width);
      }
    }
    pooled.resize(dim);
    const bool prev = p.overlap && w > 0;
    cpu::CompressWindow({.kv = wkv.data(), .gate = wgate.data(),
                         .prev_kv = prev ? pkv.data() : nullptr,
                         .prev_gate = prev ? pgate.data() : nullptr,
                         .position_bias = F32(ape), .rate = m, .dim = dim,
                         .overlap = p.overlap, .out = pooled.data()});
    cpu::RmsNorm({.x = pooled.data(), .w = F32(norm), .y = entry, .rows = 1, .dim = dim,
                  .eps = p.eps});
    const int32_t at = static_cast<int32_t>(w * m);
    cpu::TrailingRope({.x = entry, .positions = &at, .inv_freq = p.compress_inv_freq.data(),
                       .rows = 1, .heads = 1, .head_dim = dim, .rope_dim = R, .row_stride = dim});
  };
  for (int64_t s = 0; s < step_->num_seqs; ++s) {
    const auto table = step_->table(s);
    auto row = [&](int64_t t) {
      return cache + (static_cast<int64_t>(table[t / bs]) * bs + t % bs) * W;
    };
    const int64_t first = step_->token_offset[s], start = step_->start_pos[s];
    for (int64_t i = 0; i < step_->n_new[s]; ++i) {
      const int64_t r = first + i, t = start + i;
      float* rw = row(t);
      std::copy(in.kv.as<float>() + r * in.kv.ld, in.kv.as<float>() + r * in.kv.ld + d, rw);
      if (m > 0) {
        const float* c = in.comp.as<float>() + r * in.comp.ld;
        std::copy(c, c + 2 * cw, rw + off_raw);
        if (p.overlap) {
          const float* ic = in.idx_comp.as<float>() + r * in.idx_comp.ld;
          std::copy(ic, ic + 4 * di, rw + off_iraw);
        }
        if ((t + 1) % m == 0) {
          compress(row, t / m, off_raw, cw, d, *in.comp_ape, *in.comp_norm, rw + off_entry);
          if (p.overlap)
            compress(row, t / m, off_iraw, 2 * di, di, *in.idx_ape, *in.idx_norm, rw + off_ientry);
        }
      }
      // The key set: the window, then compressed entries of closed windows.
      keys.clear();
      for (int64_t j = std::max<int64_t>(0, t - p.window + 1); j <= t; ++j) keys.push_back(row(j));
      const int64_t closed = m > 0 ? (t + 1) / m : 0;
      if (m > 0 && !p.overlap) {
        for (int64_t w = 0; w < closed; ++w) keys.push_back(row(w * m + m - 1) + off_entry);
      } else if (p.overlap && closed > 0) {
        index_keys.clear();
        for (int64_t w = 0; w < closed; ++w) index_keys.push_back(row(w * m + m - 1) + off_ientry);
        const float wscale = 1.0f / std::sqrt(static_cast<float>(Hi));
        for (int64_t h = 0; h < Hi; ++h) iw[h] = in.idx_w.as<float>()[r * in.idx_w.ld + h] * wscale;
        chosen.resize(p.index_topk);
        scores.resize(closed);
        const int64_t k = cpu::IndexerTopk({.q = in.idx_q.as<float>() + r * in.idx_q.ld,
                                            .w = iw.data(), .keys = index_keys.data(),
                                            .n_valid = closed, .heads = Hi, .head_dim = di,
                                            .topk = p.index_topk, .chosen = chosen.data(),
                                            .scores = scores.data()});
        std::sort(chosen.begin(), chosen.begin() + k);
        for (int64_t j = 0; j < k; ++j) keys.push_back(row(chosen[j] * m + m - 1) + off_entry);
      }
      cpu::SinkAttention({.q = in.q.as<float>() + r * in.q.ld, .keys = keys.data(),
                          .n_keys = static_cast<int64_t>(keys.size()), .sinks = F32(*in.sinks),
                          .heads = H, .head_dim = d, .scale = p.softmax_scale,
                          .out = out.as<float>() + r * out.ld});
    }
  }
  cpu::TrailingRope({.x = out.as<float>(), .positions = pos, .inv_freq = p.inv_freq.data(),
                     .rows = N, .heads = H, .head_dim = d, .rope_dim = R, .row_stride = out.ld,
                     .inverse = true});
  return absl::OkStatus();
}

}  // namespace dsinfer::cpu_backend
