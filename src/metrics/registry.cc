// Prometheus registry: name rules, histogram buckets, text exposition format 0.0.4.
#include "src/metrics/registry.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <set>

#include "absl/strings/str_cat.h"
#include "src/core/status_macros.h"

namespace dsinfer {
namespace {

constexpr std::string_view kPrefix = "dsinfer_";

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// Replaces bytes that are not well-formed UTF-8 with U+FFFD: the format requires UTF-8.
std::string SanitizeUtf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t len = 0;
    uint32_t min = 0;
    if (c < 0x80) {
      out += s[i++];
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      len = 2, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4, min = 0x10000;
    }
    bool ok = len != 0 && i + len <= s.size();
    uint32_t cp = ok ? (c & (0xFF >> (len + 1))) : 0;
    for (size_t k = 1; ok && k < len; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      ok = (cc & 0xC0) == 0x80;
      cp = (cp << 6) | (cc & 0x3F);
    }
    ok = ok && cp >= min && cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF);
    if (ok) {
      out.append(s.substr(i, len));
      i += len;
    } else {
      out += "\xEF\xBF\xBD";
      ++i;
    }
  }
  return out;
}

std::string_view TypeName(MetricType t) {
  switch (t) {
    case MetricType::kCounter:
      return "counter";
    case MetricType::kGauge:
      return "gauge";
    case MetricType::kHistogram:
      return "histogram";
  }
  return "untyped";
}

}  // namespace

std::string FormatMetricValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  DSINFER_CHECK(ec == std::errc());
  return std::string(buf, end);
}

std::string EscapeLabelValue(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string EscapeHelp(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

absl::Status ValidateMetricName(std::string_view name, MetricType type) {
  auto bad = [name](std::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("metric name \"", std::string(name), "\": ", std::string(why)));
  };
  if (name.substr(0, kPrefix.size()) != kPrefix || name.size() == kPrefix.size()) {
    return bad("must start with dsinfer_ and name something");
  }
  for (char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) {
      return bad("must be snake_case: a-z, 0-9 and _ only");
    }
  }
  if (name.find("__") != std::string_view::npos || name.back() == '_') {
    return bad("no empty words (__ or a trailing _)");
  }
  const bool total = EndsWith(name, "_total");
  if (type == MetricType::kCounter && !total) return bad("a counter's name ends in _total");
  if (type != MetricType::kCounter && total) return bad("only counters end in _total");
  for (std::string_view suffix : {"_bucket", "_count", "_sum", "_created"}) {
    if (EndsWith(name, suffix)) {
      return bad(absl::StrCat("ends in ", std::string(suffix), ", which the format reserves"));
    }
  }
  // Words: non-base units and type names.
  static const std::set<std::string_view> kForbidden = {
      "milliseconds", "microseconds", "nanoseconds", "ms",         "us",     "ns",
      "sec",          "secs",         "msec",        "minutes",    "minute", "mins",
      "min",          "hours",        "hour",        "days",       "day",    "kilobytes",
      "megabytes",    "gigabytes",    "kb",          "mb",         "gb",     "kib",
      "mib",          "gib",          "percent",     "percentage", "perc",   "pct",
      "counter",      "gauge",        "histogram",   "summary",    "metric"};
  size_t start = 0;
  while (start < name.size()) {
    size_t end = name.find('_', start);
    if (end == std::string_view::npos) end = name.size();
    const std::string_view word = name.substr(start, end - start);
    if (kForbidden.contains(word)) {
      return bad(absl::StrCat("\"", std::string(word),
                              "\" is not allowed: use base units (seconds, bytes, ratio) and no "
                              "type names"));
    }
    start = end + 1;
  }
  return absl::OkStatus();
}

absl::Status ValidateLabelName(std::string_view name) {
  auto bad = [name](std::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("label name \"", std::string(name), "\": ", std::string(why)));
  };
  if (name.empty()) return bad("empty");
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    if (!alpha && !(i > 0 && c >= '0' && c <= '9')) return bad("must match [a-zA-Z_][a-zA-Z0-9_]*");
  }
  if (name.substr(0, 2) == "__") return bad("__ is reserved for Prometheus");
  if (name == "le" || name == "quantile") return bad("reserved for histograms and summaries");
  return absl::OkStatus();
}

// ---- Histogram ----

Histogram::Histogram(std::vector<double> upper_bounds)
    : bounds_(std::move(upper_bounds)),
      buckets_(std::make_unique<std::atomic<uint64_t>[]>(bounds_.size() + 1)) {}

void Histogram::Observe(double v) {
  if (std::isnan(v)) return;
  // First bound >= v: `le` is inclusive.
  const size_t i =
      static_cast<size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin());
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::Read() const {
  Snapshot s;
  s.cumulative.resize(bounds_.size() + 1);
  uint64_t running = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    running += buckets_[i].load(std::memory_order_relaxed);
    s.cumulative[i] = running;
  }
  s.count = running;
  s.sum = sum_.load(std::memory_order_relaxed);
  return s;
}

// ---- families ----

MetricFamilyBase::MetricFamilyBase(MetricType type, std::string name, std::string help,
                                   std::vector<std::string> label_names)
    : type_(type),
      name_(std::move(name)),
      help_(std::move(help)),
      label_names_(std::move(label_names)) {}

std::vector<std::string> MetricFamilyBase::Key(
    std::initializer_list<std::string_view> values) const {
  // A wrong label count is a programming error, never user input.
  DSINFER_CHECK(values.size() == label_names_.size());
  std::vector<std::string> key;
  key.reserve(values.size());
  for (std::string_view v : values) key.push_back(SanitizeUtf8(v));
  return key;
}

std::string MetricFamilyBase::RenderLabels(const std::vector<std::string>& values,
                                           std::string_view extra_name,
                                           std::string_view extra_value) const {
  if (values.empty() && extra_name.empty()) return "";
  std::string out = "{";
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out += ',';
    absl::StrAppend(&out, label_names_[i], "=\"", EscapeLabelValue(values[i]), "\"");
  }
  if (!extra_name.empty()) {
    if (!values.empty()) out += ',';
    out.append(extra_name).append("=\"").append(extra_value).append("\"");
  }
  out += '}';
  return out;
}

void MetricFamilyBase::RenderHeader(std::string* out) const {
  absl::StrAppend(out, "# HELP ", name_, " ", EscapeHelp(help_), "\n");
  out->append("# TYPE ").append(name_).append(" ").append(TypeName(type_)).append("\n");
}

template <typename Metric>
void MetricFamily<Metric>::Render(std::string* out) const {
  RenderHeader(out);
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [values, child] : children_) {
    if constexpr (std::is_same_v<Metric, Histogram>) {
      const Histogram::Snapshot s = child->Read();
      const std::vector<double>& bounds = child->upper_bounds();
      for (size_t i = 0; i <= bounds.size(); ++i) {
        const std::string le = i < bounds.size() ? FormatMetricValue(bounds[i]) : "+Inf";
        absl::StrAppend(out, name(), "_bucket", RenderLabels(values, "le", le), " ",
                        s.cumulative[i], "\n");
      }
      const std::string labels = RenderLabels(values);
      absl::StrAppend(out, name(), "_sum", labels, " ", FormatMetricValue(s.sum), "\n");
      absl::StrAppend(out, name(), "_count", labels, " ", s.count, "\n");
    } else {
      absl::StrAppend(out, name(), RenderLabels(values), " ", FormatMetricValue(child->Value()),
                      "\n");
    }
  }
}

template class MetricFamily<Counter>;
template class MetricFamily<Gauge>;
template class MetricFamily<Histogram>;

// ---- registry ----

absl::Status MetricRegistry::Check(std::string_view name, MetricType type,
                                   const std::vector<std::string>& label_names,
                                   std::string_view help) const {
  RETURN_IF_ERROR(ValidateMetricName(name, type));
  if (help.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(std::string(name), ": HELP text is required"));
  }
  std::set<std::string_view> seen;
  for (const std::string& l : label_names) {
    RETURN_IF_ERROR(ValidateLabelName(l));
    if (!seen.insert(l).second) {
      return absl::InvalidArgumentError(
          absl::StrCat(std::string(name), ": label \"", l, "\" is listed twice"));
    }
  }
  for (const auto& f : families_) {
    if (f->name() == name) {
      return absl::AlreadyExistsError(
          absl::StrCat("metric ", std::string(name), " is already registered"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<CounterFamily*> MetricRegistry::AddCounter(std::string name, std::string help,
                                                          std::vector<std::string> label_names) {
  std::lock_guard<std::mutex> lock(mu_);
  RETURN_IF_ERROR(Check(name, MetricType::kCounter, label_names, help));
  auto family = std::make_unique<CounterFamily>(MetricType::kCounter, std::move(name),
                                                std::move(help), std::move(label_names));
  CounterFamily* raw = family.get();
  families_.push_back(std::move(family));
  return raw;
}

absl::StatusOr<GaugeFamily*> MetricRegistry::AddGauge(std::string name, std::string help,
                                                      std::vector<std::string> label_names) {
  std::lock_guard<std::mutex> lock(mu_);
  RETURN_IF_ERROR(Check(name, MetricType::kGauge, label_names, help));
  auto family = std::make_unique<GaugeFamily>(MetricType::kGauge, std::move(name), std::move(help),
                                              std::move(label_names));
  GaugeFamily* raw = family.get();
  families_.push_back(std::move(family));
  return raw;
}

absl::StatusOr<HistogramFamily*> MetricRegistry::AddHistogram(std::string name, std::string help,
                                                              std::vector<std::string> label_names,
                                                              std::vector<double> upper_bounds) {
  std::lock_guard<std::mutex> lock(mu_);
  RETURN_IF_ERROR(Check(name, MetricType::kHistogram, label_names, help));
  if (upper_bounds.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": a histogram needs bucket bounds"));
  }
  for (size_t i = 0; i < upper_bounds.size(); ++i) {
    if (!std::isfinite(upper_bounds[i]) || (i > 0 && !(upper_bounds[i] > upper_bounds[i - 1]))) {
      return absl::InvalidArgumentError(absl::StrCat(
          name, ": bucket bounds must be finite and strictly ascending (+Inf is implicit)"));
    }
  }
  auto family =
      std::make_unique<HistogramFamily>(MetricType::kHistogram, std::move(name), std::move(help),
                                        std::move(label_names), std::move(upper_bounds));
  HistogramFamily* raw = family.get();
  families_.push_back(std::move(family));
  return raw;
}

std::string MetricRegistry::Render() const {
  std::string out;
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& f : families_) f->Render(&out);
  return out;
}

}  // namespace dsinfer
