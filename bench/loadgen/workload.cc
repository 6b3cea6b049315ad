// Workload spec parsing: JSON file and flags, validated once.
#include "bench/loadgen/workload.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "nlohmann/json.hpp"
#include "src/core/status_macros.h"

namespace dsinfer::loadgen {
namespace {

using nlohmann::json;

absl::StatusOr<v1::Priority> PriorityFromName(const std::string& name) {
  if (name == "emergency") return v1::PRIORITY_EMERGENCY;
  if (name == "interactive") return v1::PRIORITY_INTERACTIVE;
  if (name == "batch") return v1::PRIORITY_BATCH;
  if (name == "unspecified") return v1::PRIORITY_UNSPECIFIED;
  return absl::InvalidArgumentError(
      absl::StrCat("priority '", name, "': expected emergency|interactive|batch|unspecified"));
}

absl::StatusOr<Protocol> ProtocolFromName(const std::string& key, const std::string& name) {
  if (name == "grpc") return Protocol::kGrpc;
  if (name == "openai") return Protocol::kOpenAi;
  return absl::InvalidArgumentError(absl::StrCat(key, ": '", name, "': expected grpc|openai"));
}

absl::StatusOr<double> ToDouble(const std::string& key, const std::string& v) {
  double d = 0;
  if (!absl::SimpleAtod(v, &d) || !std::isfinite(d)) {
    return absl::InvalidArgumentError(absl::StrCat(key, ": '", v, "' is not a number"));
  }
  return d;
}

absl::StatusOr<int64_t> ToInt(const std::string& key, const std::string& v) {
  int64_t i = 0;
  if (!absl::SimpleAtoi(v, &i)) {
    return absl::InvalidArgumentError(absl::StrCat(key, ": '", v, "' is not an integer"));
  }
  return i;
}

// "A:B" or "A" (a fixed value).
absl::StatusOr<IntRange> ToRange(const std::string& key, const std::string& v) {
  std::vector<std::string> parts = absl::StrSplit(v, ':');
  if (parts.size() > 2) return absl::InvalidArgumentError(absl::StrCat(key, ": expected A:B"));
  ASSIGN_OR_RETURN(int64_t lo, ToInt(key, parts[0]));
  int64_t hi = lo;
  if (parts.size() == 2) {
    ASSIGN_OR_RETURN(hi, ToInt(key, parts[1]));
  }
  return IntRange{lo, hi};
}

// "emergency=1,interactive=6,batch=3"
absl::StatusOr<std::vector<std::pair<v1::Priority, double>>> ToPriorityMix(const std::string& key,
                                                                           const std::string& v) {
  std::vector<std::pair<v1::Priority, double>> mix;
  for (absl::string_view item : absl::StrSplit(v, ',', absl::SkipEmpty())) {
    std::vector<std::string> kv = absl::StrSplit(item, absl::MaxSplits('=', 1));
    ASSIGN_OR_RETURN(v1::Priority p, PriorityFromName(kv[0]));
    double w = 1.0;
    if (kv.size() == 2) {
      ASSIGN_OR_RETURN(w, ToDouble(key, kv[1]));
    }
    mix.emplace_back(p, w);
  }
  return mix;
}

absl::StatusOr<IntRange> JsonRange(const std::string& key, const json& v) {
  if (v.is_number_integer()) return IntRange{v.get<int64_t>(), v.get<int64_t>()};
  if (!v.is_array() || v.size() != 2 || !v[0].is_number_integer() || !v[1].is_number_integer()) {
    return absl::InvalidArgumentError(absl::StrCat(key, ": expected [lo, hi] integers"));
  }
  return IntRange{v[0].get<int64_t>(), v[1].get<int64_t>()};
}

absl::StatusOr<double> JsonNumber(const std::string& key, const json& v) {
  if (!v.is_number()) return absl::InvalidArgumentError(absl::StrCat(key, ": expected a number"));
  return v.get<double>();
}

absl::StatusOr<std::string> JsonString(const std::string& key, const json& v) {
  if (!v.is_string()) return absl::InvalidArgumentError(absl::StrCat(key, ": expected a string"));
  return v.get<std::string>();
}

absl::StatusOr<TenantSpec> JsonTenant(const std::string& path, const json& t) {
  if (!t.is_object()) return absl::InvalidArgumentError(absl::StrCat(path, ": expected an object"));
  TenantSpec s;
  for (const auto& [k, v] : t.items()) {
    const std::string key = absl::StrCat(path, ".", k);
    if (k == "name") {
      ASSIGN_OR_RETURN(s.name, JsonString(key, v));
    } else if (k == "api_key") {
      ASSIGN_OR_RETURN(s.api_key, JsonString(key, v));
    } else if (k == "rate") {
      ASSIGN_OR_RETURN(s.rate, JsonNumber(key, v));
    } else if (k == "concurrency") {
      ASSIGN_OR_RETURN(double c, JsonNumber(key, v));
      s.concurrency = static_cast<int32_t>(c);
    } else if (k == "flood_factor") {
      ASSIGN_OR_RETURN(s.flood_factor, JsonNumber(key, v));
    } else if (k == "priority_mix") {
      if (v.is_string()) {
        ASSIGN_OR_RETURN(s.priority_mix, ToPriorityMix(key, v.get<std::string>()));
      } else if (v.is_object()) {
        for (const auto& [pk, pw] : v.items()) {
          ASSIGN_OR_RETURN(v1::Priority p, PriorityFromName(pk));
          ASSIGN_OR_RETURN(double w, JsonNumber(absl::StrCat(key, ".", pk), pw));
          s.priority_mix.emplace_back(p, w);
        }
      } else {
        return absl::InvalidArgumentError(absl::StrCat(key, ": expected {\"name\": weight}"));
      }
    } else if (k == "prompt_tokens") {
      ASSIGN_OR_RETURN(s.prompt_tokens, JsonRange(key, v));
    } else if (k == "output_tokens") {
      ASSIGN_OR_RETURN(s.output_tokens, JsonRange(key, v));
    } else if (k == "prompt_kind") {
      ASSIGN_OR_RETURN(std::string kind, JsonString(key, v));
      if (kind != "ids" && kind != "text" && kind != "chat") {
        return absl::InvalidArgumentError(absl::StrCat(key, ": expected ids|text|chat"));
      }
      s.text_prompt = kind != "ids";
      s.chat = kind == "chat";
    } else if (k == "shared_prefix_tokens") {
      ASSIGN_OR_RETURN(double n, JsonNumber(key, v));
      s.shared_prefix_tokens = static_cast<int32_t>(n);
    } else if (k == "ignore_eos") {
      if (!v.is_boolean()) return absl::InvalidArgumentError(absl::StrCat(key, ": expected bool"));
      s.ignore_eos = v.get<bool>();
    } else if (k == "start_s") {
      ASSIGN_OR_RETURN(s.start_s, JsonNumber(key, v));
    } else if (k == "think_s") {
      ASSIGN_OR_RETURN(s.think_s, JsonNumber(key, v));
    } else if (k == "reject_backoff_s") {
      ASSIGN_OR_RETURN(s.reject_backoff_s, JsonNumber(key, v));
    } else if (k == "max_requests") {
      ASSIGN_OR_RETURN(double n, JsonNumber(key, v));
      s.max_requests = static_cast<int64_t>(n);
    } else {
      return absl::InvalidArgumentError(absl::StrCat(key, ": unknown key"));
    }
  }
  return s;
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::InvalidArgumentError(absl::StrCat("--spec: cannot read ", path));
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

const std::set<std::string>& KnownFlags() {
  static const std::set<std::string> flags = {
      "spec",          "target",         "label",        "duration",      "max-requests",
      "warmup",        "drain",          "timeout",      "seed",          "token-ids",
      "tenants",       "api-keys",       "names",        "rate",          "concurrency",
      "prompt-tokens", "output-tokens",  "prompt-kind",  "shared-prefix", "priority-mix",
      "think",         "reject-backoff", "flood-tenant", "flood-factor",  "protocol",
      "client-threads"};
  return flags;
}

}  // namespace

const char* ProtocolName(Protocol p) { return p == Protocol::kOpenAi ? "openai" : "grpc"; }

const char* PriorityLabel(v1::Priority p) {
  switch (p) {
    case v1::PRIORITY_EMERGENCY:
      return "emergency";
    case v1::PRIORITY_INTERACTIVE:
      return "interactive";
    case v1::PRIORITY_BATCH:
      return "batch";
    default:
      return "unspecified";
  }
}

absl::StatusOr<WorkloadSpec> ParseWorkloadJson(const std::string& json_text) {
  json j = json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::InvalidArgumentError("spec: not a JSON object");
  }
  WorkloadSpec w;
  for (const auto& [k, v] : j.items()) {
    if (k == "protocol") {
      ASSIGN_OR_RETURN(std::string name, JsonString(k, v));
      ASSIGN_OR_RETURN(w.protocol, ProtocolFromName(k, name));
    } else if (k == "client_threads") {
      ASSIGN_OR_RETURN(double n, JsonNumber(k, v));
      w.client_threads = static_cast<int32_t>(n);
    } else if (k == "target") {
      ASSIGN_OR_RETURN(w.target, JsonString(k, v));
    } else if (k == "label") {
      ASSIGN_OR_RETURN(w.label, JsonString(k, v));
    } else if (k == "duration_s") {
      ASSIGN_OR_RETURN(w.duration_s, JsonNumber(k, v));
    } else if (k == "max_requests") {
      ASSIGN_OR_RETURN(double n, JsonNumber(k, v));
      w.max_requests = static_cast<int64_t>(n);
    } else if (k == "warmup_s") {
      ASSIGN_OR_RETURN(w.warmup_s, JsonNumber(k, v));
    } else if (k == "drain_s") {
      ASSIGN_OR_RETURN(w.drain_s, JsonNumber(k, v));
    } else if (k == "request_timeout_s") {
      ASSIGN_OR_RETURN(w.request_timeout_s, JsonNumber(k, v));
    } else if (k == "seed") {
      ASSIGN_OR_RETURN(double s, JsonNumber(k, v));
      w.seed = static_cast<uint64_t>(s);
    } else if (k == "token_id_range") {
      ASSIGN_OR_RETURN(IntRange r, JsonRange(k, v));
      w.token_id_lo = static_cast<int32_t>(r.lo);
      w.token_id_hi = static_cast<int32_t>(r.hi);
    } else if (k == "tenants") {
      if (!v.is_array()) return absl::InvalidArgumentError("tenants: expected an array");
      for (size_t i = 0; i < v.size(); ++i) {
        ASSIGN_OR_RETURN(TenantSpec t, JsonTenant(absl::StrCat("tenants[", i, "]"), v[i]));
        if (t.name.empty()) t.name = absl::StrCat("tenant-", i);
        w.tenants.push_back(std::move(t));
      }
    } else {
      return absl::InvalidArgumentError(absl::StrCat(k, ": unknown key"));
    }
  }
  return w;
}

absl::StatusOr<WorkloadSpec> ParseWorkload(int argc, char** argv) {
  std::map<std::string, std::string> flags;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      return absl::InvalidArgumentError("see bench/loadgen/workload.h for the flags");
    }
    if (a.rfind("--", 0) != 0) return absl::InvalidArgumentError(absl::StrCat("unexpected ", a));
    a = a.substr(2);
    std::string value;
    if (size_t eq = a.find('='); eq != std::string::npos) {
      value = a.substr(eq + 1);
      a = a.substr(0, eq);
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      return absl::InvalidArgumentError(absl::StrCat("--", a, ": needs a value"));
    }
    if (!KnownFlags().count(a))
      return absl::InvalidArgumentError(absl::StrCat("--", a, ": unknown flag"));
    flags[a] = value;
  }
  auto get = [&](const std::string& f) -> const std::string* {
    auto it = flags.find(f);
    return it == flags.end() ? nullptr : &it->second;
  };

  WorkloadSpec w;
  if (const std::string* path = get("spec")) {
    ASSIGN_OR_RETURN(std::string text, ReadFile(*path));
    auto parsed = ParseWorkloadJson(text);
    if (!parsed.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(*path, ": ", parsed.status().message()));
    }
    w = std::move(*parsed);
  }
  if (auto* v = get("protocol")) {
    ASSIGN_OR_RETURN(w.protocol, ProtocolFromName("--protocol", *v));
  }
  if (auto* v = get("client-threads")) {
    ASSIGN_OR_RETURN(int64_t n, ToInt("--client-threads", *v));
    w.client_threads = static_cast<int32_t>(std::clamp<int64_t>(n, -1, 1000));
  }
  if (auto* v = get("target")) w.target = *v;
  if (auto* v = get("label")) w.label = *v;
  if (auto* v = get("duration")) {
    ASSIGN_OR_RETURN(w.duration_s, ToDouble("--duration", *v));
  }
  if (auto* v = get("max-requests")) {
    ASSIGN_OR_RETURN(w.max_requests, ToInt("--max-requests", *v));
  }
  if (auto* v = get("warmup")) {
    ASSIGN_OR_RETURN(w.warmup_s, ToDouble("--warmup", *v));
  }
  if (auto* v = get("drain")) {
    ASSIGN_OR_RETURN(w.drain_s, ToDouble("--drain", *v));
  }
  if (auto* v = get("timeout")) {
    ASSIGN_OR_RETURN(w.request_timeout_s, ToDouble("--timeout", *v));
  }
  if (auto* v = get("seed")) {
    ASSIGN_OR_RETURN(int64_t s, ToInt("--seed", *v));
    w.seed = static_cast<uint64_t>(s);
  }
  if (auto* v = get("token-ids")) {
    ASSIGN_OR_RETURN(IntRange r, ToRange("--token-ids", *v));
    w.token_id_lo = static_cast<int32_t>(r.lo);
    w.token_id_hi = static_cast<int32_t>(r.hi);
  }

  if (!get("spec")) {
    // Tenants from flags.
    std::vector<std::string> keys, names;
    if (auto* v = get("api-keys")) keys = absl::StrSplit(*v, ',', absl::SkipEmpty());
    if (auto* v = get("names")) names = absl::StrSplit(*v, ',', absl::SkipEmpty());
    int64_t n = static_cast<int64_t>(std::max<size_t>({keys.size(), names.size(), size_t{1}}));
    if (auto* v = get("tenants")) {
      ASSIGN_OR_RETURN(n, ToInt("--tenants", *v));
    }
    if (n < 1 || n > 1000) return absl::InvalidArgumentError("--tenants: must be in [1, 1000]");
    TenantSpec base;
    if (auto* v = get("rate")) {
      ASSIGN_OR_RETURN(base.rate, ToDouble("--rate", *v));
    }
    int64_t concurrency = 0;
    if (auto* v = get("concurrency")) {
      ASSIGN_OR_RETURN(concurrency, ToInt("--concurrency", *v));
    }
    if (base.rate <= 0 && concurrency <= 0) concurrency = n;  // one closed-loop client each
    if (auto* v = get("prompt-tokens")) {
      ASSIGN_OR_RETURN(base.prompt_tokens, ToRange("--prompt-tokens", *v));
    }
    if (auto* v = get("output-tokens")) {
      ASSIGN_OR_RETURN(base.output_tokens, ToRange("--output-tokens", *v));
    }
    if (auto* v = get("prompt-kind")) {
      if (*v != "ids" && *v != "text" && *v != "chat") {
        return absl::InvalidArgumentError("--prompt-kind: ids|text|chat");
      }
      base.text_prompt = *v != "ids";
      base.chat = *v == "chat";
    }
    if (auto* v = get("shared-prefix")) {
      ASSIGN_OR_RETURN(int64_t s, ToInt("--shared-prefix", *v));
      base.shared_prefix_tokens = static_cast<int32_t>(s);
    }
    if (auto* v = get("priority-mix")) {
      ASSIGN_OR_RETURN(base.priority_mix, ToPriorityMix("--priority-mix", *v));
    }
    if (auto* v = get("think")) {
      ASSIGN_OR_RETURN(base.think_s, ToDouble("--think", *v));
    }
    if (auto* v = get("reject-backoff")) {
      ASSIGN_OR_RETURN(base.reject_backoff_s, ToDouble("--reject-backoff", *v));
    }
    for (int64_t i = 0; i < n; ++i) {
      TenantSpec t = base;
      t.name = i < static_cast<int64_t>(names.size()) ? names[i] : absl::StrCat("tenant-", i);
      if (!keys.empty()) t.api_key = keys[i % keys.size()];
      t.concurrency = static_cast<int32_t>(concurrency / n + (i < concurrency % n ? 1 : 0));
      if (base.rate <= 0 && t.concurrency == 0) continue;  // more tenants than clients
      w.tenants.push_back(std::move(t));
    }
  }

  if (auto* v = get("flood-tenant")) {
    double factor = 10;
    if (auto* f = get("flood-factor")) {
      ASSIGN_OR_RETURN(factor, ToDouble("--flood-factor", *f));
    }
    TenantSpec* target = nullptr;
    for (TenantSpec& t : w.tenants) {
      if (t.name == *v) target = &t;
    }
    int64_t index = 0;
    if (target == nullptr && absl::SimpleAtoi(*v, &index) && index >= 0 &&
        index < static_cast<int64_t>(w.tenants.size())) {
      target = &w.tenants[index];
    }
    if (target == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("--flood-tenant: no tenant '", *v, "'"));
    }
    target->flood_factor = factor;
  } else if (get("flood-factor")) {
    return absl::InvalidArgumentError("--flood-factor needs --flood-tenant");
  }
  RETURN_IF_ERROR(ValidateWorkload(w));
  return w;
}

absl::Status ValidateWorkload(const WorkloadSpec& w) {
  auto bad = [](const std::string& m) { return absl::InvalidArgumentError(m); };
  if (w.tenants.empty()) return bad("no tenants");
  if (!(w.duration_s > 0 && w.duration_s <= 3600)) return bad("duration: must be in (0, 3600] s");
  if (w.max_requests < 1 || w.max_requests > 10'000'000) {
    return bad("max_requests: must be in [1, 1e7]");
  }
  if (w.warmup_s < 0 || w.warmup_s >= w.duration_s) return bad("warmup: must be in [0, duration)");
  if (!(w.drain_s >= 0 && w.drain_s <= 3600)) return bad("drain: must be in [0, 3600] s");
  if (!(w.request_timeout_s > 0)) return bad("timeout: must be > 0");
  if (w.client_threads < 1 || w.client_threads > 64) return bad("client_threads: must be in [1, 64]");
  if (w.token_id_lo < 0 || w.token_id_hi <= w.token_id_lo)
    return bad("token ids: need 0 <= lo < hi");
  for (const TenantSpec& t : w.tenants) {
    const std::string p = absl::StrCat("tenant ", t.name, ": ");
    if (t.rate < 0 || t.concurrency < 0 || (t.rate > 0) == (t.concurrency > 0)) {
      return bad(p + "exactly one of rate > 0 (open loop) or concurrency > 0 (closed loop)");
    }
    if (!(t.flood_factor > 0) || t.flood_factor > 1000) return bad(p + "flood_factor in (0, 1000]");
    if (t.concurrency * t.flood_factor > 10000) return bad(p + "more than 10000 clients");
    if (t.prompt_tokens.lo < 1 || t.prompt_tokens.hi < t.prompt_tokens.lo) {
      return bad(p + "prompt_tokens: need 1 <= lo <= hi");
    }
    if (t.output_tokens.lo < 1 || t.output_tokens.hi < t.output_tokens.lo) {
      return bad(p + "output_tokens: need 1 <= lo <= hi");
    }
    if (t.shared_prefix_tokens < 0 || t.shared_prefix_tokens > t.prompt_tokens.lo) {
      return bad(p + "shared_prefix_tokens: must be in [0, prompt_tokens lo]");
    }
    for (const auto& [prio, weight] : t.priority_mix) {
      if (!(weight >= 0)) return bad(p + "priority weights must be >= 0");
    }
    if (t.start_s < 0 || t.start_s >= w.duration_s) return bad(p + "start_s: in [0, duration)");
    if (t.think_s < 0 || t.reject_backoff_s < 0 || t.max_requests < 0) {
      return bad(p + "think_s, reject_backoff_s, max_requests: must be >= 0");
    }
  }
  return absl::OkStatus();
}

}  // namespace dsinfer::loadgen
