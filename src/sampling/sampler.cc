#include "src/sampling/sampler.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"

namespace dsinfer {

absl::Status ValidateSamplingParams(const SamplingParams& p) {
  auto bad = [](const char* field, float v, const char* rule) {
    return absl::InvalidArgumentError(absl::StrCat(field, " = ", v, ": must be ", rule));
  };
  if (!(p.temperature >= 0.0f) || !std::isfinite(p.temperature))
    return bad("temperature", p.temperature, "a finite number >= 0");
  if (p.top_k < 0) return bad("top_k", static_cast<float>(p.top_k), ">= 0 (0 disables it)");
  if (!(p.top_p > 0.0f && p.top_p <= 1.0f)) return bad("top_p", p.top_p, "in (0, 1]");
  if (!(p.min_p >= 0.0f && p.min_p <= 1.0f)) return bad("min_p", p.min_p, "in [0, 1]");
  if (!(p.repetition_penalty > 0.0f) || !std::isfinite(p.repetition_penalty))
    return bad("repetition_penalty", p.repetition_penalty, "a finite number > 0");
  if (!(p.frequency_penalty >= -2.0f && p.frequency_penalty <= 2.0f))
    return bad("frequency_penalty", p.frequency_penalty, "in [-2, 2]");
  if (!(p.presence_penalty >= -2.0f && p.presence_penalty <= 2.0f))
    return bad("presence_penalty", p.presence_penalty, "in [-2, 2]");
  return absl::OkStatus();
}

Sampler::Sampler(const SamplingParams& params, absl::Span<const int32_t> prompt)
    : params_(params), rng_(params.seed ? *params.seed : std::random_device{}()) {
  if (params_.repetition_penalty != 1.0f) {
    for (int32_t t : prompt)
      if (t >= 0) Note(t, 0);
  }
}

void Sampler::Note(int32_t token, int32_t output_increment) {
  auto [it, inserted] = index_.try_emplace(token, static_cast<int32_t>(penalty_tokens_.size()));
  if (inserted) {
    penalty_tokens_.push_back(token);
    penalty_counts_.push_back(0);
  }
  penalty_counts_[it->second] += output_increment;
}

bool Sampler::IsStop(int32_t token) const {
  return std::find(params_.stop_token_ids.begin(), params_.stop_token_ids.end(), token) !=
         params_.stop_token_ids.end();
}

SamplingRow Sampler::NextRow() {
  SamplingRow row{.temperature = params_.temperature,
                  .top_k = params_.top_k,
                  .top_p = params_.top_p,
                  .min_p = params_.min_p,
                  .repetition_penalty = params_.repetition_penalty,
                  .frequency_penalty = params_.frequency_penalty,
                  .presence_penalty = params_.presence_penalty,
                  .penalty_tokens = penalty_tokens_,
                  .penalty_counts = penalty_counts_};
  // Temperatures too small for 1/T to stay finite are greedy (no draw).
  if (row.temperature < SamplingParams::kGreedyBelowTemperature) row.temperature = 0.0f;
  if (row.temperature != 0.0f) row.uniform = std::uniform_real_distribution<double>(0.0, 1.0)(rng_);
  return row;
}

void Sampler::Accept(int32_t token) { Note(token, 1); }

int32_t Sampler::Sample(absl::Span<float> logits) {
  const int32_t token = SampleRow(NextRow(), logits, &scratch_);
  Accept(token);
  return token;
}

int32_t SampleRow(const SamplingRow& row, absl::Span<float> logits,
                  std::vector<std::pair<float, int32_t>>* scratch) {
  const int32_t V = static_cast<int32_t>(logits.size());
  // Penalties: repetition over every listed token, then frequency / presence over output ones.
  for (size_t i = 0; i < row.penalty_tokens.size(); ++i) {
    const int32_t t = row.penalty_tokens[i];
    if (t < 0 || t >= V) continue;
    float& l = logits[t];
    if (row.repetition_penalty != 1.0f)
      l = l > 0 ? l / row.repetition_penalty : l * row.repetition_penalty;
    const int32_t count = row.penalty_counts[i];
    if (count > 0) l -= row.frequency_penalty * count + row.presence_penalty;
  }
  if (row.temperature < SamplingParams::kGreedyBelowTemperature)
    return static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
  // Candidates sorted by logit, cut by top-k, then softmax at the temperature.
  auto& cand = *scratch;
  cand.resize(V);
  for (int32_t i = 0; i < V; ++i) cand[i] = {logits[i], i};
  auto by_logit = [](const auto& a, const auto& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  };
  int32_t n = V;
  if (row.top_k > 0 && row.top_k < V) {
    n = row.top_k;
    std::partial_sort(cand.begin(), cand.begin() + n, cand.end(), by_logit);
  } else {
    std::sort(cand.begin(), cand.end(), by_logit);
  }
  const float mx = cand[0].first, inv_t = 1.0f / row.temperature;
  double sum = 0.0;
  for (int32_t i = 0; i < n; ++i) {
    cand[i].first = std::exp((cand[i].first - mx) * inv_t);
    sum += cand[i].first;
  }
  // top-p: smallest prefix whose mass reaches top_p (at least one token).
  if (row.top_p < 1.0f) {
    double cum = 0.0;
    int32_t keep = 0;
    while (keep < n) {
      cum += cand[keep].first / sum;
      ++keep;
      if (cum >= row.top_p) break;
    }
    n = keep;
  }
  // min-p: drop tokens below min_p times the top probability.
  if (row.min_p > 0.0f) {
    const float cutoff = row.min_p * cand[0].first;
    int32_t keep = 1;
    while (keep < n && cand[keep].first >= cutoff) ++keep;
    n = keep;
  }
  double total = 0.0;
  for (int32_t i = 0; i < n; ++i) total += cand[i].first;
  const double u = row.uniform * total;
  double cum = 0.0;
  for (int32_t i = 0; i < n; ++i) {
    cum += cand[i].first;
    if (u < cum) return cand[i].second;
  }
  return cand[n - 1].second;
}

}  // namespace dsinfer
