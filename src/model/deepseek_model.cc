#include "src/model/deepseek_model.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <thread>

#include "absl/strings/str_cat.h"
#include "kernels/cpu/linear.h"
#include "kernels/cpu/rmsnorm.h"
#include "src/core/numeric.h"
#include "src/core/status_macros.h"
#include "src/model/attention_scales.h"
#include "src/weights/weight_store.h"

namespace dsinfer {
namespace {

int ResolveThreads(int threads) {
  if (threads > 0) return threads;
  if (const char* env = std::getenv("DSINFER_THREADS")) {
    int n = std::atoi(env);
    if (n > 0) return n;
  }
  return std::max(1u, std::thread::hardware_concurrency());
}

}  // namespace

absl::StatusOr<std::unique_ptr<DeepseekModel>> DeepseekModel::Load(const std::string& model_dir,
                                                                   const ModelOptions& options) {
  ASSIGN_OR_RETURN(ModelConfig config, LoadModelConfig(model_dir));
  ASSIGN_OR_RETURN(auto store, WeightStore::Open(model_dir, options.progress));
  store->SetFp8BlockSize(config.fp8.block_n, config.fp8.block_k);
  ASSIGN_OR_RETURN(auto weights, LoadModelWeights(config, *store, options.precision));
  store->FinishProgress();
  return FromWeights(std::move(config), std::move(weights), options.threads);
}

std::unique_ptr<DeepseekModel> DeepseekModel::FromWeights(ModelConfig config,
                                                          std::unique_ptr<ModelWeights> weights,
                                                          int threads) {
  return std::unique_ptr<DeepseekModel>(
      new DeepseekModel(std::move(config), std::move(weights), ResolveThreads(threads)));
}

DeepseekModel::DeepseekModel(ModelConfig config, std::unique_ptr<ModelWeights> weights,
                             int threads)
    : config_(std::move(config)), weights_(std::move(weights)), pool_(threads) {
  pfor_ = [this](int64_t n, const cpu::RangeBody& body) { pool_.ParallelFor(n, body); };
  // bf16 runs do their big GEMMs on pool_ and leave only small f32 ops (router, kv_b) to
  // OpenBLAS: its own threads would then mostly spin against the pool's (measured: 15% more CPU
  // per decode token), so it runs single-threaded there.
  cpu::SetBlasThreads(weights_->precision == Precision::kBF16 ? 1 : threads);
  AttentionScales scales = MlaAttentionScales(config_);
  inv_freq_ = std::move(scales.inv_freq);
  rope_attn_factor_ = scales.rope_attn_factor;
  softmax_scale_ = scales.softmax_scale;
  expert_load_.tokens.resize(config_.num_hidden_layers);
  for (int64_t l = 0; l < config_.num_hidden_layers; ++l)
    if (weights_->layers[l].is_moe) expert_load_.tokens[l].assign(config_.n_routed_experts, 0);
}

absl::StatusOr<ForwardPlan> DeepseekModel::Plan(absl::Span<const SequenceInput> seqs,
                                             const LatentCacheStorage& cache) const {
  ForwardPlan plan;
  if (seqs.empty()) return absl::InvalidArgumentError("forward: empty batch");
  if (cache.width() != latent_width() || cache.num_layers() != config_.num_hidden_layers) {
    return absl::InvalidArgumentError("forward: KV cache shape does not match the model");
  }
  for (size_t s = 0; s < seqs.size(); ++s) {
    const SequenceInput& in = seqs[s];
    const int64_t n = static_cast<int64_t>(in.tokens.size());
    if (n == 0) return absl::InvalidArgumentError(absl::StrCat("sequence ", s, ": no tokens"));
    if (in.start_pos < 0 || in.start_pos + n > config_.max_position_embeddings) {
      return absl::InvalidArgumentError(
          absl::StrCat("sequence ", s, ": positions up to ", in.start_pos + n,
                       " exceed max_position_embeddings ", config_.max_position_embeddings));
    }
    if (static_cast<int64_t>(in.block_table.size()) * kKvBlockSize < in.start_pos + n) {
      return absl::InvalidArgumentError(
          absl::StrCat("sequence ", s, ": block table holds ", in.block_table.size(),
                       " blocks, too few for ", in.start_pos + n, " tokens"));
    }
    for (int32_t b : in.block_table)
      if (b < 0 || b >= cache.num_blocks())
        return absl::InvalidArgumentError(absl::StrCat("sequence ", s, ": block id ", b,
                                                       " out of range"));
    for (int32_t t : in.tokens)
      if (t < 0 || t >= config_.vocab_size)
        return absl::InvalidArgumentError(absl::StrCat(
            "sequence ", s, ": token id ", t, " outside the vocabulary [0, ",
            config_.vocab_size, ")"));
    plan.token_offset.push_back(plan.num_tokens);
    for (int64_t i = 0; i < n; ++i) {
      plan.positions.push_back(static_cast<int32_t>(in.start_pos + i));
      if (in.all_logits || i == n - 1) plan.logit_rows.push_back(plan.num_tokens + i);
    }
    plan.num_tokens += n;
    if (n == 1 && in.start_pos > 0) {
      plan.decode_seqs.push_back(static_cast<int32_t>(s));
      plan.max_blocks = std::max<int64_t>(plan.max_blocks, BlocksForTokens(in.start_pos + 1));
    } else {
      plan.prefill_seqs.push_back(static_cast<int32_t>(s));
    }
  }
  plan.decode_tables.assign(plan.decode_seqs.size() * plan.max_blocks, 0);
  for (size_t d = 0; d < plan.decode_seqs.size(); ++d) {
    const SequenceInput& in = seqs[plan.decode_seqs[d]];
    const int64_t nb = BlocksForTokens(in.start_pos + 1);
    std::copy(in.block_table.begin(), in.block_table.begin() + nb,
              plan.decode_tables.begin() + d * plan.max_blocks);
    plan.decode_lens.push_back(static_cast<int32_t>(in.start_pos + 1));
  }
  return plan;
}

absl::Status DeepseekModel::Forward(absl::Span<const SequenceInput> seqs,
                                    LatentCacheStorage& cache, std::vector<float>* logits) {
  ASSIGN_OR_RETURN(ForwardPlan plan, Plan(seqs, cache));
  const int64_t N = plan.num_tokens, D = config_.hidden_size;
  const ModelWeights& w = *weights_;

  // x: [N, hidden] residual stream.
  std::vector<float> x(N * D), xn(N * D), branch(N * D);
  int64_t row = 0;
  for (const SequenceInput& in : seqs) {
    for (int32_t t : in.tokens) {
      float* dst = x.data() + row * D;
      if (w.embed.bf16) {
        const uint16_t* src = w.embed.b16.data() + static_cast<int64_t>(t) * D;
        for (int64_t i = 0; i < D; ++i) dst[i] = Bf16ToF32(src[i]);
      } else {
        std::memcpy(dst, w.embed.f32.data() + static_cast<int64_t>(t) * D, D * sizeof(float));
      }
      ++row;
    }
  }

  const float eps = static_cast<float>(config_.rms_norm_eps);
  for (int64_t l = 0; l < config_.num_hidden_layers; ++l) {
    const LayerWeights& L = w.layers[l];
    cpu::RmsNorm({.x = x.data(), .w = L.input_norm.data(), .y = xn.data(), .rows = N, .dim = D,
                  .eps = eps});
    Attention(l, seqs, plan, xn.data(), cache, branch.data());
    for (int64_t i = 0; i < N * D; ++i) x[i] += branch[i];
    cpu::RmsNorm({.x = x.data(), .w = L.post_attention_norm.data(), .y = xn.data(), .rows = N,
                  .dim = D, .eps = eps});
    if (L.is_moe) {
      Moe(l, xn.data(), N, branch.data());
      for (int64_t i = 0; i < N * D; ++i) x[i] += branch[i];
    } else {
      Mlp(L.mlp, xn.data(), N, x.data(), /*accumulate=*/true);
    }
  }

  // Final norm and lm_head on the rows whose logits are wanted.
  const int64_t R = static_cast<int64_t>(plan.logit_rows.size());
  std::vector<float> last(R * D);
  for (int64_t r = 0; r < R; ++r)
    std::memcpy(last.data() + r * D, x.data() + plan.logit_rows[r] * D, D * sizeof(float));
  cpu::RmsNorm({.x = last.data(), .w = w.final_norm.data(), .y = last.data(), .rows = R, .dim = D,
                .eps = eps});
  logits->assign(R * config_.vocab_size, 0.f);
  cpu::Linear({.x = last.data(), .w = w.lm_head.data(), .y = logits->data(), .m = R,
               .n = config_.vocab_size, .k = D, .w_bf16 = w.lm_head.bf16},
              pfor_);
  return absl::OkStatus();
}

}  // namespace dsinfer
