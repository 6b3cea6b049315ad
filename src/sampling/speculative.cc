#include "src/sampling/speculative.h"

#include <algorithm>
#include <vector>

namespace dsinfer {

DraftVerdict VerifyDraft(absl::Span<const float> p, absl::Span<const float> q, int32_t draft,
                         double u_accept, double u_resample) {
  const double pd = p[draft], qd = q[draft];
  if (qd <= 0 || u_accept < std::min(1.0, pd / qd)) return {.accepted = true, .token = draft};
  // Rejected: the residual max(0, p - q), normalised, by inverse CDF.
  double total = 0;
  for (size_t i = 0; i < p.size(); ++i) total += std::max(0.0, double{p[i]} - double{q[i]});
  if (total <= 0) return {.accepted = false, .token = draft};  // p == q: never rejected
  const double target = u_resample * total;
  double acc = 0;
  int32_t last = -1;
  for (size_t i = 0; i < p.size(); ++i) {
    const double r = std::max(0.0, double{p[i]} - double{q[i]});
    if (r <= 0) continue;
    last = static_cast<int32_t>(i);
    acc += r;
    if (target < acc) return {.accepted = false, .token = last};
  }
  return {.accepted = false, .token = last};  // rounding at the top end
}

std::vector<int32_t> AcceptGreedyDrafts(absl::Span<const int32_t> drafts,
                                        absl::Span<const int32_t> samples) {
  std::vector<int32_t> out = {samples[0]};
  for (size_t j = 0; j < drafts.size() && j + 1 < samples.size() && samples[j] == drafts[j]; ++j)
    out.push_back(samples[j + 1]);
  return out;
}

}  // namespace dsinfer
