// A small Prometheus registry: counters, gauges and histograms with label sets, rendered in the
// text exposition format 0.0.4. Updates are relaxed atomics on a child the caller looked up
// once; only creating a child or rendering takes a family's mutex.
#pragma once

#include <atomic>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace dsinfer {

enum class MetricType { kCounter, kGauge, kHistogram };

// Monotonic. Inc with a negative or NaN amount is ignored (a counter never goes down).
class Counter {
 public:
  void Inc(double amount = 1.0) {
    if (amount > 0) value_.fetch_add(amount, std::memory_order_relaxed);
  }
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

class Gauge {
 public:
  void Set(double v) { value_.store(v, std::memory_order_relaxed); }
  void Add(double delta) { value_.fetch_add(delta, std::memory_order_relaxed); }
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

// Fixed upper bounds (`le`), ascending and finite; +Inf is implicit. NaN observations are dropped.
class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds);
  void Observe(double v);

  struct Snapshot {
    std::vector<uint64_t> cumulative;  // one per bound, then +Inf (== count)
    double sum = 0;
    uint64_t count = 0;
  };
  // Buckets are read one by one, so a snapshot taken during updates may miss the newest
  // observations, but it is always internally consistent: cumulative counts never decrease and
  // count equals the +Inf bucket.
  Snapshot Read() const;
  const std::vector<double>& upper_bounds() const { return bounds_; }

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;  // bounds_.size() + 1, not cumulative
  std::atomic<double> sum_{0.0};
};

// One metric name with its label names; children are created on first use and live as long as
// the family, so references returned by WithLabels may be cached and updated without locks.
class MetricFamilyBase {
 public:
  MetricFamilyBase(MetricType type, std::string name, std::string help,
                   std::vector<std::string> label_names);
  virtual ~MetricFamilyBase() = default;
  MetricType type() const { return type_; }
  const std::string& name() const { return name_; }
  const std::vector<std::string>& label_names() const { return label_names_; }
  // Appends `# HELP`, `# TYPE` and every sample.
  virtual void Render(std::string* out) const = 0;

 protected:
  // Label values as they appear in the output: invalid UTF-8 replaced, count checked.
  std::vector<std::string> Key(std::initializer_list<std::string_view> values) const;
  std::string RenderLabels(const std::vector<std::string>& values, std::string_view extra_name = {},
                           std::string_view extra_value = {}) const;
  void RenderHeader(std::string* out) const;

 private:
  MetricType type_;
  std::string name_;
  std::string help_;
  std::vector<std::string> label_names_;
};

template <typename Metric>
class MetricFamily final : public MetricFamilyBase {
 public:
  MetricFamily(MetricType type, std::string name, std::string help,
               std::vector<std::string> label_names, std::vector<double> bounds = {})
      : MetricFamilyBase(type, std::move(name), std::move(help), std::move(label_names)),
        bounds_(std::move(bounds)) {}

  // The child for these label values (one per label name, in order). Takes the family mutex:
  // look children up once and keep the reference on hot paths.
  Metric& WithLabels(std::initializer_list<std::string_view> values) {
    std::vector<std::string> key = Key(values);
    std::lock_guard<std::mutex> lock(mu_);
    std::unique_ptr<Metric>& child = children_[std::move(key)];
    if (child == nullptr) child = Make();
    return *child;
  }
  // The only child of a family without labels.
  Metric& Get() { return WithLabels({}); }

  void Render(std::string* out) const override;

 private:
  std::unique_ptr<Metric> Make() const {
    if constexpr (std::is_same_v<Metric, Histogram>) {
      return std::make_unique<Histogram>(bounds_);
    } else {
      return std::make_unique<Metric>();
    }
  }

  std::vector<double> bounds_;  // histograms only
  mutable std::mutex mu_;
  std::map<std::vector<std::string>, std::unique_ptr<Metric>> children_;
};

extern template class MetricFamily<Counter>;
extern template class MetricFamily<Gauge>;
extern template class MetricFamily<Histogram>;

using CounterFamily = MetricFamily<Counter>;
using GaugeFamily = MetricFamily<Gauge>;
using HistogramFamily = MetricFamily<Histogram>;

// Owns the families. Adding is for start-up; Render may run on any thread at any time.
class MetricRegistry {
 public:
  absl::StatusOr<CounterFamily*> AddCounter(std::string name, std::string help,
                                            std::vector<std::string> label_names = {});
  absl::StatusOr<GaugeFamily*> AddGauge(std::string name, std::string help,
                                        std::vector<std::string> label_names = {});
  absl::StatusOr<HistogramFamily*> AddHistogram(std::string name, std::string help,
                                                std::vector<std::string> label_names,
                                                std::vector<double> upper_bounds);

  // The whole registry in the text exposition format 0.0.4, families in the order added.
  std::string Render() const;

 private:
  absl::Status Check(std::string_view name, MetricType type,
                     const std::vector<std::string>& label_names, std::string_view help) const;

  mutable std::mutex mu_;
  std::vector<std::unique_ptr<MetricFamilyBase>> families_;
};

inline constexpr std::string_view kPrometheusTextContentType =
    "text/plain; version=0.0.4; charset=utf-8";

// dsinfer's naming rules on top of Prometheus's: `dsinfer_` prefix, snake_case, counters and only
// counters end in `_total`, no suffix a histogram emits (`_bucket`, `_count`, `_sum`), base units
// (seconds, bytes, ratio: no `_milliseconds`, `_ms`, `_percent`, ...), no type name in the name.
absl::Status ValidateMetricName(std::string_view name, MetricType type);
// Prometheus label names, not `__`-prefixed; `le` and `quantile` are reserved.
absl::Status ValidateLabelName(std::string_view name);

// Text-format helpers, exposed for tests.
std::string FormatMetricValue(double v);           // shortest round-trip; NaN, +Inf, -Inf
std::string EscapeLabelValue(std::string_view v);  // \\ \" \n
std::string EscapeHelp(std::string_view v);        // \\ \n

}  // namespace dsinfer
