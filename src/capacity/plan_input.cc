// Plan input from YAML (yaml-cpp): a strict walk that collects every problem with its key path.
#include "src/capacity/plan_input.h"
#include "src/config/yaml_kind.h"

#include <yaml-cpp/yaml.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <set>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "nlohmann/json.hpp"

namespace dsinfer::capacity {

int64_t LengthDist::Sample(std::mt19937_64& rng) const {
  double x = fixed;
  if (kind == Kind::kUniform) {
    x = static_cast<double>(std::uniform_int_distribution<int64_t>(lo, hi)(rng));
  } else if (kind == Kind::kLognormal) {
    x = std::lognormal_distribution<double>(mu, sigma)(rng);
  }
  const auto v = static_cast<int64_t>(std::llround(x));
  return std::clamp(v, min, max);
}

double LengthDist::Mean() const {
  switch (kind) {
    case Kind::kFixed:
      return fixed;
    case Kind::kUniform:
      return 0.5 * static_cast<double>(lo + hi);
    case Kind::kLognormal:
      return std::exp(mu + 0.5 * sigma * sigma);
  }
  return fixed;
}

double MeasuredCosts::Base(int64_t sequences) const {
  const auto n = static_cast<double>(sequences);
  if (batch_seconds.empty()) return step_seconds + (token_seconds + sequence_seconds) * n;
  const auto& t = batch_seconds;
  if (n <= t.front().first || t.size() == 1) return t.front().second;
  size_t i = 1;
  while (i + 1 < t.size() && t[i].first < n) ++i;  // segment [i-1, i], the last one past the end
  const auto [x0, y0] = t[i - 1];
  const auto [x1, y1] = t[i];
  return std::max(0.0, y0 + (y1 - y0) * (n - x0) / (x1 - x0));
}

bool Targets::any() const {
  for (const ClassTarget& c : classes) {
    if (c.ttft_p99_seconds || c.tpot_p99_seconds) return true;
  }
  return false;
}

namespace {

constexpr size_t kMaxErrors = 40;
constexpr size_t kMaxServices = 4096;  // the simulator's token-id ranges (simulator.cc)
constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kZ90 = 1.2815515655446004;  // standard normal 90th percentile

const char* KindName(const YAML::Node& n) { return YamlKindName(n); }

bool IsTenantId(const std::string& s) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '.' && c != '-')
      return false;
  }
  return true;
}

// "4.8e12", "141 GB", "80GiB", "3.35 TB/s", "989 TFLOP/s": a number with an optional decimal
// (k M G T P) or binary (Ki Mi Gi Ti) prefix on the unit `unit` ("B", "B/s", "FLOP/s").
std::optional<double> ParseQuantity(std::string s, const std::string& unit) {
  absl::StripAsciiWhitespace(&s);
  absl::string_view v = s;
  if (!unit.empty() && absl::ConsumeSuffix(&v, unit)) {
    double scale = 1;
    static const std::pair<const char*, double> kPrefixes[] = {
        {"Ki", 1024.0}, {"Mi", 1048576.0}, {"Gi", 1073741824.0}, {"Ti", 1099511627776.0},
        {"k", 1e3},     {"K", 1e3},        {"M", 1e6},           {"G", 1e9},
        {"T", 1e12},    {"P", 1e15}};
    for (const auto& [p, f] : kPrefixes) {
      if (absl::ConsumeSuffix(&v, p)) {
        scale = f;
        break;
      }
    }
    double x = 0;
    if (!absl::SimpleAtod(absl::StripAsciiWhitespace(v), &x) || !std::isfinite(x)) {
      return std::nullopt;
    }
    return x * scale;
  }
  double x = 0;
  if (!absl::SimpleAtod(v, &x) || !std::isfinite(x)) return std::nullopt;
  return x;
}

// Collects errors as "path: message (line N)".
class Walker {
 public:
  void Error(const std::string& path, const std::string& msg, const YAML::Node* at = nullptr) {
    if (errors_.size() > kMaxErrors) return;
    std::string line;
    if (at && at->IsDefined() && !at->Mark().is_null()) {
      line = absl::StrCat(" (line ", at->Mark().line + 1, ")");
    }
    errors_.push_back(absl::StrCat(path, ": ", msg, line));
  }
  const std::vector<std::string>& errors() const { return errors_; }

  static std::string Join(const std::string& path, const std::string& key) {
    return path.empty() ? key : absl::StrCat(path, ".", key);
  }

  // True when `n` is a mapping (null: an empty one); flags keys not in `allowed`.
  bool Map(const YAML::Node& n, const std::string& path,
           std::initializer_list<const char*> allowed) {
    if (!n.IsDefined() || n.IsNull()) return false;
    if (!n.IsMap()) {
      Error(path, absl::StrCat("expected a mapping, got ", KindName(n)), &n);
      return false;
    }
    std::set<std::string> seen;
    for (auto it = n.begin(); it != n.end(); ++it) {
      const YAML::Node key = it->first;
      const std::string name = key.IsScalar() ? key.Scalar() : "?";
      if (!seen.insert(name).second) Error(Join(path, name), "duplicate key", &key);
      if (std::none_of(allowed.begin(), allowed.end(), [&](const char* a) { return name == a; })) {
        Error(Join(path, name),
              absl::StrCat("unknown key (expected one of ", absl::StrJoin(allowed, ", "), ")"),
              &key);
      }
    }
    return true;
  }

  bool Scalar(const YAML::Node& n, const std::string& path, const std::string& what,
              std::string* out) {
    if (!n.IsScalar()) {
      Error(path, absl::StrCat("expected ", what, ", got ", KindName(n)), &n);
      return false;
    }
    *out = n.Scalar();
    return true;
  }

  // Optional field `key` of mapping `m`: a finite number (with `unit` prefixes) in range.
  void Number(const YAML::Node& m, const std::string& path, const char* key, double* out,
              double min, bool min_exclusive = false, double max = kInf,
              const std::string& unit = "") {
    const YAML::Node n = m[key];
    if (!n.IsDefined()) return;
    const std::string p = Join(path, key);
    std::string s;
    if (!Scalar(n, p, "a number", &s)) return;
    std::optional<double> v = ParseQuantity(s, unit);
    if (!v) {
      Error(p,
            absl::StrCat("\"", s, "\" is not a finite number",
                         unit.empty()
                             ? ""
                             : absl::StrCat(" (optionally with a k/M/G/T prefix on ", unit, ")")),
            &n);
      return;
    }
    if (min_exclusive ? !(*v > min) : !(*v >= min)) {
      Error(p, absl::StrCat("must be ", min_exclusive ? "> " : ">= ", min, ", got ", s), &n);
      return;
    }
    if (*v > max) {
      Error(p, absl::StrCat("must be <= ", max, ", got ", s), &n);
      return;
    }
    *out = *v;
  }

  template <typename Int>
  void Integer(const YAML::Node& m, const std::string& path, const char* key, Int* out, int64_t min,
               int64_t max = static_cast<int64_t>(std::min<uint64_t>(
                   std::numeric_limits<Int>::max(), std::numeric_limits<int64_t>::max()))) {
    const YAML::Node n = m[key];
    if (!n.IsDefined()) return;
    const std::string p = Join(path, key);
    std::string s;
    if (!Scalar(n, p, "an integer", &s)) return;
    int64_t v = 0;
    if (!absl::SimpleAtoi(s, &v)) {
      Error(p, absl::StrCat("\"", s, "\" is not an integer"), &n);
      return;
    }
    if (v < min || v > max) {
      Error(p, absl::StrCat("must be in [", min, ", ", max, "], got ", v), &n);
      return;
    }
    *out = static_cast<Int>(v);
  }

  void Bool(const YAML::Node& m, const std::string& path, const char* key, bool* out) {
    const YAML::Node n = m[key];
    if (!n.IsDefined()) return;
    const std::string p = Join(path, key);
    std::string s;
    if (!Scalar(n, p, "true or false", &s)) return;
    if (s == "true") {
      *out = true;
    } else if (s == "false") {
      *out = false;
    } else {
      Error(p, absl::StrCat("\"", s, "\" is not true or false"), &n);
    }
  }

  void String(const YAML::Node& m, const std::string& path, const char* key, std::string* out) {
    const YAML::Node n = m[key];
    if (n.IsDefined()) Scalar(n, Join(path, key), "a string", out);
  }

  bool PriorityValue(const YAML::Node& n, const std::string& p, Priority* out) {
    std::string s;
    if (!Scalar(n, p, "a priority", &s)) return false;
    std::optional<Priority> v = ParsePriority(s);
    if (!v) {
      Error(p, absl::StrCat("\"", s, "\" is not one of emergency, interactive, batch"), &n);
      return false;
    }
    *out = *v;
    return true;
  }

 private:
  std::vector<std::string> errors_;
};

// A YAML tree as JSON (for an inline model config): scalars become numbers, booleans or null
// where they read as such, strings otherwise.
nlohmann::json ToJson(const YAML::Node& n) {
  if (n.IsMap()) {
    nlohmann::json j = nlohmann::json::object();
    for (auto it = n.begin(); it != n.end(); ++it) j[it->first.Scalar()] = ToJson(it->second);
    return j;
  }
  if (n.IsSequence()) {
    nlohmann::json j = nlohmann::json::array();
    for (size_t i = 0; i < n.size(); ++i) j.push_back(ToJson(n[i]));
    return j;
  }
  if (!n.IsScalar()) return nullptr;
  const std::string& s = n.Scalar();
  if (n.Tag() == "!") return s;  // quoted in the YAML text
  if (s == "null" || s == "~") return nullptr;
  if (s == "true") return true;
  if (s == "false") return false;
  int64_t i = 0;
  if (absl::SimpleAtoi(s, &i)) return i;
  double d = 0;
  if (absl::SimpleAtod(s, &d)) return d;
  return s;
}

class PlanParser {
 public:
  explicit PlanParser(std::string base_dir) : base_dir_(std::move(base_dir)) {}

  absl::StatusOr<PlanInput> Parse(const YAML::Node& root) {
    if (!w_.Map(root, "",
                {"model", "scheduler", "deployments", "services", "simulation", "targets"})) {
      if (w_.errors().empty()) w_.Error("input", "expected a mapping with model, deployments, ...");
      return Fail();
    }
    Model(root["model"]);
    SchedulerLimits defaults;
    defaults.max_model_len = in_.model.max_position_embeddings;
    Scheduler(root["scheduler"], "scheduler", &defaults);
    Deployments(root["deployments"], defaults);
    Services(root["services"]);
    Simulation(root["simulation"]);
    TargetsField(root["targets"]);
    if (!w_.errors().empty()) return Fail();
    return std::move(in_);
  }

 private:
  absl::Status Fail() const { return absl::InvalidArgumentError(absl::StrJoin(w_.errors(), "\n")); }

  void Model(const YAML::Node& n) {
    const std::string path = "model";
    if (!n.IsDefined()) {
      w_.Error(path, "is missing");
      return;
    }
    if (!w_.Map(n, path,
                {"config", "config_json", "weight_bytes", "kv_bytes", "activation_bytes",
                 "mtp"})) {
      return;
    }
    w_.Number(n, path, "weight_bytes", &in_.precision.weight_bytes, 0, true, 8);
    w_.Number(n, path, "kv_bytes", &in_.precision.kv_bytes, 0, true, 8);
    w_.Number(n, path, "activation_bytes", &in_.precision.activation_bytes, 0, true, 8);
    const bool has_file = n["config"].IsDefined(), has_inline = n["config_json"].IsDefined();
    if (has_file == has_inline) {
      w_.Error(path, "give exactly one of config (a config.json or its directory) or config_json");
      return;
    }
    absl::StatusOr<ModelConfig> config;
    if (has_file) {
      const YAML::Node at = n["config"];
      std::string file;
      if (!w_.Scalar(at, "model.config", "a path", &file)) return;
      std::filesystem::path p(file);
      if (p.is_relative()) p = std::filesystem::path(base_dir_) / p;
      in_.model_source = p.string();
      std::error_code ec;
      if (std::filesystem::is_directory(p, ec)) {
        config = LoadModelConfig(p.string());
      } else {
        std::ifstream f(p, std::ios::binary);
        if (!f) {
          w_.Error("model.config", absl::StrCat("cannot open ", p.string()), &at);
          return;
        }
        std::ostringstream text;
        text << f.rdbuf();
        config = ParseModelConfig(text.str());
      }
      if (!config.ok()) {
        w_.Error("model.config", std::string(config.status().message()), &at);
        return;
      }
    } else {
      in_.model_source = "inline";
      const YAML::Node at = n["config_json"];
      if (!at.IsMap()) {
        w_.Error("model.config_json", "expected a mapping of config.json keys", &at);
        return;
      }
      config = ParseModelConfig(ToJson(at).dump());
      if (!config.ok()) {
        w_.Error("model.config_json",
                 std::string(absl::StripPrefix(config.status().message(), "config.json: ")), &at);
        return;
      }
    }
    in_.model = *config;
    // MTP speculative decoding: the MTP layer's weights and its KV cache layer are counted.
    bool mtp = false;
    w_.Bool(n, path, "mtp", &mtp);
    if (mtp && in_.model.num_nextn_predict_layers < 1) {
      const YAML::Node at = n["mtp"];
      w_.Error("model.mtp", "the model has no MTP layer (num_nextn_predict_layers is 0)", &at);
      return;
    }
    in_.model.mtp_layers = mtp ? 1 : 0;
  }

  void Scheduler(const YAML::Node& n, const std::string& path, SchedulerLimits* l) {
    if (!w_.Map(n, path,
                {"max_batched_tokens", "max_running", "max_waiting", "max_waiting_tokens",
                 "max_queue_seconds", "prefill_chunk", "num_kv_blocks", "prefix_caching",
                 "share_prefix_across_tenants", "max_model_len"})) {
      return;
    }
    w_.Integer(n, path, "max_batched_tokens", &l->max_batched_tokens, 1);
    w_.Integer(n, path, "max_running", &l->max_running, 1);
    w_.Integer(n, path, "max_waiting", &l->max_waiting, 0);
    w_.Integer(n, path, "max_waiting_tokens", &l->max_waiting_tokens, 0);
    w_.Number(n, path, "max_queue_seconds", &l->max_queue_seconds, 0, true);
    w_.Integer(n, path, "prefill_chunk", &l->prefill_chunk, 1);
    w_.Integer(n, path, "num_kv_blocks", &l->num_kv_blocks, 0);
    w_.Bool(n, path, "prefix_caching", &l->prefix_caching);
    w_.Bool(n, path, "share_prefix_across_tenants", &l->share_prefix_across_tenants);
    w_.Integer(n, path, "max_model_len", &l->max_model_len, 1);
    if (l->max_batched_tokens < l->max_running) {
      w_.Error(Walker::Join(path, "max_batched_tokens"),
               absl::StrCat("must be >= max_running (", l->max_running,
                            ") so every running sequence can decode each step"),
               &n);
    }
  }

  void Gpu(const YAML::Node& n, const std::string& path, GpuSpec* g) {
    if (!w_.Map(n, path,
                {"name", "memory", "memory_bandwidth", "flops", "link_bandwidth",
                 "network_bandwidth", "collective_latency_seconds", "bandwidth_efficiency", "mfu",
                 "step_overhead_seconds"})) {
      return;
    }
    w_.String(n, path, "name", &g->name);
    for (const char* required : {"memory", "memory_bandwidth", "flops"}) {
      if (!n[required].IsDefined()) w_.Error(Walker::Join(path, required), "is missing", &n);
    }
    w_.Number(n, path, "memory", &g->memory_bytes, 0, true, kInf, "B");
    w_.Number(n, path, "memory_bandwidth", &g->memory_bandwidth, 0, true, kInf, "B/s");
    w_.Number(n, path, "flops", &g->flops, 0, true, kInf, "FLOP/s");
    w_.Number(n, path, "link_bandwidth", &g->link_bandwidth, 0, true, kInf, "B/s");
    w_.Number(n, path, "network_bandwidth", &g->network_bandwidth, 0, true, kInf, "B/s");
    w_.Number(n, path, "collective_latency_seconds", &g->collective_latency_seconds, 0);
    w_.Number(n, path, "bandwidth_efficiency", &g->bandwidth_efficiency, 0, true, 1);
    w_.Number(n, path, "mfu", &g->mfu, 0, true, 1);
    w_.Number(n, path, "step_overhead_seconds", &g->step_overhead_seconds, 0);
  }

  void Deployments(const YAML::Node& n, const SchedulerLimits& defaults) {
    if (!n.IsDefined() || !n.IsSequence() || n.size() == 0) {
      w_.Error("deployments", "expected a non-empty sequence of deployments", &n);
      return;
    }
    std::set<std::string> names;
    for (size_t i = 0; i < n.size(); ++i) {
      const std::string path = absl::StrCat("deployments[", i, "]");
      const YAML::Node d = n[i];
      Deployment dep;
      dep.limits = defaults;
      if (!w_.Map(d, path,
                  {"name", "gpu", "layout", "measured", "scheduler", "kv_memory_fraction"})) {
        if (!d.IsMap()) w_.Error(path, "expected a mapping", &d);
        continue;
      }
      dep.name = absl::StrCat("deployment-", i + 1);
      w_.String(d, path, "name", &dep.name);
      if (!names.insert(dep.name).second) {
        w_.Error(Walker::Join(path, "name"), absl::StrCat("duplicate name \"", dep.name, "\""), &d);
      }
      if (d["gpu"].IsDefined()) {
        dep.gpu.emplace();
        Gpu(d["gpu"], Walker::Join(path, "gpu"), &*dep.gpu);
      }
      const std::string lp = Walker::Join(path, "layout");
      const YAML::Node ln = d["layout"];
      if (w_.Map(ln, lp, {"tp", "ep", "gpus_per_node"})) {
        w_.Integer(ln, lp, "tp", &dep.layout.tp, 1, 4096);
        w_.Integer(ln, lp, "ep", &dep.layout.ep, 1, 4096);
        w_.Integer(ln, lp, "gpus_per_node", &dep.layout.gpus_per_node, 1, 4096);
        const Layout& l = dep.layout;
        if (l.gpus() % l.tp != 0 || l.gpus() % l.ep != 0) {
          w_.Error(
              lp,
              absl::StrCat("tp (", l.tp, ") and ep (", l.ep, ") must divide each other's maximum"),
              &ln);
        }
        if (l.tp > l.gpus_per_node) {
          w_.Error(Walker::Join(lp, "tp"),
                   absl::StrCat("tensor parallelism stays inside a node: tp ", l.tp,
                                " > gpus_per_node ", l.gpus_per_node),
                   &ln);
        }
      }
      w_.Number(d, path, "kv_memory_fraction", &dep.kv_memory_fraction, 0, true, 1);
      const std::string mp = Walker::Join(path, "measured");
      const YAML::Node mn = d["measured"];
      if (w_.Map(mn, mp,
                 {"step_seconds", "token_seconds", "sequence_seconds", "context_token_seconds",
                  "batch_seconds"})) {
        MeasuredCosts m;
        w_.Number(mn, mp, "step_seconds", &m.step_seconds, 0);
        w_.Number(mn, mp, "token_seconds", &m.token_seconds, 0);
        w_.Number(mn, mp, "sequence_seconds", &m.sequence_seconds, 0);
        w_.Number(mn, mp, "context_token_seconds", &m.context_token_seconds, 0);
        if (mn["batch_seconds"].IsDefined()) {
          BatchTable(mn["batch_seconds"], Walker::Join(mp, "batch_seconds"), &m.batch_seconds);
          for (const char* k : {"step_seconds", "sequence_seconds"}) {
            if (mn[k].IsDefined()) {
              w_.Error(Walker::Join(mp, k),
                       "give batch_seconds or step_seconds and "
                       "sequence_seconds, not both",
                       &mn);
            }
          }
        } else if (m.step_seconds + m.token_seconds + m.sequence_seconds <= 0) {
          w_.Error(mp, "step_seconds, token_seconds and sequence_seconds are all 0", &mn);
        }
        dep.measured = m;
      }
      Scheduler(d["scheduler"], Walker::Join(path, "scheduler"), &dep.limits);
      if (!dep.measured && !dep.gpu) {
        w_.Error(path, "needs gpu (for the analytic cost model) or measured costs", &d);
      }
      if (!dep.gpu && dep.limits.num_kv_blocks == 0) {
        w_.Error(Walker::Join(path, "scheduler.num_kv_blocks"),
                 "is required when there is no gpu to size the KV cache from", &d);
      }
      in_.deployments.push_back(std::move(dep));
    }
  }

  // [[sequences, seconds], ...]: sequences > 0 strictly increasing, seconds > 0.
  void BatchTable(const YAML::Node& n, const std::string& path,
                  std::vector<std::pair<double, double>>* out) {
    if (!n.IsSequence() || n.size() == 0) {
      w_.Error(path, "expected [[sequences, seconds], ...]", &n);
      return;
    }
    for (size_t i = 0; i < n.size(); ++i) {
      const YAML::Node e = n[i];
      const std::string p = absl::StrCat(path, "[", i, "]");
      double seqs = 0, secs = 0;
      if (!e.IsSequence() || e.size() != 2 || !e[0].IsScalar() || !e[1].IsScalar() ||
          !absl::SimpleAtod(e[0].Scalar(), &seqs) || !absl::SimpleAtod(e[1].Scalar(), &secs) ||
          !(seqs > 0) || !(secs > 0) || !std::isfinite(seqs) || !std::isfinite(secs)) {
        w_.Error(p, "expected [sequences > 0, seconds > 0]", &e);
        return;
      }
      if (!out->empty() && seqs <= out->back().first) {
        w_.Error(p, "sequences must increase", &e);
        return;
      }
      out->push_back({seqs, secs});
    }
  }

  void Length(const YAML::Node& n, const std::string& path, LengthDist* out) {
    if (!n.IsDefined()) {
      w_.Error(path, "is missing");
      return;
    }
    if (n.IsScalar()) {  // a plain integer: fixed
      int64_t v = 0;
      if (!absl::SimpleAtoi(n.Scalar(), &v) || v < 1) {
        w_.Error(path, absl::StrCat("\"", n.Scalar(), "\" is not a positive integer"), &n);
        return;
      }
      *out = LengthDist{.kind = LengthDist::Kind::kFixed, .fixed = static_cast<double>(v)};
      return;
    }
    if (!w_.Map(n, path, {"fixed", "uniform", "lognormal", "min", "max"})) {
      w_.Error(path,
               "expected an integer or {fixed: N} | {uniform: [lo, hi]} | "
               "{lognormal: {mean|median: M, p90: Q}}",
               &n);
      return;
    }
    LengthDist d;
    w_.Integer(n, path, "min", &d.min, 1);
    w_.Integer(n, path, "max", &d.max, 1);
    if (d.min > d.max) w_.Error(Walker::Join(path, "min"), "must be <= max", &n);
    const int kinds =
        n["fixed"].IsDefined() + n["uniform"].IsDefined() + n["lognormal"].IsDefined();
    if (kinds != 1) {
      w_.Error(path, "give exactly one of fixed, uniform, lognormal", &n);
      return;
    }
    if (n["fixed"].IsDefined()) {
      d.kind = LengthDist::Kind::kFixed;
      w_.Number(n, path, "fixed", &d.fixed, 1);
    } else if (n["uniform"].IsDefined()) {
      d.kind = LengthDist::Kind::kUniform;
      const YAML::Node u = n["uniform"];
      const std::string up = Walker::Join(path, "uniform");
      int64_t lo = 0, hi = 0;
      if (!u.IsSequence() || u.size() != 2 || !u[0].IsScalar() || !u[1].IsScalar() ||
          !absl::SimpleAtoi(u[0].Scalar(), &lo) || !absl::SimpleAtoi(u[1].Scalar(), &hi) ||
          lo < 1 || hi < lo) {
        w_.Error(up, "expected [lo, hi] with 1 <= lo <= hi", &u);
        return;
      }
      d.lo = lo;
      d.hi = hi;
    } else {
      d.kind = LengthDist::Kind::kLognormal;
      const YAML::Node l = n["lognormal"];
      const std::string lp = Walker::Join(path, "lognormal");
      if (!w_.Map(l, lp, {"mean", "median", "p90"})) {
        w_.Error(lp, "expected {mean|median: M, p90: Q}", &l);
        return;
      }
      double mean = 0, median = 0, p90 = 0;
      w_.Number(l, lp, "mean", &mean, 0, true);
      w_.Number(l, lp, "median", &median, 0, true);
      w_.Number(l, lp, "p90", &p90, 0, true);
      if ((mean > 0) == (median > 0) || p90 <= 0) {
        w_.Error(lp, "give p90 and exactly one of mean, median", &l);
        return;
      }
      if (median > 0) {
        if (p90 <= median) {
          w_.Error(Walker::Join(lp, "p90"), "must be > median", &l);
          return;
        }
        d.mu = std::log(median);
        d.sigma = (std::log(p90) - d.mu) / kZ90;
      } else {
        // mean = exp(mu + s^2/2), p90 = exp(mu + z s)  =>  s^2/2 - z s + ln(p90/mean) = 0.
        const double r = std::log(p90 / mean);
        const double disc = kZ90 * kZ90 - 2 * r;
        if (r <= 0 || disc < 0) {
          w_.Error(Walker::Join(lp, "p90"),
                   absl::StrFormat("no lognormal has mean %g and p90 %g (p90/mean must be in "
                                   "(1, %.3f])",
                                   mean, p90, std::exp(kZ90 * kZ90 / 2)),
                   &l);
          return;
        }
        d.sigma = kZ90 - std::sqrt(disc);
        d.mu = std::log(mean) - d.sigma * d.sigma / 2;
      }
    }
    *out = d;
  }

  void Services(const YAML::Node& n) {
    if (!n.IsDefined() || !n.IsSequence()) {
      w_.Error("services", "expected a sequence of services", &n);
      return;
    }
    std::set<std::string> ids;
    for (size_t i = 0; i < n.size(); ++i) {
      const std::string path = absl::StrCat("services[", i, "]");
      const YAML::Node s = n[i];
      if (!w_.Map(s, path,
                  {"name", "count", "rate", "weight", "max_priority", "max_concurrent",
                   "max_queued", "tokens_per_minute", "priority_mix", "prompt_tokens",
                   "output_tokens", "shared_prefix_tokens"})) {
        if (!s.IsMap()) w_.Error(path, "expected a mapping", &s);
        continue;
      }
      ServiceSpec spec;
      int64_t count = 1;
      w_.String(s, path, "name", &spec.name);
      if (!IsTenantId(spec.name)) {
        w_.Error(Walker::Join(path, "name"),
                 absl::StrCat("\"", spec.name, "\" must be 1-64 characters of A-Z a-z 0-9 _ . -"),
                 &s);
      }
      w_.Integer(s, path, "count", &count, 1, static_cast<int64_t>(kMaxServices));
      if (!s["rate"].IsDefined()) w_.Error(Walker::Join(path, "rate"), "is missing", &s);
      w_.Number(s, path, "rate", &spec.rate, 0);
      w_.Number(s, path, "weight", &spec.policy.weight, 0, true);
      if (s["max_priority"].IsDefined()) {
        w_.PriorityValue(s["max_priority"], Walker::Join(path, "max_priority"),
                         &spec.policy.max_priority);
      }
      w_.Integer(s, path, "max_concurrent", &spec.policy.max_concurrent, 0);
      w_.Integer(s, path, "max_queued", &spec.policy.max_queued, 0);
      w_.Integer(s, path, "tokens_per_minute", &spec.policy.tokens_per_minute, 0);
      w_.Integer(s, path, "shared_prefix_tokens", &spec.shared_prefix_tokens, 0, 65536);
      const YAML::Node mix = s["priority_mix"];
      const std::string mp = Walker::Join(path, "priority_mix");
      if (mix.IsDefined()) {
        if (!mix.IsMap()) {
          w_.Error(mp, "expected a mapping like {interactive: 3, batch: 1}", &mix);
        } else {
          double total = 0;
          for (auto it = mix.begin(); it != mix.end(); ++it) {
            const YAML::Node key = it->first;
            Priority p;
            if (!w_.PriorityValue(key, mp, &p)) continue;
            double weight = 0;
            w_.Number(mix, mp, key.Scalar().c_str(), &weight, 0);
            total += weight;
            spec.priority_mix.push_back({p, weight});
          }
          if (total <= 0) w_.Error(mp, "weights must not all be 0", &mix);
        }
      } else {
        spec.priority_mix.push_back({spec.policy.max_priority, 1.0});
      }
      Length(s["prompt_tokens"], Walker::Join(path, "prompt_tokens"), &spec.prompt_tokens);
      Length(s["output_tokens"], Walker::Join(path, "output_tokens"), &spec.output_tokens);
      for (int64_t k = 1; k <= count; ++k) {
        ServiceSpec one = spec;
        if (count > 1) {
          one.name = count < 100 ? absl::StrFormat("%s-%02d", spec.name, k)
                                 : absl::StrCat(spec.name, "-", k);
        }
        one.policy.id = one.name;
        one.prefix_group = static_cast<int32_t>(i);
        if (!ids.insert(one.name).second) {
          w_.Error(Walker::Join(path, "name"),
                   absl::StrCat("service \"", one.name, "\" appears twice"), &s);
          break;
        }
        in_.services.push_back(std::move(one));
      }
    }
    if (in_.services.empty() && w_.errors().empty()) {
      w_.Error("services", "needs at least one service", &n);
    }
    if (in_.services.size() > kMaxServices) {
      w_.Error(
          "services",
          absl::StrCat(in_.services.size(), " services (counts expanded); at most ", kMaxServices),
          &n);
    }
  }

  void Simulation(const YAML::Node& n) {
    const std::string path = "simulation";
    SimulationSpec& s = in_.simulation;
    if (!w_.Map(n, path, {"duration_seconds", "warmup_seconds", "drain_seconds", "seed"})) return;
    w_.Number(n, path, "duration_seconds", &s.duration_seconds, 0, true);
    w_.Number(n, path, "warmup_seconds", &s.warmup_seconds, 0);
    w_.Number(n, path, "drain_seconds", &s.drain_seconds, 0);
    w_.Integer(n, path, "seed", &s.seed, 0);
    if (s.warmup_seconds >= s.duration_seconds) {
      w_.Error(Walker::Join(path, "warmup_seconds"),
               absl::StrCat("must be < duration_seconds (", s.duration_seconds, ")"), &n);
    }
  }

  void TargetsField(const YAML::Node& n) {
    const std::string path = "targets";
    if (!w_.Map(n, path, {"max_rejected_fraction", "emergency", "interactive", "batch"})) return;
    w_.Number(n, path, "max_rejected_fraction", &in_.targets.max_rejected_fraction, 0, false, 1);
    for (Priority p : {Priority::kEmergency, Priority::kInteractive, Priority::kBatch}) {
      const std::string name(PriorityName(p));
      const std::string cp = Walker::Join(path, name);
      const YAML::Node c = n[name];
      if (!w_.Map(c, cp, {"ttft_p99_seconds", "tpot_p99_seconds"})) continue;
      ClassTarget& t = in_.targets.classes[PriorityIndex(p)];
      double v = 0;
      if (c["ttft_p99_seconds"].IsDefined()) {
        w_.Number(c, cp, "ttft_p99_seconds", &v, 0, true);
        t.ttft_p99_seconds = v;
      }
      if (c["tpot_p99_seconds"].IsDefined()) {
        w_.Number(c, cp, "tpot_p99_seconds", &v, 0, true);
        t.tpot_p99_seconds = v;
      }
    }
  }

  std::string base_dir_;
  Walker w_;
  PlanInput in_;
};

}  // namespace

absl::StatusOr<PlanInput> ParsePlanInput(std::string_view yaml_text, const std::string& base_dir) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml_text));
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("not valid YAML (line ", e.mark.line + 1, "): ", e.msg));
  }
  return PlanParser(base_dir).Parse(root);
}

absl::StatusOr<PlanInput> LoadPlanInput(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  std::ostringstream text;
  text << f.rdbuf();
  const std::string dir = std::filesystem::path(path).parent_path().string();
  absl::StatusOr<PlanInput> in = ParsePlanInput(text.str(), dir.empty() ? "." : dir);
  if (!in.ok()) {
    return absl::Status(in.status().code(), absl::StrCat(path, ":\n", in.status().message()));
  }
  return in;
}

}  // namespace dsinfer::capacity
