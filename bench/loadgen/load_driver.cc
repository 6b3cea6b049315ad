// The driver loop: launches requests when due, collects ended streams, drains, cancels leftovers.
#include "bench/loadgen/load_driver.h"

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <memory>
#include <mutex>
#include <random>
#include <unordered_map>
#include <unordered_set>

#include "absl/strings/str_cat.h"

namespace dsinfer::loadgen {
namespace {

// Words for text prompts: most are one token each with a leading space.
constexpr const char* kWords[] = {
    "county",  "health",   "permit",   "office", "water",   "road",     "school",  "clinic",
    "report",  "service",  "request",  "record", "village", "market",   "weather", "flood",
    "repair",  "hospital", "license",  "budget", "police",  "fire",     "bus",     "power",
    "housing", "farm",     "tax",      "court",  "library", "park",     "bridge",  "grain",
    "the",     "of",       "and",      "for",    "please",  "summary",  "status",  "update",
    "citizen", "form",     "deadline", "notice", "meeting", "schedule", "public",  "safety"};

Clock::duration Seconds(double s) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
}

// Per-tenant request factory with its own random stream (reproducible per seed).
class RequestFactory {
 public:
  RequestFactory(const WorkloadSpec& spec, int32_t tenant)
      : spec_(spec),
        t_(spec.tenants[tenant]),
        tenant_(tenant),
        rng_(spec.seed * 1000003ULL + static_cast<uint64_t>(tenant) * 7919ULL + 17) {
    std::uniform_int_distribution<int32_t> id(spec.token_id_lo, spec.token_id_hi - 1);
    for (int32_t i = 0; i < t_.shared_prefix_tokens; ++i) prefix_.push_back(id(rng_));
  }

  double NextGap(double rate) { return std::exponential_distribution<double>(rate)(rng_); }

  void Build(int64_t seq, CallRecord* rec, LoadRequest* req) {
    const int32_t prompt_len = static_cast<int32_t>(Uniform(t_.prompt_tokens));
    const int32_t max_tokens = static_cast<int32_t>(Uniform(t_.output_tokens));
    rec->seq = seq;
    rec->tenant = tenant_;
    rec->priority = DrawPriority();
    rec->prompt_tokens = prompt_len;
    rec->max_tokens = max_tokens;
    rec->ignore_eos = t_.ignore_eos;
    if (t_.text_prompt) {
      std::string text;
      std::uniform_int_distribution<size_t> w(0, std::size(kWords) - 1);
      for (int32_t i = 0; i < prompt_len; ++i) {
        if (i > 0) text += ' ';
        text += kWords[w(rng_)];
      }
      req->text = std::move(text);
      req->text_prompt = true;
      req->chat = t_.chat;
    } else {
      std::uniform_int_distribution<int32_t> id(spec_.token_id_lo, spec_.token_id_hi - 1);
      req->token_ids.reserve(prompt_len);
      for (int32_t i = 0; i < prompt_len; ++i) {
        req->token_ids.push_back(i < static_cast<int32_t>(prefix_.size()) ? prefix_[i] : id(rng_));
      }
    }
    req->max_tokens = max_tokens;
    req->ignore_eos = t_.ignore_eos;
    req->priority = rec->priority;
    req->client_request_id = absl::StrCat("lg-", tenant_, "-", seq);
  }

 private:
  int64_t Uniform(IntRange r) { return std::uniform_int_distribution<int64_t>(r.lo, r.hi)(rng_); }

  v1::Priority DrawPriority() {
    if (t_.priority_mix.empty()) return v1::PRIORITY_UNSPECIFIED;
    double total = 0;
    for (const auto& [p, w] : t_.priority_mix) total += w;
    if (total <= 0) return t_.priority_mix.front().first;
    double x = std::uniform_real_distribution<double>(0, total)(rng_);
    for (const auto& [p, w] : t_.priority_mix) {
      if (x < w) return p;
      x -= w;
    }
    return t_.priority_mix.back().first;
  }

  const WorkloadSpec& spec_;
  const TenantSpec& t_;
  int32_t tenant_;
  std::mt19937_64 rng_;
  std::vector<int32_t> prefix_;
};

struct ClosedClient {
  int32_t tenant = 0;
  bool busy = false;
  Clock::time_point next;
};

struct OpenArrivals {
  int32_t tenant = 0;
  double rate = 0;
  Clock::time_point next;
};

}  // namespace

RunResult LoadDriver::Run() {
  const int32_t num_tenants = static_cast<int32_t>(spec_.tenants.size());
  std::vector<RequestFactory> factories;
  for (int32_t i = 0; i < num_tenants; ++i) factories.emplace_back(spec_, i);

  // Shared with the transport's threads.
  std::mutex mu;
  std::condition_variable cv;
  std::unordered_map<int64_t, StreamCall*> open;
  std::unordered_set<int64_t> ended;
  std::deque<CallRecord> done_queue;
  RunResult result;

  const CallDone on_done = [&](StreamCall* call, CallRecord&& rec) {
    std::lock_guard<std::mutex> lock(mu);
    auto it = open.find(rec.seq);
    if (it != open.end() && it->second == call) {
      open.erase(it);
      ended.insert(rec.seq);
      ++result.ended;
    } else if (ended.count(rec.seq)) {
      ++result.duplicate_ends;
    } else {
      ++result.unknown_ends;
    }
    done_queue.push_back(std::move(rec));
    cv.notify_all();
  };

  result.t0 = Clock::now();
  const Clock::time_point t0 = result.t0;
  const Clock::time_point t_duration = t0 + Seconds(spec_.duration_s);

  std::vector<OpenArrivals> arrivals;
  std::vector<ClosedClient> clients;
  for (int32_t i = 0; i < num_tenants; ++i) {
    const TenantSpec& t = spec_.tenants[i];
    const Clock::time_point start = t0 + Seconds(t.start_s);
    if (t.rate > 0) {
      const double rate = t.rate * t.flood_factor;
      arrivals.push_back({i, rate, start + Seconds(factories[i].NextGap(rate))});
    } else {
      const int32_t n =
          std::max<int32_t>(1, static_cast<int32_t>(std::lround(t.concurrency * t.flood_factor)));
      for (int32_t c = 0; c < n; ++c) clients.push_back({i, false, start});
    }
  }
  std::vector<int64_t> started_per_tenant(num_tenants, 0);
  int64_t next_seq = 0;

  auto can_start = [&](int32_t tenant) {
    if (next_seq >= spec_.max_requests) return false;
    const int64_t cap = spec_.tenants[tenant].max_requests;
    return cap == 0 || started_per_tenant[tenant] < cap;
  };
  auto launch = [&](int32_t tenant, int32_t client) {
    CallRecord rec;
    LoadRequest req;
    factories[tenant].Build(next_seq++, &rec, &req);
    rec.client = client;
    ++started_per_tenant[tenant];
    ++result.started;
    const int64_t seq = rec.seq;
    StreamCall* call = transport_.NewCall(std::move(rec), req, on_done);
    {
      std::lock_guard<std::mutex> lock(mu);
      open.emplace(seq, call);
    }
    call->Start();
  };

  Clock::time_point next_progress = t0 + std::chrono::seconds(5);
  auto progress = [&](Clock::time_point now, const char* phase) {
    if (now < next_progress) return;
    next_progress = now + std::chrono::seconds(5);
    size_t n_open;
    {
      std::lock_guard<std::mutex> lock(mu);
      n_open = open.size();
    }
    std::fprintf(stderr, "[loadgen%s%s] %s t=%.0fs started=%lld ended=%zu open=%zu\n",
                 spec_.label.empty() ? "" : " ", spec_.label.c_str(), phase,
                 std::chrono::duration<double>(now - t0).count(),
                 static_cast<long long>(result.started), result.records.size(), n_open);
  };

  auto collect = [&](std::deque<CallRecord>& local, Clock::time_point now) {
    for (CallRecord& rec : local) {
      if (rec.client >= 0) {
        ClosedClient& c = clients[rec.client];
        c.busy = false;
        const TenantSpec& t = spec_.tenants[c.tenant];
        c.next = now + Seconds(rec.code == absl::StatusCode::kOk ? t.think_s : t.reject_backoff_s);
      }
      result.records.push_back(std::move(rec));
    }
    local.clear();
  };

  // Phase 1: arrivals until the duration or the request count runs out. Each pass starts at
  // most what is due; the pass count is bounded by the time limit (waits end at the next due time).
  std::deque<CallRecord> local;
  for (;;) {
    Clock::time_point now = Clock::now();
    {
      std::lock_guard<std::mutex> lock(mu);
      local.swap(done_queue);
    }
    collect(local, now);
    if (now >= t_duration || next_seq >= spec_.max_requests) break;
    progress(now, "run");
    Clock::time_point wake = t_duration;
    for (OpenArrivals& a : arrivals) {
      // Bounded: each iteration starts a request or moves `next` past `now`.
      while (a.next <= now && can_start(a.tenant)) {
        launch(a.tenant, -1);
        a.next += Seconds(factories[a.tenant].NextGap(a.rate));
      }
      if (can_start(a.tenant)) wake = std::min(wake, a.next);
    }
    for (size_t c = 0; c < clients.size(); ++c) {
      ClosedClient& cl = clients[c];
      if (cl.busy || !can_start(cl.tenant)) continue;
      if (cl.next <= now) {
        launch(cl.tenant, static_cast<int32_t>(c));
        cl.busy = true;
      } else {
        wake = std::min(wake, cl.next);
      }
    }
    std::unique_lock<std::mutex> lock(mu);
    cv.wait_until(lock, std::min(wake, next_progress), [&] { return !done_queue.empty(); });
  }
  result.t_stop = Clock::now();

  // Phase 2: let open streams finish, bounded by drain_s; then cancel what is left.
  const Clock::time_point drain_until = result.t_stop + Seconds(spec_.drain_s);
  for (;;) {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait_until(lock, std::min(drain_until, Clock::now() + std::chrono::seconds(5)),
                  [&] { return open.empty() || !done_queue.empty(); });
    local.swap(done_queue);
    const bool all_ended = open.empty();
    lock.unlock();
    const Clock::time_point now = Clock::now();
    collect(local, now);
    if (all_ended || now >= drain_until) break;
    progress(now, "drain");
  }
  {
    std::unique_lock<std::mutex> lock(mu);
    result.cancelled_at_drain = static_cast<int64_t>(open.size());
    for (auto& [seq, call] : open) call->Cancel();
    cv.wait_for(lock, std::chrono::seconds(10), [&] { return open.empty(); });
    result.lost = static_cast<int64_t>(open.size());
    local.swap(done_queue);
  }
  collect(local, Clock::now());
  result.t_end = Clock::now();
  return result;
}

}  // namespace dsinfer::loadgen
