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
    for (int32_t t : prompt) {
      if (t < 0) continue;
      if (static_cast<size_t>(t) >= seen_mask_.size()) seen_mask_.resize(t + 1, 0);
      if (!seen_mask_[t]) {
        seen_mask_[t] = 1;
        seen_.push_back(t);
      }
    }
  }
}

bool Sampler::IsStop(int32_t token) const {
  return std::find(params_.stop_token_ids.begin(), params_.stop_token_ids.end(), token) !=
         params_.stop_token_ids.end();
}

void Sampler::ApplyPenalties(absl::Span<float> logits) const {
  const int64_t V = static_cast<int64_t>(logits.size());
  if (params_.repetition_penalty != 1.0f) {
    for (int32_t t : seen_) {
      if (t >= V) continue;
      float& l = logits[t];
      l = l > 0 ? l / params_.repetition_penalty : l * params_.repetition_penalty;
    }
  }
  if (params_.frequency_penalty != 0.0f || params_.presence_penalty != 0.0f) {
    for (const auto& [t, count] : output_counts_) {
      if (t >= V) continue;
      logits[t] -= params_.frequency_penalty * count + params_.presence_penalty;
    }
  }
}

int32_t Sampler::Sample(absl::Span<float> logits) {
  ApplyPenalties(logits);
  const int32_t V = static_cast<int32_t>(logits.size());
  int32_t token = 0;
  if (params_.temperature < SamplingParams::kGreedyBelowTemperature) {
    token = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
  } else {
    // Candidates sorted by logit, cut by top-k, then softmax at the temperature.
    scratch_.resize(V);
    for (int32_t i = 0; i < V; ++i) scratch_[i] = {logits[i], i};
    auto by_logit = [](const auto& a, const auto& b) {
      return a.first > b.first || (a.first == b.first && a.second < b.second);
    };
    int32_t n = V;
    if (params_.top_k > 0 && params_.top_k < V) {
      n = params_.top_k;
      std::partial_sort(scratch_.begin(), scratch_.begin() + n, scratch_.end(), by_logit);
    } else {
      std::sort(scratch_.begin(), scratch_.end(), by_logit);
    }
    const float mx = scratch_[0].first, inv_t = 1.0f / params_.temperature;
    double sum = 0.0;
    for (int32_t i = 0; i < n; ++i) {
      scratch_[i].first = std::exp((scratch_[i].first - mx) * inv_t);
      sum += scratch_[i].first;
    }
    // top-p: smallest prefix whose mass reaches top_p (at least one token).
    if (params_.top_p < 1.0f) {
      double cum = 0.0;
      int32_t keep = 0;
      while (keep < n) {
        cum += scratch_[keep].first / sum;
        ++keep;
        if (cum >= params_.top_p) break;
      }
      n = keep;
    }
    // min-p: drop tokens below min_p times the top probability.
    if (params_.min_p > 0.0f) {
      const float cutoff = params_.min_p * scratch_[0].first;
      int32_t keep = 1;
      while (keep < n && scratch_[keep].first >= cutoff) ++keep;
      n = keep;
    }
    double total = 0.0;
    for (int32_t i = 0; i < n; ++i) total += scratch_[i].first;
    const double u = std::uniform_real_distribution<double>(0.0, 1.0)(rng_) * total;
    double cum = 0.0;
    token = scratch_[n - 1].second;
    for (int32_t i = 0; i < n; ++i) {
      cum += scratch_[i].first;
      if (u < cum) {
        token = scratch_[i].second;
        break;
      }
    }
  }
  ++output_counts_[token];
  if (params_.repetition_penalty != 1.0f) {
    if (static_cast<size_t>(token) >= seen_mask_.size()) seen_mask_.resize(token + 1, 0);
    if (!seen_mask_[token]) {
      seen_mask_[token] = 1;
      seen_.push_back(token);
    }
  }
  return token;
}

}  // namespace dsinfer
