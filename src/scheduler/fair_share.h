// Fair share between tenants with the Virtual Token Counter (Sheng et al., "Fairness in Serving
// Large Language Models", OSDI 2024, Algorithm 2, weighted variant). Each tenant's counter grows
// by (input tokens + 2 x output tokens) / weight as it is served; the scheduler admits from the
// backlogged tenant with the smallest counter. A tenant whose queue was empty is lifted to the
// smallest counter of the backlogged tenants (or, when none is, to the counter of the last one
// that left), so idle time earns no credit.
//
// Counters order the queue; they cannot free a slot. SlotShareAllowsPreemption extends fair
// share to the running batch: a tenant of a class may take a running slot from another tenant
// of the same class only while that moves both toward equal slots per weight.
#pragma once

#include <cstdint>
#include <vector>

namespace dsinfer {

class VirtualTokenCounter {
 public:
  static constexpr double kInputCost = 1.0;   // w_p in the paper
  static constexpr double kOutputCost = 2.0;  // w_q

  explicit VirtualTokenCounter(std::vector<double> weights);

  // A request of `tenant` joins the waiting queue (lifts the counter if it was not backlogged).
  void OnEnqueue(int32_t tenant);
  // A request of `tenant` leaves the waiting queue: admitted, or removed (cancel, rejection).
  void OnDequeue(int32_t tenant, bool admitted);
  void Charge(int32_t tenant, int64_t input_tokens, int64_t output_tokens) {
    counters_[tenant] += Cost(tenant, input_tokens, output_tokens);
  }
  double Cost(int32_t tenant, int64_t input_tokens, int64_t output_tokens) const {
    return (kInputCost * static_cast<double>(input_tokens) +
            kOutputCost * static_cast<double>(output_tokens)) /
           weights_[tenant];
  }

  const std::vector<double>& counters() const { return counters_; }
  int32_t backlog(int32_t tenant) const { return backlog_[tenant]; }

 private:
  std::vector<double> weights_;
  std::vector<double> counters_;
  std::vector<int32_t> backlog_;  // waiting requests per tenant
  double last_left_ = 0;          // counter of the last tenant whose backlog emptied by admission
};

// True when the taker (running `taker_running` sequences of the class) may preempt one of the
// donor's: afterwards the donor still holds at least as many slots per weight as the taker, so
// the move never overshoots and two tenants never take slots back and forth.
inline bool SlotShareAllowsPreemption(int32_t taker_running, double taker_weight,
                                      int32_t donor_running, double donor_weight) {
  return static_cast<double>(donor_running - 1) / donor_weight >=
         static_cast<double>(taker_running + 1) / taker_weight;
}

}  // namespace dsinfer
