#include "src/scheduler/scheduler.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "src/core/status_macros.h"
#include "src/scheduler/planner.h"

namespace dsinfer {
namespace {

std::vector<double> Weights(const std::vector<TenantPolicy>& policies) {
  std::vector<double> w;
  for (const auto& p : policies) w.push_back(p.weight);
  return w;
}

}  // namespace

const char* RejectReasonName(RejectReason r) {
  switch (r) {
    case RejectReason::kNone:
      return "none";
    case RejectReason::kInvalid:
      return "invalid";
    case RejectReason::kUnknownTenant:
      return "unknown_tenant";
    case RejectReason::kQueueFull:
      return "queue_full";
    case RejectReason::kTenantQueued:
      return "tenant_queued";
    case RejectReason::kTenantConcurrent:
      return "tenant_concurrent";
    case RejectReason::kTenantRate:
      return "tenant_rate";
    case RejectReason::kQueueTimeout:
      return "queue_timeout";
    case RejectReason::kDeadline:
      return "deadline";
  }
  return "unknown";
}

SchedulerState::SchedulerState(const SchedulerLimits& l, std::vector<TenantPolicy> policies)
    : limits(l),
      pool(l.num_kv_blocks),
      cache(l.num_kv_blocks),
      vtc(Weights(policies)),
      admission(l, static_cast<int32_t>(policies.size())) {
  for (auto& p : policies) {
    tenant_index[p.id] = static_cast<int32_t>(tenants.size());
    tenants.push_back({std::move(p)});
  }
  for (auto& q : queued) q.resize(tenants.size());
  for (auto& q : resume) q.resize(tenants.size());
  for (auto& a : last_active) a.assign(tenants.size(), -std::numeric_limits<double>::infinity());
}

absl::StatusOr<std::unique_ptr<Scheduler>> Scheduler::Create(const SchedulerLimits& limits,
                                                             std::vector<TenantPolicy> tenants) {
  if (absl::Status st = ValidateConfig(limits, tenants); !st.ok()) return st;
  return std::unique_ptr<Scheduler>(new Scheduler(limits, std::move(tenants)));
}

absl::Status Scheduler::ValidateConfig(const SchedulerLimits& limits,
                                       const std::vector<TenantPolicy>& tenants) {
  if (limits.max_batched_tokens < 1 || limits.max_running < 1 || limits.prefill_chunk < 1 ||
      limits.num_kv_blocks < 1 || limits.max_model_len < 1 || limits.max_waiting < 0 ||
      !(limits.max_queue_seconds > 0) || !(limits.queue_full_retry_seconds >= 0) ||
      limits.max_batched_tokens < limits.max_running || limits.max_preemptions_per_request < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "scheduler limits: max_batched_tokens (", limits.max_batched_tokens, "), max_running (",
        limits.max_running, "), prefill_chunk (", limits.prefill_chunk, "), num_kv_blocks (",
        limits.num_kv_blocks, "), max_model_len (", limits.max_model_len,
        ") and max_queue_seconds (", limits.max_queue_seconds, ") must be positive, max_waiting (",
        limits.max_waiting, ") and max_preemptions_per_request (",
        limits.max_preemptions_per_request,
        ") not negative, and max_batched_tokens at least max_running (every running sequence "
        "decodes each step)"));
  }
  if (!(limits.share_window_seconds >= 0) || !std::isfinite(limits.share_window_seconds)) {
    return absl::InvalidArgumentError(absl::StrCat("scheduler limits: share_window_seconds (",
                                                   limits.share_window_seconds,
                                                   ") must be finite and not negative"));
  }
  absl::flat_hash_set<std::string> ids;
  for (const auto& t : tenants) {
    if (t.id.empty() || !ids.insert(t.id).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("tenant id '", t.id, "' is empty or repeated"));
    }
    if (!(t.weight > 0) || !std::isfinite(t.weight) || t.max_concurrent < 0 || t.max_queued < 0 ||
        t.tokens_per_minute < 0 || static_cast<uint8_t>(t.max_priority) >= kNumPriorities) {
      return absl::InvalidArgumentError(
          absl::StrCat("tenant '", t.id, "': weight (", t.weight,
                       ") must be positive and finite, limits not negative, max_priority known"));
    }
  }
  return absl::OkStatus();
}

Sequence* Scheduler::Find(uint64_t id) const {
  auto it = state_.seqs.find(id);
  return it == state_.seqs.end() ? nullptr : it->second.get();
}

absl::Span<const int32_t> Scheduler::tokens(uint64_t id) const {
  const Sequence* s = Find(id);
  return s == nullptr ? absl::Span<const int32_t>() : absl::MakeConstSpan(s->tokens);
}

// ---- queues ----

void Scheduler::Enqueue(Sequence* s, bool front) {
  const int p = PriorityIndex(s->priority);
  if (front) {
    state_.resume[p][s->tenant].push_front(s);
  } else {
    state_.queued[p][s->tenant].push_back(s);
    state_.vtc.OnEnqueue(s->tenant);
  }
  ++state_.tenants[s->tenant].waiting;
  ++state_.num_waiting;
  state_.waiting_tokens += s->num_tokens();
}

void Scheduler::Dequeue(Sequence* s, bool admitted) {
  const int p = PriorityIndex(s->priority);
  auto erase = [s](std::deque<Sequence*>& q) {
    auto it = std::find(q.begin(), q.end(), s);  // the front, unless cancelled or rejected
    DSINFER_CHECK(it != q.end());
    q.erase(it);
  };
  if (s->admitted_before()) {
    erase(state_.resume[p][s->tenant]);
  } else {
    erase(state_.queued[p][s->tenant]);
    state_.vtc.OnDequeue(s->tenant, admitted);
  }
  --state_.tenants[s->tenant].waiting;
  --state_.num_waiting;
  state_.waiting_tokens -= s->num_tokens();
}

void Scheduler::InsertRunning(Sequence* s) {
  auto& v = state_.running[PriorityIndex(s->priority)];
  auto it = std::upper_bound(v.begin(), v.end(), s, [](const Sequence* a, const Sequence* b) {
    return a->admit_order < b->admit_order;
  });
  v.insert(it, s);
  s->running = true;
  ++state_.tenants[s->tenant].running;
  ++state_.num_running;
}

void Scheduler::EraseRunning(Sequence* s) {
  auto& v = state_.running[PriorityIndex(s->priority)];
  auto it = std::find(v.begin(), v.end(), s);
  DSINFER_CHECK(it != v.end());
  v.erase(it);
  s->running = false;
  --state_.tenants[s->tenant].running;
  --state_.num_running;
}

// ---- KV blocks ----

void Scheduler::ReleaseBlocks(Sequence* s) {
  for (auto it = s->blocks.rbegin(); it != s->blocks.rend(); ++it) {
    state_.pool.Release(*it);
    state_.cache.OnRelease(state_.pool, *it);
  }
  s->blocks.clear();
  s->chain.clear();
  s->num_computed = 0;
}

void Scheduler::RegisterFullBlocks(Sequence* s) {
  if (!state_.limits.prefix_caching) return;
  const size_t full =
      std::min(static_cast<size_t>(s->num_computed / kKvBlockSize), s->blocks.size());
  while (s->chain.size() < full) {
    const size_t i = s->chain.size();
    const uint64_t parent = i == 0 ? state_.PrefixRoot(*s) : s->chain[i - 1];
    if (parent == PrefixCache::kNoSerial) {
      s->chain.push_back(PrefixCache::kNoSerial);
      continue;
    }
    auto tokens = absl::MakeConstSpan(s->tokens).subspan(i * kKvBlockSize, kKvBlockSize);
    PrefixCache::Hit hit;
    if (state_.cache.Find(parent, tokens, &hit)) {
      s->chain.push_back(hit.serial);  // same content cached already (maybe our own block)
    } else {
      s->chain.push_back(state_.cache.Insert(state_.pool, parent, tokens, s->blocks[i]));
    }
  }
}

// ---- lifecycle ----

AdmitResult Scheduler::Add(NewRequest r, double now) {
  SchedulerStats& c = state_.counters;
  auto t_it = state_.tenant_index.find(r.tenant);
  if (t_it == state_.tenant_index.end()) {
    ++c.rejections[static_cast<int>(RejectReason::kUnknownTenant)];
    return {absl::PermissionDeniedError(absl::StrCat("unknown tenant '", r.tenant, "'")), 0,
            RejectReason::kUnknownTenant};
  }
  const int32_t t = t_it->second;
  TenantState& tenant = state_.tenants[t];
  AdmitResult result;
  if (state_.seqs.contains(r.id)) {
    result = {absl::AlreadyExistsError(absl::StrCat("request id ", r.id, " is already live")), 0,
              RejectReason::kInvalid};
  } else {
    result = state_.admission.Check(
        {static_cast<int64_t>(r.prompt.size()), r.max_tokens, r.priority}, tenant.policy, t,
        {state_.num_waiting, state_.waiting_tokens, tenant.waiting, tenant.running}, now);
  }
  if (!result.status.ok()) {
    ++c.rejections[static_cast<int>(result.reason)];
    ++tenant.rejected;
    return result;
  }
  const int64_t total = static_cast<int64_t>(r.prompt.size()) + r.max_tokens;
  state_.admission.Record(t, total, now);

  auto seq = std::make_unique<Sequence>();
  Sequence* s = seq.get();
  s->id = r.id;
  s->tenant = t;
  s->priority = std::max(r.priority, tenant.policy.max_priority);  // higher class = lower value
  s->tokens = std::move(r.prompt);
  s->tokens.reserve(total);
  s->prompt_len = static_cast<int64_t>(s->tokens.size());
  s->max_tokens = r.max_tokens;
  s->arrival = now;
  s->deadline = r.deadline;
  s->enqueue_order = state_.next_enqueue_order++;
  state_.seqs.emplace(r.id, std::move(seq));
  Enqueue(s, /*front=*/false);
  ++state_.version;
  return result;
}

void Scheduler::Remove(Sequence* s) {
  if (s->running) {
    ReleaseBlocks(s);
    EraseRunning(s);
  } else {
    Dequeue(s, /*admitted=*/false);
  }
  state_.seqs.erase(s->id);
}

bool Scheduler::Cancel(uint64_t id) {
  Sequence* s = Find(id);
  if (s == nullptr) return false;
  Remove(s);
  ++state_.version;
  return true;
}

void Scheduler::Preempt(Sequence* s) {
  DSINFER_CHECK(s->running);
  ReleaseBlocks(s);
  EraseRunning(s);
  ++s->preemptions;
  ++state_.counters.preemptions[PriorityIndex(s->priority)];
  Enqueue(s, /*front=*/true);
}

void Scheduler::Admit(Sequence* s, int64_t cached_tokens) {
  Dequeue(s, /*admitted=*/true);
  DSINFER_CHECK(s->blocks.empty() && s->num_computed == 0);
  if (cached_tokens > 0) {
    std::vector<PrefixCache::Hit> hits;
    const int64_t n = cached_tokens / kKvBlockSize;
    state_.cache.Match(s->tokens, n, &hits, state_.PrefixRoot(*s));
    DSINFER_CHECK(static_cast<int64_t>(hits.size()) == n);
    for (const auto& h : hits) {
      state_.pool.AddRef(h.block);
      state_.cache.OnAcquire(h.block);
      s->blocks.push_back(h.block);
      s->chain.push_back(h.serial);
    }
  }
  s->num_computed = cached_tokens;
  if (state_.limits.prefix_caching) {
    state_.counters.prefix_cache_queries += s->num_tokens();
    state_.counters.prefix_cache_hits += cached_tokens;
  }
  if (!s->admitted_before()) s->admit_order = state_.next_admit_order++;
  InsertRunning(s);
}

StepPlan Scheduler::Plan(double now) const {
  DSINFER_CHECK(state_.in_flight.empty());  // OnTokens closes the previous step first
  return Planner(state_, now).Run();
}

void Scheduler::Commit(StepPlan& plan) {
  DSINFER_CHECK(!plan.committed && plan.state_version == state_.version &&
                state_.in_flight.empty());
  SchedulerStats& c = state_.counters;
  for (const Rejection& r : plan.rejected) {
    Sequence* s = Find(r.seq_id);
    DSINFER_CHECK(s != nullptr);
    ++c.rejections[static_cast<int>(r.reason)];
    ++state_.tenants[s->tenant].rejected;
    Remove(s);
  }
  for (uint64_t id : plan.preempted) Preempt(Find(id));
  for (int32_t b : plan.evicted_blocks) state_.cache.Evict(state_.pool, b);

  state_.in_flight.reserve(plan.items.size());
  for (const StepItem& item : plan.items) {
    Sequence* s = Find(item.seq_id);
    DSINFER_CHECK(s != nullptr);
    if (item.admitted) Admit(s, item.cached_tokens);
    DSINFER_CHECK(s->running && s->num_computed == item.start_pos);
    const int64_t need = BlocksForTokens(item.start_pos + item.num_tokens + item.lookahead) -
                         static_cast<int64_t>(s->blocks.size());
    if (need > 0) {
      DSINFER_CHECK(state_.pool.Allocate(static_cast<int32_t>(need), &s->blocks).ok());
    }
    DSINFER_CHECK(static_cast<int32_t>(s->blocks.size()) == item.num_blocks);
    std::copy(s->blocks.begin(), s->blocks.end(), plan.block_ids.begin() + item.block_offset);

    const int64_t from = std::max(item.start_pos, s->prompt_charged);
    const int64_t to = std::min(item.start_pos + item.num_tokens, s->prompt_len);
    if (to > from) {
      state_.vtc.Charge(s->tenant, to - from, 0);
      state_.tenants[s->tenant].input_tokens += to - from;
    }
    s->prompt_charged = std::max(s->prompt_charged, to);
    s->pending_tokens = item.num_tokens;
    s->pending_sample = item.sample;
    s->pending_lookahead = item.lookahead;
    s->pending_drafts.clear();
    s->pending_accepted = 0;
    if (item.num_draft > 0) {
      DSINFER_CHECK(static_cast<int32_t>(s->drafts.size()) >= item.num_draft && item.sample);
      s->pending_drafts.assign(s->drafts.begin(), s->drafts.begin() + item.num_draft);
    }
    s->drafts.clear();
    s->last_step = static_cast<uint64_t>(c.steps);
    state_.in_flight.push_back(s->id);
  }
  plan.committed = true;
  state_.deferred_last_step = !plan.deferred.empty();
  c.deferred_sequences += static_cast<int64_t>(plan.deferred.size());
  c.held_sequences += static_cast<int64_t>(plan.held.size());
  // Who is present in each class, for the step share's window (held sequences count: running).
  for (int p = 0; p < kNumPriorities; ++p) {
    std::vector<double>& seen = state_.last_active[p];
    for (const Sequence* s : state_.running[p]) seen[s->tenant] = plan.now;
    for (size_t t = 0; t < state_.tenants.size(); ++t) {
      if (!state_.resume[p][t].empty() || !state_.queued[p][t].empty()) seen[t] = plan.now;
    }
  }
  ++c.steps;
  ++state_.version;
}

void Scheduler::OnTokens(absl::Span<const std::pair<uint64_t, int32_t>> sampled,
                         absl::Span<const uint64_t> finished) {
  for (uint64_t id : state_.in_flight) {
    Sequence* s = Find(id);
    if (s == nullptr) continue;
    // Drafts' KV counts once they are accepted (each by the token after it, below).
    s->num_computed += s->pending_tokens - static_cast<int64_t>(s->pending_drafts.size());
    s->pending_tokens = 0;
  }
  for (const auto& [id, token] : sampled) {
    Sequence* s = Find(id);
    if (s == nullptr) continue;
    if (s->pending_sample) {
      s->pending_sample = false;
    } else {
      // A further token of a drafted item: the token before it was the next draft, accepted.
      DSINFER_CHECK(s->pending_accepted < static_cast<int64_t>(s->pending_drafts.size()) &&
                    s->tokens.back() == s->pending_drafts[s->pending_accepted]);
      ++s->pending_accepted;
      ++s->num_computed;
    }
    s->tokens.push_back(token);
    state_.vtc.Charge(s->tenant, 0, 1);
    ++state_.tenants[s->tenant].output_tokens;
  }
  for (uint64_t id : state_.in_flight) {
    Sequence* s = Find(id);
    if (s == nullptr) continue;
    // Rejected drafts' slots and the lookahead are rolled back: blocks past the computed
    // tokens go back to the pool (a cache row they hold is rewritten before it is read).
    s->pending_drafts.clear();
    s->pending_accepted = 0;
    s->pending_lookahead = 0;
    while (static_cast<int64_t>(s->blocks.size()) > BlocksForTokens(s->num_computed)) {
      state_.pool.Release(s->blocks.back());
      state_.cache.OnRelease(state_.pool, s->blocks.back());
      s->blocks.pop_back();
    }
    RegisterFullBlocks(s);
  }
  for (uint64_t id : finished) {
    if (Sequence* s = Find(id)) Remove(s);
  }
  for (uint64_t id : state_.in_flight) {
    Sequence* s = Find(id);
    if (s == nullptr) continue;
    DSINFER_CHECK(!s->pending_sample);  // a sampling item got no token and did not finish
    if (s->generated() >= s->max_tokens) Remove(s);
  }
  state_.in_flight.clear();
  ++state_.version;
}

// ---- introspection ----

void Scheduler::SetDrafts(uint64_t id, absl::Span<const int32_t> tokens) {
  Sequence* s = Find(id);
  if (s == nullptr || !s->running) return;
  s->drafts.assign(tokens.begin(), tokens.end());
  ++state_.version;
}

SchedulerStats Scheduler::Stats() const {
  SchedulerStats out = state_.counters;
  for (int p = 0; p < kNumPriorities; ++p) {
    int32_t n = 0;
    for (const auto& q : state_.resume[p]) n += static_cast<int32_t>(q.size());
    for (const auto& q : state_.queued[p]) n += static_cast<int32_t>(q.size());
    out.waiting[p] = n;
  }
  out.running = state_.num_running;
  out.kv_blocks_total = state_.pool.num_blocks();
  out.kv_blocks_free = state_.pool.num_free();
  out.kv_blocks_used = out.kv_blocks_total - out.kv_blocks_free;
  out.kv_blocks_cached = state_.cache.num_cached();
  out.kv_blocks_evictable = state_.cache.num_evictable();
  const auto& counters = state_.vtc.counters();
  for (size_t t = 0; t < state_.tenants.size(); ++t) {
    const TenantState& ts = state_.tenants[t];
    out.tenants.push_back({ts.policy.id, counters[t], ts.waiting, ts.running, ts.input_tokens,
                           ts.output_tokens, ts.rejected});
  }
  return out;
}

absl::Status Scheduler::Validate() const {
  const SchedulerState& st = state_;
  const int32_t nb = st.pool.num_blocks();
  std::vector<int32_t> refs(nb, 0);
  int32_t waiting = 0, running = 0;
  int64_t waiting_tokens = 0;
  std::vector<int32_t> t_waiting(st.tenants.size()), t_running(st.tenants.size());
  for (const auto& [id, seq] : st.seqs) {
    const Sequence& s = *seq;
    for (int32_t b : s.blocks) ++refs[b];
    if (s.running) {
      ++running;
      ++t_running[s.tenant];
      const int64_t want =
          BlocksForTokens(s.num_computed + s.pending_tokens + s.pending_lookahead);
      if (static_cast<int64_t>(s.blocks.size()) != want) {
        return absl::InternalError(absl::StrCat("sequence ", id, " holds ", s.blocks.size(),
                                                " blocks for ", s.num_computed, "+",
                                                s.pending_tokens, "+", s.pending_lookahead,
                                                " tokens"));
      }
      if (s.num_computed >= s.num_tokens()) {
        return absl::InternalError(absl::StrCat("sequence ", id, " computed all its tokens"));
      }
    } else {
      ++waiting;
      ++t_waiting[s.tenant];
      waiting_tokens += s.num_tokens();
      if (!s.blocks.empty() || s.num_computed != 0) {
        return absl::InternalError(absl::StrCat("waiting sequence ", id, " holds KV"));
      }
    }
    if (s.generated() > s.max_tokens) {
      return absl::InternalError(absl::StrCat("sequence ", id, " exceeded max_tokens"));
    }
  }
  int32_t free = 0, cached = 0, evictable = 0;
  for (int32_t b = 0; b < nb; ++b) {
    const bool is_cached = st.cache.cached(b);
    cached += is_cached;
    const int32_t want = refs[b] + (is_cached ? 1 : 0);
    if (st.pool.ref_count(b) != want) {
      return absl::InternalError(absl::StrCat("block ", b, " has ", st.pool.ref_count(b),
                                              " references, holders account for ", want));
    }
    free += want == 0;
    const bool should_evict = is_cached && refs[b] == 0;
    if (st.cache.evictable(b) != should_evict) {
      return absl::InternalError(absl::StrCat("block ", b, " evictable flag is wrong"));
    }
    evictable += should_evict;
  }
  int32_t lru = 0;
  for (int32_t b = st.cache.lru_front(); b >= 0; b = st.cache.lru_next(b)) ++lru;
  if (free != st.pool.num_free() || cached != st.cache.num_cached() ||
      evictable != st.cache.num_evictable() || lru != evictable) {
    return absl::InternalError(absl::StrCat("pool/cache counts: free ", st.pool.num_free(), " vs ",
                                            free, ", cached ", st.cache.num_cached(), " vs ",
                                            cached, ", evictable ", st.cache.num_evictable(),
                                            " vs ", evictable, ", lru ", lru));
  }
  int32_t queued = 0;
  for (int p = 0; p < kNumPriorities; ++p) {
    for (size_t t = 0; t < st.resume[p].size(); ++t) {
      queued += static_cast<int32_t>(st.resume[p][t].size());
      for (const Sequence* s : st.resume[p][t]) {
        if (s->running || !s->admitted_before() || PriorityIndex(s->priority) != p ||
            s->tenant != static_cast<int32_t>(t)) {
          return absl::InternalError("resume queue holds a wrong sequence");
        }
      }
    }
    for (size_t t = 0; t < st.queued[p].size(); ++t) {
      queued += static_cast<int32_t>(st.queued[p][t].size());
      if (st.vtc.backlog(static_cast<int32_t>(t)) < 0) return absl::InternalError("backlog");
    }
    for (size_t i = 0; i < st.running[p].size(); ++i) {
      if (!st.running[p][i]->running ||
          (i > 0 && st.running[p][i - 1]->admit_order >= st.running[p][i]->admit_order)) {
        return absl::InternalError("running list out of order");
      }
    }
  }
  if (waiting != st.num_waiting || running != st.num_running || queued != waiting ||
      waiting_tokens != st.waiting_tokens || running > st.limits.max_running) {
    return absl::InternalError(absl::StrCat("counts: waiting ", st.num_waiting, " vs ", waiting,
                                            " (queues ", queued, "), running ", st.num_running,
                                            " vs ", running));
  }
  for (size_t t = 0; t < st.tenants.size(); ++t) {
    if (t_waiting[t] != st.tenants[t].waiting || t_running[t] != st.tenants[t].running) {
      return absl::InternalError(absl::StrCat("tenant ", st.tenants[t].policy.id, " counts"));
    }
  }
  return absl::OkStatus();
}

}  // namespace dsinfer
