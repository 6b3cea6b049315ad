#include "kernels/cpu/logprobs.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace dsinfer::cpu {

void Logprobs(const LogprobsParams& p) {
  std::vector<int32_t> idx;
  for (int64_t i = 0; i < p.n; ++i) {
    const float* row = p.logits + static_cast<int64_t>(p.rows[i]) * p.ld;
    const float mx = *std::max_element(row, row + p.vocab);
    double sum = 0;
    for (int64_t j = 0; j < p.vocab; ++j) sum += std::exp(static_cast<double>(row[j]) - mx);
    const double lse = mx + std::log(sum);
    p.chosen_logprob[i] = static_cast<float>(row[p.chosen[i]] - lse);
    if (p.top_n <= 0) continue;
    idx.resize(p.vocab);
    for (int64_t j = 0; j < p.vocab; ++j) idx[j] = static_cast<int32_t>(j);
    std::partial_sort(idx.begin(), idx.begin() + p.top_n, idx.end(), [row](int32_t a, int32_t b) {
      return row[a] > row[b] || (row[a] == row[b] && a < b);
    });
    for (int32_t j = 0; j < p.top_n; ++j) {
      p.top_ids[i * p.top_n + j] = idx[j];
      p.top_logprobs[i * p.top_n + j] = static_cast<float>(row[idx[j]] - lse);
    }
  }
}

}  // namespace dsinfer::cpu
