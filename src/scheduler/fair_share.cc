#include "src/scheduler/fair_share.h"

#include <algorithm>
#include <limits>

#include "src/core/status_macros.h"

namespace dsinfer {

VirtualTokenCounter::VirtualTokenCounter(std::vector<double> weights)
    : weights_(std::move(weights)), counters_(weights_.size(), 0.0), backlog_(weights_.size(), 0) {}

void VirtualTokenCounter::OnEnqueue(int32_t tenant) {
  if (backlog_[tenant]++ > 0) return;
  double lift = std::numeric_limits<double>::infinity();
  for (size_t t = 0; t < counters_.size(); ++t) {
    if (backlog_[t] > 0 && static_cast<int32_t>(t) != tenant) lift = std::min(lift, counters_[t]);
  }
  if (lift == std::numeric_limits<double>::infinity()) lift = last_left_;
  counters_[tenant] = std::max(counters_[tenant], lift);
}

void VirtualTokenCounter::OnDequeue(int32_t tenant, bool admitted) {
  DSINFER_CHECK(backlog_[tenant] > 0);
  if (--backlog_[tenant] == 0 && admitted) last_left_ = counters_[tenant];
}

}  // namespace dsinfer
