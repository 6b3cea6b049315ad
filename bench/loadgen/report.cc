// Report: per-group statistics over the measurement window and the stream-accounting checks.
#include "bench/loadgen/report.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace dsinfer::loadgen {
namespace {

using nlohmann::json;

std::string CodeName(absl::StatusCode code) { return absl::StatusCodeToString(code); }

// Linear interpolation between order statistics; `v` is sorted.
double Quantile(const std::vector<double>& v, double q) {
  if (v.empty()) return 0;
  const double pos = q * static_cast<double>(v.size() - 1);
  const size_t i = static_cast<size_t>(pos);
  if (i + 1 >= v.size()) return v.back();
  return v[i] + (pos - static_cast<double>(i)) * (v[i + 1] - v[i]);
}

json Summary(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  double sum = 0;
  for (double x : v) sum += x;
  json j;
  j["n"] = v.size();
  j["mean"] = v.empty() ? 0.0 : sum / static_cast<double>(v.size());
  j["p50"] = Quantile(v, 0.50);
  j["p90"] = Quantile(v, 0.90);
  j["p99"] = Quantile(v, 0.99);
  j["max"] = v.empty() ? 0.0 : v.back();
  return j;
}

struct Group {
  int64_t started = 0, ok = 0, admitted = 0, admitted_failed = 0, rejected = 0;
  int64_t retry_hints = 0, tokens = 0, tokens_in_window = 0, ok_in_window = 0;
  int64_t token_messages = 0;
  std::map<std::string, int64_t> by_code;
  std::map<std::string, int64_t> by_http_status;  // OpenAI mode; "none": no answer arrived
  std::vector<double> ttft, tpot, itl, e2e, queue, time_to_rejection, retry_after;

  void Add(const CallRecord& r, Clock::time_point w0, Clock::time_point w1) {
    ++started;
    const bool is_ok = r.code == absl::StatusCode::kOk;
    ++by_code[CodeName(r.code)];
    if (protocol == Protocol::kOpenAi) {
      ++by_http_status[r.http_status == 0 ? "none" : std::to_string(r.http_status)];
    }
    if (is_ok) ++ok;
    if (r.admitted()) ++admitted;
    if (r.admitted() && !is_ok) ++admitted_failed;
    if (!r.admitted() && !is_ok) {
      ++rejected;
      time_to_rejection.push_back(r.e2e_s());
    }
    if (r.retry_after_ms >= 0) {
      ++retry_hints;
      retry_after.push_back(static_cast<double>(r.retry_after_ms) / 1e3);
    }
    tokens += r.tokens;
    token_messages += static_cast<int64_t>(r.message_s.size());
    for (size_t i = 0; i < r.message_s.size(); ++i) {
      const auto at = r.start + std::chrono::duration_cast<Clock::duration>(
                                    std::chrono::duration<double>(r.message_s[i]));
      if (at >= w0 && at <= w1) tokens_in_window += r.message_tokens[i];
    }
    if (is_ok && r.end >= w0 && r.end <= w1) ++ok_in_window;
    if (!is_ok || r.start < w0) return;  // latencies: completed requests after the warm-up
    e2e.push_back(r.e2e_s());
    if (r.usage_queue_s >= 0) queue.push_back(r.usage_queue_s);
    if (r.message_s.empty()) return;
    ttft.push_back(r.message_s.front());
    if (r.tokens > 1) {
      tpot.push_back((r.message_s.back() - r.message_s.front()) /
                     static_cast<double>(r.tokens - 1));
    }
    for (size_t i = 1; i < r.message_s.size(); ++i)
      itl.push_back(r.message_s[i] - r.message_s[i - 1]);
  }

  Protocol protocol = Protocol::kGrpc;

  json ToJson(double window_s) const {
    json j;
    j["started"] = started;
    j["ok"] = ok;
    j["admitted"] = admitted;
    j["admitted_then_failed"] = admitted_failed;
    j["rejected"] = rejected;
    j["status_codes"] = by_code;
    if (protocol == Protocol::kOpenAi) j["http_status_codes"] = by_http_status;
    j["retry_after_hints"] = retry_hints;
    j["output_tokens"] = tokens;
    j["output_tokens_in_window"] = tokens_in_window;
    j["request_throughput_rps"] = window_s > 0 ? static_cast<double>(ok_in_window) / window_s : 0;
    j["output_token_throughput_tps"] =
        window_s > 0 ? static_cast<double>(tokens_in_window) / window_s : 0;
    j["tokens_per_message"] =
        token_messages > 0 ? static_cast<double>(tokens) / static_cast<double>(token_messages) : 0;
    j["ttft_s"] = Summary(ttft);
    j["tpot_s"] = Summary(tpot);
    j["itl_s"] = Summary(itl);
    j["e2e_s"] = Summary(e2e);
    j["queue_s"] = Summary(queue);
    j["time_to_rejection_s"] = Summary(time_to_rejection);
    j["retry_after_s"] = Summary(retry_after);  // the server's hints (retry-after-ms)
    return j;
  }
};

double Secs(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

}  // namespace

json BuildReport(const WorkloadSpec& spec, const RunResult& run) {
  const Clock::time_point w0 = run.t0 + std::chrono::duration_cast<Clock::duration>(
                                            std::chrono::duration<double>(spec.warmup_s));
  const Clock::time_point w1 = std::max(run.t_stop, w0);
  const double window_s = Secs(w1 - w0);

  Group total;
  total.protocol = spec.protocol;
  std::vector<Group> tenants(spec.tenants.size(), total);
  std::map<std::string, Group> priorities;
  int64_t no_final = 0, final_not_last = 0, usage_mismatch = 0, length_mismatch = 0;
  int64_t no_request_id = 0, final_then_error = 0, duplicate_request_ids = 0;
  std::set<std::string> request_ids;
  for (const CallRecord& r : run.records) {
    total.Add(r, w0, w1);
    tenants[r.tenant].Add(r, w0, w1);
    Group& by_priority = priorities[PriorityLabel(r.priority)];
    by_priority.protocol = spec.protocol;
    by_priority.Add(r, w0, w1);
    if (r.admitted()) {
      if (r.request_id.empty()) {
        ++no_request_id;
      } else if (!request_ids.insert(r.request_id).second) {
        ++duplicate_request_ids;
      }
    }
    if (r.code == absl::StatusCode::kOk) {
      if (r.final_messages != 1) ++no_final;
      if (!r.final_was_last) ++final_not_last;
      if (r.usage_completion_tokens != r.tokens) ++usage_mismatch;
      if (r.ignore_eos &&
          (r.tokens != r.max_tokens || r.finish_reason != v1::FINISH_REASON_LENGTH)) {
        ++length_mismatch;
      }
    } else if (r.final_messages > 0) {
      ++final_then_error;
    }
  }

  json report;
  report["label"] = spec.label;
  report["protocol"] = ProtocolName(spec.protocol);
  report["target"] = spec.target;
  report["duration_s"] = spec.duration_s;
  report["warmup_s"] = spec.warmup_s;
  report["wall_s"] = Secs(run.t_end - run.t0);
  report["window_s"] = window_s;
  report["total"] = total.ToJson(window_s);
  json jt = json::object();
  for (size_t i = 0; i < tenants.size(); ++i) {
    json g = tenants[i].ToJson(window_s);
    const TenantSpec& t = spec.tenants[i];
    g["offered"] = t.rate > 0 ? json{{"rate", t.rate * t.flood_factor}}
                              : json{{"concurrency", std::lround(t.concurrency * t.flood_factor)}};
    jt[t.name] = std::move(g);
  }
  report["tenants"] = std::move(jt);
  json jp = json::object();
  for (const auto& [name, g] : priorities) jp[name] = g.ToJson(window_s);
  report["priorities"] = std::move(jp);

  json c;
  c["started"] = run.started;
  c["ended"] = run.ended;
  c["duplicate_ends"] = run.duplicate_ends;
  c["unknown_ends"] = run.unknown_ends;
  c["cancelled_at_drain"] = run.cancelled_at_drain;
  c["lost"] = run.lost;
  c["ok_without_one_final_message"] = no_final;
  c["final_message_not_last"] = final_not_last;
  c["usage_tokens_mismatch"] = usage_mismatch;
  c["ignore_eos_length_mismatch"] = length_mismatch;
  c["admitted_without_request_id"] = no_request_id;
  c["duplicate_request_ids"] = duplicate_request_ids;
  c["final_message_then_error"] = final_then_error;
  c["passed"] = run.started == run.ended && run.duplicate_ends == 0 && run.unknown_ends == 0 &&
                run.lost == 0 && no_final == 0 && final_not_last == 0 && usage_mismatch == 0 &&
                length_mismatch == 0 && no_request_id == 0 && duplicate_request_ids == 0 &&
                final_then_error == 0;
  report["checks"] = std::move(c);
  return report;
}

std::string FormatTable(const json& report) {
  std::string out = absl::StrFormat(
      "%s (%s): wall %.1f s, window %.1f s, checks %s\n", report["label"].get<std::string>(),
      report["protocol"].get<std::string>(),
      report["wall_s"].get<double>(), report["window_s"].get<double>(),
      report["checks"]["passed"].get<bool>() ? "passed" : "FAILED");
  out += absl::StrFormat("%-24s %6s %6s %6s %6s %7s %8s | %-20s | %-20s | %-20s | %s\n", "group",
                         "start", "ok", "rej", "afail", "req/s", "tok/s", "TTFT p50/p90/p99 ms",
                         "TPOT p50/p90/p99 ms", "ITL p50/p90/p99 ms", "reject p99 ms");
  auto row = [&](const std::string& name, const json& g) {
    auto ms3 = [&](const char* k) {
      const json& s = g[k];
      return absl::StrFormat("%.0f/%.0f/%.0f", s["p50"].get<double>() * 1e3,
                             s["p90"].get<double>() * 1e3, s["p99"].get<double>() * 1e3);
    };
    out += absl::StrFormat(
        "%-24s %6d %6d %6d %6d %7.2f %8.1f | %-20s | %-20s | %-20s | %.1f\n", name.substr(0, 24),
        g["started"].get<int64_t>(), g["ok"].get<int64_t>(), g["rejected"].get<int64_t>(),
        g["admitted_then_failed"].get<int64_t>(), g["request_throughput_rps"].get<double>(),
        g["output_token_throughput_tps"].get<double>(), ms3("ttft_s"), ms3("tpot_s"), ms3("itl_s"),
        g["time_to_rejection_s"]["p99"].get<double>() * 1e3);
  };
  row("total", report["total"]);
  for (const auto& [name, g] : report["tenants"].items()) row("tenant " + name, g);
  for (const auto& [name, g] : report["priorities"].items()) row("priority " + name, g);
  std::string codes;
  for (const auto& [code, n] : report["total"]["status_codes"].items()) {
    absl::StrAppend(&codes, " ", code, "=", n.get<int64_t>());
  }
  if (report["total"].contains("http_status_codes")) {
    absl::StrAppend(&codes, " (HTTP");
    for (const auto& [status, n] : report["total"]["http_status_codes"].items()) {
      absl::StrAppend(&codes, " ", status, "=", n.get<int64_t>());
    }
    absl::StrAppend(&codes, ")");
  }
  out += "status codes:" + codes + "\n";
  const json& c = report["checks"];
  out += absl::StrFormat(
      "streams: started %d ended %d duplicate %d unknown %d cancelled-at-drain %d lost %d; "
      "bad finals %d, usage mismatches %d, length mismatches %d, duplicate request ids %d\n",
      c["started"].get<int64_t>(), c["ended"].get<int64_t>(), c["duplicate_ends"].get<int64_t>(),
      c["unknown_ends"].get<int64_t>(), c["cancelled_at_drain"].get<int64_t>(),
      c["lost"].get<int64_t>(),
      c["ok_without_one_final_message"].get<int64_t>() +
          c["final_message_not_last"].get<int64_t>() + c["final_message_then_error"].get<int64_t>(),
      c["usage_tokens_mismatch"].get<int64_t>(), c["ignore_eos_length_mismatch"].get<int64_t>(),
      c["duplicate_request_ids"].get<int64_t>());
  return out;
}

}  // namespace dsinfer::loadgen
