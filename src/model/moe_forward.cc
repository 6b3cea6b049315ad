// Feed-forward blocks: the SwiGLU MLP of dense layers and shared experts, and the routed MoE
// (DeepSeekMoE: fine-grained routed experts plus always-on shared experts).
#include <cstring>

#include "kernels/cpu/activation.h"
#include "kernels/cpu/linear.h"
#include "kernels/cpu/moe_router.h"
#include "src/model/deepseek_model.h"

namespace dsinfer {

void DeepseekModel::Mlp(const MlpWeights& w, const float* x, int64_t n, float* out,
                        bool accumulate) {
  const int64_t D = config_.hidden_size, I = w.inter;
  std::vector<float> gate_up(n * 2 * I), act(n * I);
  cpu::Linear({.x = x, .w = w.gate_up.data(), .y = gate_up.data(), .m = n, .n = 2 * I, .k = D,
               .w_bf16 = w.gate_up.bf16},
              pfor_);
  cpu::SiluMul(gate_up.data(), act.data(), n, I);
  cpu::Linear({.x = act.data(), .w = w.down.data(), .y = out, .m = n, .n = D, .k = I,
               .w_bf16 = w.down.bf16, .accumulate = accumulate},
              pfor_);
}

void DeepseekModel::RunExperts(const MoeWeights& m, const ExpertAssignment& assigned,
                               const float* x, int64_t ldx, float* out) {
  const int64_t D = config_.hidden_size;
  std::vector<float> xs, ys;
  for (size_t e = 0; e < assigned.size(); ++e) {
    const auto& toks = assigned[e];
    if (toks.empty()) continue;
    const int64_t cnt = static_cast<int64_t>(toks.size());
    xs.resize(cnt * D);
    ys.resize(cnt * D);
    for (int64_t i = 0; i < cnt; ++i)
      std::memcpy(xs.data() + i * D, x + toks[i].first * ldx, D * sizeof(float));
    Mlp(m.experts[e], xs.data(), cnt, ys.data(), /*accumulate=*/false);
    for (int64_t i = 0; i < cnt; ++i) {
      float* dst = out + toks[i].first * D;
      const float* src = ys.data() + i * D;
      const float wt = toks[i].second;
      for (int64_t j = 0; j < D; ++j) dst[j] += wt * src[j];
    }
  }
}

void DeepseekModel::Route(int64_t layer, const float* xn, int64_t n, std::vector<int32_t>* ids,
                          std::vector<float>* weights) {
  const ModelConfig& c = config_;
  const MoeWeights& m = weights_->layers[layer].moe;
  const int64_t D = c.hidden_size, E = c.n_routed_experts, K = c.num_experts_per_tok;
  // Router in f32: [n, E] logits -> top-k ids and weights per token.
  std::vector<float> logits(n * E);
  weights->assign(n * K, 0.f);
  ids->assign(n * K, 0);
  if (n == 0) return;
  cpu::Linear({.x = xn, .w = m.gate.data(), .y = logits.data(), .m = n, .n = E, .k = D}, pfor_);
  cpu::MoeRoute({.logits = logits.data(), .bias = m.bias.empty() ? nullptr : m.bias.data(),
                 .topk_ids = ids->data(), .topk_weights = weights->data(), .tokens = n,
                 .n_experts = E, .top_k = K, .n_group = c.n_group, .topk_group = c.topk_group,
                 .scoring = c.scoring_func == ScoringFunc::kSigmoid ? cpu::RouterScoring::kSigmoid
                                                                    : cpu::RouterScoring::kSoftmax,
                 .group_score = c.topk_method == TopkMethod::kNoauxTc
                                    ? cpu::RouterGroupScore::kTop2Sum
                                    : cpu::RouterGroupScore::kMax,
                 .normalize = c.norm_topk_prob,
                 .scale = static_cast<float>(c.routed_scaling_factor),
                 // DeepSeek-V2 scales only un-normalised weights; V3 and later scale both.
                 .scale_when_normalized = c.model_type != "deepseek_v2"});
}

void DeepseekModel::Moe(int64_t layer, const float* xn, int64_t n, float* out) {
  const ModelConfig& c = config_;
  const MoeWeights& m = weights_->layers[layer].moe;
  const int64_t D = c.hidden_size, E = c.n_routed_experts, K = c.num_experts_per_tok;
  std::vector<float> weights;
  std::vector<int32_t> ids;
  Route(layer, xn, n, &ids, &weights);

  // Tokens per expert, in token order (so each token's sum runs over its experts in ascending
  // expert order whatever else is in the batch).
  ExpertAssignment assigned(E);
  for (int64_t t = 0; t < n; ++t)
    for (int64_t k = 0; k < K; ++k)
      assigned[ids[t * K + k]].push_back({static_cast<int32_t>(t), weights[t * K + k]});

  std::vector<int64_t>& load = expert_load_.tokens[layer];
  for (int64_t e = 0; e < E; ++e) load[e] += static_cast<int64_t>(assigned[e].size());
  std::memset(out, 0, n * D * sizeof(float));
  RunExperts(m, assigned, xn, D, out);
  if (c.n_shared_experts > 0) Mlp(m.shared, xn, n, out, /*accumulate=*/true);
}

}  // namespace dsinfer
