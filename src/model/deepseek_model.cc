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
  if (options.layout.tp > 1 && (options.comm == nullptr || options.comm->size() != options.layout.tp ||
                                 options.comm->rank() != options.layout.rank)) {
    return absl::InvalidArgumentError("a tensor-parallel model needs a communicator of its ranks");
  }
  ASSIGN_OR_RETURN(auto weights,
                   LoadModelWeights(config, *store, options.precision, options.layout));
  store->FinishProgress();
  return FromWeights(std::move(config), std::move(weights), options.threads, options.comm);
}

std::unique_ptr<DeepseekModel> DeepseekModel::FromWeights(ModelConfig config,
                                                          std::unique_ptr<ModelWeights> weights,
                                                          int threads, Communicator* comm) {
  return std::unique_ptr<DeepseekModel>(
      new DeepseekModel(std::move(config), std::move(weights), ResolveThreads(threads), comm));
}

DeepseekModel::DeepseekModel(ModelConfig config, std::unique_ptr<ModelWeights> weights,
                             int threads, Communicator* comm)
    : config_(std::move(config)), weights_(std::move(weights)), pool_(threads), comm_(comm) {
  DSINFER_CHECK(weights_->layout.single() || comm_ != nullptr);
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
  if (!weights_->layout.single())
    pending_load_.assign(config_.num_hidden_layers * config_.n_routed_experts, 0.f);
}

absl::Status DeepseekModel::AllReduce(float* data, int64_t n) {
  if (weights_->layout.single()) return absl::OkStatus();
  return comm_->AllReduceSum(data, n, CommDType::kF32);
}

// Embedding rows of this rank's vocab range; the others are zero until the all-reduce.
absl::Status DeepseekModel::Embed(absl::Span<const SequenceInput> seqs, int64_t n, float* x) {
  const int64_t D = config_.hidden_size;
  const Matrix& e = weights_->embed;
  const int64_t v0 = weights_->layout.VocabBegin(config_), v1 = v0 + e.rows;
  std::memset(x, 0, n * D * sizeof(float));
  int64_t row = 0;
  for (const SequenceInput& in : seqs) {
    for (int32_t t : in.tokens) {
      float* dst = x + (row++) * D;
      if (t < v0 || t >= v1) continue;
      const int64_t r = t - v0;
      if (e.bf16) {
        const uint16_t* src = e.b16.data() + r * D;
        for (int64_t i = 0; i < D; ++i) dst[i] = Bf16ToF32(src[i]);
      } else {
        std::memcpy(dst, e.f32.data() + r * D, D * sizeof(float));
      }
    }
  }
  return AllReduce(x, n * D);
}

// logits [rows, vocab]: this rank's vocab columns, then (parallel runs) gathered from all ranks.
absl::Status DeepseekModel::LmHead(const float* last, int64_t R, std::vector<float>* logits) {
  const int64_t V = config_.vocab_size, D = config_.hidden_size;
  const Matrix& h = weights_->lm_head;
  const ShardLayout& lay = weights_->layout;
  if (lay.single()) {
    logits->assign(R * V, 0.f);
    cpu::Linear({.x = last, .w = h.data(), .y = logits->data(), .m = R, .n = V, .k = D,
                 .w_bf16 = h.bf16},
                pfor_);
    return absl::OkStatus();
  }
  std::vector<float> local(R * h.rows), all(R * V);
  cpu::Linear({.x = last, .w = h.data(), .y = local.data(), .m = R, .n = h.rows, .k = D,
               .w_bf16 = h.bf16},
              pfor_);
  std::vector<int64_t> bytes(lay.tp);
  for (int r = 0; r < lay.tp; ++r)
    bytes[r] = R * (ShardLayout::PartBegin(V, lay.tp, r + 1) - ShardLayout::PartBegin(V, lay.tp, r)) *
               static_cast<int64_t>(sizeof(float));
  RETURN_IF_ERROR(comm_->AllGatherV(local.data(), all.data(), bytes));
  // all: per rank [R, V_r] blocks -> logits [R, V].
  logits->assign(R * V, 0.f);
  const float* src = all.data();
  for (int r = 0; r < lay.tp; ++r) {
    const int64_t b = ShardLayout::PartBegin(V, lay.tp, r), w = ShardLayout::PartBegin(V, lay.tp, r + 1) - b;
    for (int64_t i = 0; i < R; ++i)
      std::memcpy(logits->data() + i * V + b, src + i * w, w * sizeof(float));
    src += R * w;
  }
  return absl::OkStatus();
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
  RETURN_IF_ERROR(Embed(seqs, N, x.data()));

  const bool parallel = !weights_->layout.single();
  const float eps = static_cast<float>(config_.rms_norm_eps);
  for (int64_t l = 0; l < config_.num_hidden_layers; ++l) {
    const LayerWeights& L = w.layers[l];
    cpu::RmsNorm({.x = x.data(), .w = L.input_norm.data(), .y = xn.data(), .rows = N, .dim = D,
                  .eps = eps});
    Attention(l, seqs, plan, xn.data(), cache, branch.data());
    RETURN_IF_ERROR(AllReduce(branch.data(), N * D));
    for (int64_t i = 0; i < N * D; ++i) x[i] += branch[i];
    cpu::RmsNorm({.x = x.data(), .w = L.post_attention_norm.data(), .y = xn.data(), .rows = N,
                  .dim = D, .eps = eps});
    if (L.is_moe) {
      if (parallel) RETURN_IF_ERROR(MoeParallel(l, xn.data(), N, branch.data()));
      else Moe(l, xn.data(), N, branch.data());
      for (int64_t i = 0; i < N * D; ++i) x[i] += branch[i];
    } else if (parallel) {
      Mlp(L.mlp, xn.data(), N, branch.data(), /*accumulate=*/false);
      RETURN_IF_ERROR(AllReduce(branch.data(), N * D));
      for (int64_t i = 0; i < N * D; ++i) x[i] += branch[i];
    } else {
      Mlp(L.mlp, xn.data(), N, x.data(), /*accumulate=*/true);
    }
  }
  if (parallel && !pending_load_.empty()) {
    // Routing counts of every rank's token slice, so that each rank sees the whole step's load.
    RETURN_IF_ERROR(AllReduce(pending_load_.data(), static_cast<int64_t>(pending_load_.size())));
    const int64_t E = config_.n_routed_experts;
    for (int64_t l = 0; l < config_.num_hidden_layers; ++l)
      for (int64_t e = 0; e < static_cast<int64_t>(expert_load_.tokens[l].size()); ++e)
        expert_load_.tokens[l][e] += static_cast<int64_t>(pending_load_[l * E + e]);
    std::fill(pending_load_.begin(), pending_load_.end(), 0.f);
  }

  // Final norm and lm_head on the rows whose logits are wanted.
  const int64_t R = static_cast<int64_t>(plan.logit_rows.size());
  std::vector<float> last(R * D);
  for (int64_t r = 0; r < R; ++r)
    std::memcpy(last.data() + r * D, x.data() + plan.logit_rows[r] * D, D * sizeof(float));
  cpu::RmsNorm({.x = last.data(), .w = w.final_norm.data(), .y = last.data(), .rows = R, .dim = D,
                .eps = eps});
  RETURN_IF_ERROR(LmHead(last.data(), R, logits));
  return absl::OkStatus();
}

}  // namespace dsinfer
