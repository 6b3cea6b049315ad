#include "src/scheduler/planner.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/strings/str_format.h"
#include "src/core/status_macros.h"

namespace dsinfer {

Planner::Planner(const SchedulerState& state, double now) : st_(state), now_(now) {
  sim_.budget = st_.limits.max_batched_tokens;
  sim_.running = st_.num_running;
  sim_.free = st_.pool.num_free();
  sim_.evictable = st_.cache.num_evictable();
  sim_.lru_cursor = st_.cache.lru_front();
  sim_.vtc = st_.vtc.counters();
  for (int p = 0; p < kNumPriorities; ++p) {
    sim_.queue_pos[p].assign(st_.tenants.size(), 0);
    sim_.resume_pos[p].assign(st_.tenants.size(), 0);
    sim_.running_by[p].assign(st_.tenants.size(), 0);
    sim_.prefill_by[p].assign(st_.tenants.size(), 0);
  }
}

int32_t Planner::Ref(int32_t block) const {
  auto it = sim_.ref_delta.find(block);
  return st_.pool.ref_count(block) + (it == sim_.ref_delta.end() ? 0 : it->second);
}

// Mirrors Scheduler::ReleaseBlocks: last block first; cached blocks left with only the cache's
// reference become evictable in that order.
void Planner::ReleaseBlocks(const Sequence& s) {
  for (auto it = s.blocks.rbegin(); it != s.blocks.rend(); ++it) {
    const int32_t b = *it;
    --sim_.ref_delta[b];
    const int32_t r = Ref(b);
    if (r == 0) {
      ++sim_.free;
    } else if (r == 1 && st_.cache.cached(b) && !sim_.evicted.contains(b)) {
      ++sim_.evictable;
      sim_.late.push_back(b);
    }
  }
}

void Planner::Pin(int32_t block) {
  if (Ref(block) == 1) --sim_.evictable;  // a cached block nobody held
  ++sim_.ref_delta[block];
}

void Planner::EvictOne() {
  auto take = [this](int32_t b) {
    if (Ref(b) != 1 || sim_.evicted.contains(b) || !st_.cache.cached(b)) return false;
    sim_.evicted.insert(b);
    sim_.evicted_order.push_back(b);
    --sim_.evictable;
    ++sim_.free;
    return true;
  };
  while (sim_.lru_cursor >= 0) {
    const int32_t b = sim_.lru_cursor;
    sim_.lru_cursor = st_.cache.lru_next(b);
    if (take(b)) return;
  }
  while (sim_.late_cursor < sim_.late.size()) {
    if (take(sim_.late[sim_.late_cursor++])) return;
  }
  DSINFER_CHECK(false && "evictable count out of step with the LRU list");
}

void Planner::Allocate(int32_t n) {
  DSINFER_CHECK(n <= Avail());
  while (sim_.free < n) EvictOne();
  sim_.free -= n;
}

int32_t Planner::Victim() {
  while (sim_.tail >= 0 && sim_.dead.contains(order_[sim_.tail]->id)) --sim_.tail;
  return sim_.tail;
}

bool Planner::Preemptable(const Sequence* s) const {
  return !sim_.dead.contains(s->id) && s->preemptions < st_.limits.max_preemptions_per_request;
}

int32_t Planner::LowerClassVictim(int p, bool capped) const {
  for (int32_t i = static_cast<int32_t>(order_.size()) - 1; i >= class_begin_[p + 1]; --i) {
    const Sequence* s = order_[i];
    if (capped ? Preemptable(s) : !sim_.dead.contains(s->id)) return i;
  }
  return -1;
}

double Planner::SlotShare(int p, int32_t t) const {
  double active = 0;  // weights of the tenants running or waiting in class p
  for (size_t u = 0; u < st_.tenants.size(); ++u) {
    if (sim_.running_by[p][u] > 0 || HasWaiting(p, u)) active += st_.tenants[u].policy.weight;
  }
  if (active <= 0) return st_.limits.max_running;
  return st_.limits.max_running * st_.tenants[t].policy.weight / active;
}

bool Planner::BelowShare(int p, int32_t t) const { return sim_.running_by[p][t] < SlotShare(p, t); }

int32_t Planner::ShareVictim(const Sequence* taker) const {
  const int p = PriorityIndex(taker->priority);
  if (!BelowShare(p, taker->tenant)) return -1;
  const std::vector<int32_t>& running = sim_.running_by[p];
  // The donor is the tenant with the most slots per weight among those with a preemptable
  // sequence; its victim is its worst (latest admitted) one.
  int32_t victim = -1;
  double most = -1;
  for (int32_t i = class_begin_[p + 1] - 1; i >= class_begin_[p]; --i) {
    const Sequence* s = order_[i];
    if (s->tenant == taker->tenant || !Preemptable(s)) continue;
    const double load = running[s->tenant] / st_.tenants[s->tenant].policy.weight;
    if (load > most) {  // strictly: the first seen (from the back) is the tenant's worst
      most = load;
      victim = i;
    }
  }
  if (victim < 0) return -1;
  const int32_t donor = order_[victim]->tenant;
  if (!SlotShareAllowsPreemption(running[taker->tenant], st_.tenants[taker->tenant].policy.weight,
                                 running[donor], st_.tenants[donor].policy.weight)) {
    return -1;
  }
  return victim;
}

void Planner::Preempt(int32_t index) {
  const Sequence* v = order_[index];
  --sim_.running_by[PriorityIndex(v->priority)][v->tenant];
  sim_.dead.insert(v->id);
  if (auto it = sim_.item_of.find(v->id); it != sim_.item_of.end()) {
    Item& item = sim_.items[it->second];
    item.dropped = true;
    sim_.budget += item.n;
    sim_.free += item.new_blocks;
    sim_.item_of.erase(it);
  }
  ReleaseBlocks(*v);
  --sim_.running;
  sim_.preempted.push_back(v->id);
}

void Planner::AddItem(const Sequence* s, int64_t start, int64_t n, int32_t new_blocks,
                      bool admitted, int32_t draft) {
  if (!admitted) sim_.item_of[s->id] = static_cast<int32_t>(sim_.items.size());
  sim_.items.push_back(
      {s, start, n, new_blocks, start + n - draft == s->num_tokens(), admitted, false});
  sim_.items.back().draft = draft;
  sim_.budget -= n;
  // Prompt tokens computed for the first time are charged (cache hits and recompute are not).
  const int64_t from = std::max(start, s->prompt_charged);
  const int64_t to = std::min(start + n, s->prompt_len);
  if (to > from) sim_.vtc[s->tenant] += st_.vtc.Cost(s->tenant, to - from, 0);
}

// A running sequence computes n more tokens. Worse sequences (later in order_) are preempted
// when blocks are short; a prefill chunk may shrink to the blocks there are; otherwise the
// sequence waits this step out, keeping its blocks.
void Planner::ScheduleRunning(int32_t index, int64_t n, bool may_shrink, int32_t draft) {
  const Sequence* s = order_[index];
  const int64_t c = s->num_computed;
  const int64_t have = static_cast<int64_t>(s->blocks.size());
  int64_t k = BlocksForTokens(c + n) - have;
  while (Avail() < k) {
    const int32_t v = Victim();
    if (v <= index) break;
    Preempt(v);
  }
  if (Avail() < k) {
    if (!may_shrink) return;
    n = (have + Avail()) * kKvBlockSize - c;
    if (n <= 0) return;
    k = BlocksForTokens(c + n) - have;
  }
  k = std::max<int64_t>(k, 0);
  Allocate(static_cast<int32_t>(k));
  AddItem(s, c, n, static_cast<int32_t>(k), /*admitted=*/false, draft);
}

void Planner::AddDrafts() {
  for (Item& it : sim_.items) {
    const Sequence* s = it.seq;
    if (it.dropped || it.n != 1 || !it.sample || s->drafts.empty()) continue;
    // Every draft is one more verified row (budget), and the step may produce all of them and
    // the token after them (max_tokens).
    int64_t m = std::min({static_cast<int64_t>(s->drafts.size()), sim_.budget,
                          s->max_tokens - s->generated() - 1});
    int64_t k = 0;
    for (; m > 0; --m) {
      k = BlocksForTokens(it.start + 1 + m) - BlocksForTokens(it.start + 1);
      if (Avail() >= k) break;
    }
    if (m <= 0) continue;
    Allocate(static_cast<int32_t>(k));
    it.new_blocks += static_cast<int32_t>(k);
    it.n = 1 + m;
    it.draft = static_cast<int32_t>(m);
    sim_.budget -= m;
  }
}

void Planner::AddLookahead() {
  if (st_.limits.mtp_lookahead <= 0) return;
  for (Item& it : sim_.items) {
    if (it.dropped || !it.sample) continue;
    const int64_t end = it.start + it.n;
    int64_t la = std::min<int64_t>(st_.limits.mtp_lookahead, st_.limits.max_model_len - end);
    int64_t k = 0;
    for (; la > 0; --la) {
      k = BlocksForTokens(end + la) - BlocksForTokens(end);
      if (Avail() >= k) break;
    }
    if (la <= 0) continue;
    Allocate(static_cast<int32_t>(k));
    it.new_blocks += static_cast<int32_t>(k);
    it.lookahead = static_cast<int32_t>(la);
  }
}

size_t Planner::SkipRejected(const std::deque<Sequence*>& q, size_t pos) const {
  while (pos < q.size() && rejected_.contains(q[pos]->id)) ++pos;
  return pos;
}

const Sequence* Planner::Head(int p, size_t t) const {
  const auto& resume = st_.resume[p][t];
  const size_t rp = SkipRejected(resume, sim_.resume_pos[p][t]);
  if (rp < resume.size()) return resume[rp];
  const auto& q = st_.queued[p][t];
  const size_t qp = SkipRejected(q, sim_.queue_pos[p][t]);
  return qp < q.size() ? q[qp] : nullptr;
}

// Tenants below their share of the running batch first, then the smallest virtual counter
// (ties: earliest request).
const Sequence* Planner::NextWaiting(int p) {
  const Sequence* best = nullptr;
  bool best_below = false;
  for (size_t t = 0; t < st_.tenants.size(); ++t) {
    const Sequence* s = Head(p, t);
    if (s == nullptr || AtRowBound(p, t)) continue;
    const bool below = BelowShare(p, static_cast<int32_t>(t));
    if (best == nullptr || (below && !best_below) ||
        (below == best_below &&
         (sim_.vtc[t] < sim_.vtc[best->tenant] ||
          (sim_.vtc[t] == sim_.vtc[best->tenant] && s->enqueue_order < best->enqueue_order)))) {
      best = s;
      best_below = below;
    }
  }
  return best;
}

// s is Head(p, s->tenant): the position moves past it (and the rejected ones before it).
void Planner::Consume(const Sequence* s) {
  const int p = PriorityIndex(s->priority);
  const size_t t = static_cast<size_t>(s->tenant);
  if (s->admitted_before()) {
    sim_.resume_pos[p][t] = SkipRejected(st_.resume[p][t], sim_.resume_pos[p][t]) + 1;
  } else {
    sim_.queue_pos[p][t] = SkipRejected(st_.queued[p][t], sim_.queue_pos[p][t]) + 1;
  }
}

bool Planner::TryAdmit(const Sequence* s) {
  const int p = PriorityIndex(s->priority);
  const int64_t len = s->num_tokens();
  std::vector<PrefixCache::Hit> hits;
  // Reuse whole cached blocks but always compute the last token (its logits are needed).
  if (st_.limits.prefix_caching) {
    st_.cache.Match(s->tokens, (len - 1) / kKvBlockSize, &hits, st_.PrefixRoot(*s));
  }
  for (size_t i = 0; i < hits.size(); ++i) {
    if (sim_.evicted.contains(hits[i].block)) {
      hits.resize(i);
      break;
    }
  }
  const int64_t cached = static_cast<int64_t>(hits.size()) * kKvBlockSize;
  const int64_t n = std::min({st_.limits.prefill_chunk, len - cached, sim_.budget,
                              PrefillLeft(p, static_cast<size_t>(s->tenant))});
  const int32_t k =
      static_cast<int32_t>(BlocksForTokens(cached + n)) - static_cast<int32_t>(hits.size());
  int32_t pinned_evictable = 0;
  for (const auto& h : hits) pinned_evictable += Ref(h.block) == 1;

  const bool fits =
      sim_.running < st_.limits.max_running && k <= sim_.free + sim_.evictable - pinned_evictable;
  if (!fits) {
    // Room by preemption (recompute), if that can make enough: lower classes first (emergency
    // ignores the per-sequence cap), then tenants of this class above their share.
    const bool emergency = p == PriorityIndex(Priority::kEmergency);
    if (LowerClassVictim(p, !emergency) < 0 && ShareVictim(s) < 0) return false;
    Sim saved = sim_;
    for (const auto& h : hits) Pin(h.block);
    auto short_of_room = [&] { return sim_.running >= st_.limits.max_running || Avail() < k; };
    while (short_of_room()) {
      const int32_t v = LowerClassVictim(p, !emergency);
      if (v < 0) break;
      Preempt(v);
    }
    while (short_of_room()) {
      const int32_t v = ShareVictim(s);
      if (v < 0) break;
      Preempt(v);
    }
    if (short_of_room()) {
      sim_ = std::move(saved);
      return false;
    }
  } else {
    for (const auto& h : hits) Pin(h.block);
  }
  const bool newcomer = !s->admitted_before() && BelowShare(p, s->tenant);
  Allocate(k);
  Consume(s);
  ++sim_.running;
  ++sim_.running_by[p][s->tenant];
  AddItem(s, cached, n, k, /*admitted=*/true);
  sim_.items.back().newcomer = newcomer;
  sim_.prefill_by[p][s->tenant] += n;
  return true;
}

bool Planner::AdmitBelowShare(int p, int32_t head_tenant) {
  std::vector<std::pair<double, const Sequence*>> heads;  // (slots per weight, head)
  for (size_t t = 0; t < st_.tenants.size(); ++t) {
    if (static_cast<int32_t>(t) == head_tenant || AtRowBound(p, t)) continue;
    const Sequence* s = Head(p, t);
    if (s != nullptr && ShareVictim(s) >= 0) {
      heads.emplace_back(sim_.running_by[p][t] / st_.tenants[t].policy.weight, s);
    }
  }
  std::sort(heads.begin(), heads.end(), [](const auto& a, const auto& b) {
    return a.first < b.first ||
           (a.first == b.first && a.second->enqueue_order < b.second->enqueue_order);
  });
  for (const auto& [load, s] : heads) {
    if (TryAdmit(s)) return true;
  }
  return false;
}

bool Planner::AdmitClass(int p) {
  while (sim_.budget > 0) {
    const Sequence* s = NextWaiting(p);
    if (s == nullptr) return true;
    if (TryAdmit(s)) continue;
    if (!AdmitBelowShare(p, s->tenant)) return false;
  }
  return true;
}

void Planner::DeferForNewcomers() {
  int cls = kNumPriorities;  // the most urgent class in which a newcomer starts
  for (const Item& it : sim_.items) {
    if (!it.dropped && it.newcomer) cls = std::min(cls, PriorityIndex(it.seq->priority));
  }
  if (cls == kNumPriorities) return;
  auto load = [this, cls](int32_t t) {
    return sim_.running_by[cls][t] / st_.tenants[t].policy.weight;
  };
  double least = std::numeric_limits<double>::infinity();  // least loaded newcomer's tenant
  for (const Item& it : sim_.items) {
    if (!it.dropped && it.newcomer && PriorityIndex(it.seq->priority) == cls) {
      least = std::min(least, load(it.seq->tenant));
    }
  }
  // A tenant of cls sits out when it is at or above its share (the step share keeps a flooder
  // at its share, and its full share of rows would make the step long) and holds more slots
  // per weight than the least loaded newcomer's tenant: a flooder whose own admission counts
  // as a newcomer (just below its share) neither triggers a deferral nor escapes one. Cached
  // per tenant (-1: not yet known).
  std::vector<int8_t> above(st_.tenants.size(), -1);
  // Running sequences and this step's admissions alike: an over-share tenant admitting its own
  // queue in the newcomer's step would make that step long again (its prompt chunks).
  for (Item& it : sim_.items) {
    if (it.dropped) continue;
    const int p = PriorityIndex(it.seq->priority);
    if (p < cls) continue;
    if (p == cls) {
      const int32_t t = it.seq->tenant;
      int8_t& a = above[t];
      if (a < 0) a = sim_.running_by[p][t] >= SlotShare(p, t) && load(t) > least + 1e-9;
      if (a == 0) continue;
    } else if (it.newcomer) {
      continue;  // a lower class's newcomer still starts
    }
    it.dropped = true;
    sim_.budget += it.n;
    sim_.free += it.new_blocks;
    deferred_.push_back(it.seq->id);
  }
}

void Planner::BoundStepsByShare() {
  const size_t n = st_.tenants.size();
  held_.assign(order_.size(), 0);
  for (int p = 0; p < kNumPriorities; ++p) {
    row_bound_[p].assign(n, 0);
    token_bound_[p].assign(n, 0);
  }
  if (!st_.limits.step_share) return;
  std::vector<char> active(n);
  std::vector<int32_t> mine;
  for (int p = 0; p < kNumPriorities; ++p) {
    double weights = 0;
    int32_t count = 0;
    for (size_t t = 0; t < n; ++t) {
      active[t] = sim_.running_by[p][t] > 0 || HasWaiting(p, t) ||
                  now_ - st_.last_active[p][t] <= st_.limits.share_window_seconds;
      if (!active[t]) continue;
      weights += st_.tenants[t].policy.weight;
      ++count;
    }
    if (count < 2) continue;  // alone in its class: the whole step, as before
    for (size_t t = 0; t < n; ++t) {
      if (!active[t]) continue;
      const double share = st_.limits.max_running * st_.tenants[t].policy.weight / weights;
      const int32_t bound = std::max(1, static_cast<int32_t>(std::ceil(share - 1e-9)));
      row_bound_[p][t] = bound;
      if (sim_.running_by[p][t] <= bound) continue;
      // Rotation: the tenant's sequences that ran least recently go first (ties: admit order).
      mine.clear();
      for (int32_t i = class_begin_[p]; i < class_begin_[p + 1]; ++i) {
        if (order_[i]->tenant == static_cast<int32_t>(t)) mine.push_back(i);
      }
      std::stable_sort(mine.begin(), mine.end(), [this](int32_t a, int32_t b) {
        return order_[a]->last_step < order_[b]->last_step;
      });
      for (size_t k = static_cast<size_t>(bound); k < mine.size(); ++k) held_[mine[k]] = 1;
    }
    // Step tokens: a tenant's demand is its running plus waiting sequences per weight. While an
    // active tenant holds fewer slots than its share, every active tenant with a larger demand
    // than the least such tenant computes at most its weight's share of one prefill chunk of
    // prompt tokens this step (at least 1): its prompts cannot make the lighter tenant's steps
    // long. Decodes are bounded by rows above. Demand, not slots, so a tenant kept below its
    // share by this bound does not count as the lighter one while its queue is long.
    auto demand = [this, p](size_t t) {
      return (sim_.running_by[p][t] + st_.resume[p][t].size() + st_.queued[p][t].size()) /
             st_.tenants[t].policy.weight;
    };
    double light = std::numeric_limits<double>::infinity();
    for (size_t t = 0; t < n; ++t) {
      const double share = st_.limits.max_running * st_.tenants[t].policy.weight / weights;
      if (active[t] && sim_.running_by[p][t] < share - 1e-9) light = std::min(light, demand(t));
    }
    for (size_t t = 0; t < n; ++t) {
      if (!active[t] || !(demand(t) > light + 1e-9)) continue;
      token_bound_[p][t] = std::max<int64_t>(
          1,
          static_cast<int64_t>(st_.limits.prefill_chunk * st_.tenants[t].policy.weight / weights));
    }
  }
}

void Planner::RejectExpired() {
  auto check_waiting = [this](const Sequence* s) {
    if (now_ >= s->deadline) {
      rejections_.push_back(
          {s->id,
           absl::DeadlineExceededError(absl::StrFormat(
               "deadline passed after %.3f s in the waiting queue", now_ - s->arrival)),
           RejectReason::kDeadline});
    } else if (!s->admitted_before() && now_ - s->arrival > st_.limits.max_queue_seconds) {
      // Only never-admitted requests time out; a preempted one has streamed tokens already.
      rejections_.push_back({s->id,
                             absl::ResourceExhaustedError(absl::StrFormat(
                                 "waited %.3f s in the waiting queue without being scheduled "
                                 "(max_queue_seconds = %g)",
                                 now_ - s->arrival, st_.limits.max_queue_seconds)),
                             RejectReason::kQueueTimeout});
    } else {
      return;
    }
    rejected_.insert(s->id);
  };
  for (int p = 0; p < kNumPriorities; ++p) {
    for (const auto& q : st_.resume[p]) {
      for (const Sequence* s : q) check_waiting(s);
    }
    for (const auto& q : st_.queued[p]) {
      for (const Sequence* s : q) check_waiting(s);
    }
  }
  for (int p = 0; p < kNumPriorities; ++p) {
    for (const Sequence* s : st_.running[p]) {
      if (now_ < s->deadline) continue;
      rejections_.push_back({s->id,
                             absl::DeadlineExceededError(absl::StrFormat(
                                 "deadline passed after %.3f s, %d tokens generated",
                                 now_ - s->arrival, s->generated())),
                             RejectReason::kDeadline});
      rejected_.insert(s->id);
      ReleaseBlocks(*s);
      --sim_.running;
    }
  }
}

StepPlan Planner::Run() {
  RejectExpired();
  order_.reserve(st_.num_running);
  for (int p = 0; p < kNumPriorities; ++p) {
    class_begin_[p] = static_cast<int32_t>(order_.size());
    for (const Sequence* s : st_.running[p]) {
      if (rejected_.contains(s->id)) continue;
      order_.push_back(s);
      ++sim_.running_by[p][s->tenant];
    }
  }
  class_begin_[kNumPriorities] = static_cast<int32_t>(order_.size());
  sim_.tail = static_cast<int32_t>(order_.size()) - 1;
  sim_.items.reserve(order_.size() + 16);
  sim_.item_of.reserve(order_.size());

  BoundStepsByShare();

  // 1. Decodes: one token for every running sequence whose prompt is computed; then, in the
  // same order, each one's MTP drafts where budget and the drafts' blocks are left over
  // (drafts never take what a decode needs, never preempt) and max_tokens leaves room for them
  // and the token after them.
  for (int32_t i = 0; i < static_cast<int32_t>(order_.size()) && sim_.budget > 0; ++i) {
    const Sequence* s = order_[i];
    if (held_[i] || sim_.dead.contains(s->id) || s->num_computed != s->num_tokens() - 1) continue;
    ScheduleRunning(i, 1, /*may_shrink=*/false);
  }
  AddDrafts();
  // 2. Per class, best first: prefill chunks of running sequences, then admissions.
  bool admitting = true;
  for (int p = 0; p < kNumPriorities && sim_.budget > 0; ++p) {
    for (int32_t i = class_begin_[p]; i < class_begin_[p + 1] && sim_.budget > 0; ++i) {
      const Sequence* s = order_[i];
      if (held_[i] || sim_.dead.contains(s->id) || s->num_computed >= s->num_tokens() - 1) continue;
      const int64_t n = std::min({st_.limits.prefill_chunk, s->num_tokens() - s->num_computed,
                                  sim_.budget, PrefillLeft(p, static_cast<size_t>(s->tenant))});
      if (n <= 0) continue;
      const size_t before = sim_.items.size();
      ScheduleRunning(i, n, /*may_shrink=*/true);
      if (sim_.items.size() > before) sim_.prefill_by[p][s->tenant] += sim_.items.back().n;
    }
    if (admitting) admitting = AdmitClass(p);
  }
  // 3. Never two shortened steps in a row: a sequence waits at most one step at a time.
  if (!st_.deferred_last_step) DeferForNewcomers();
  // 4. Lookahead blocks for chained MTP drafts, from what is left.
  AddLookahead();

  StepPlan plan;
  plan.now = now_;
  plan.state_version = st_.version;
  int64_t blocks = 0;
  plan.items.reserve(sim_.items.size());
  for (const Item& it : sim_.items) {
    if (it.dropped) continue;
    StepItem& out = plan.items.emplace_back();
    out.seq_id = it.seq->id;
    out.start_pos = it.start;
    out.num_tokens = it.n;
    out.sample = it.sample;
    out.admitted = it.admitted;
    out.resumed = it.admitted && it.seq->admitted_before();
    out.cached_tokens = it.admitted ? it.start : 0;
    out.num_draft = it.draft;
    out.lookahead = it.lookahead;
    out.token_offset = static_cast<int64_t>(plan.token_ids.size());
    plan.token_ids.insert(plan.token_ids.end(), it.seq->tokens.begin() + it.start,
                          it.seq->tokens.begin() + it.start + it.n - it.draft);
    plan.token_ids.insert(plan.token_ids.end(), it.seq->drafts.begin(),
                          it.seq->drafts.begin() + it.draft);
    out.block_offset = blocks;
    out.num_blocks = static_cast<int32_t>(BlocksForTokens(it.start + it.n + it.lookahead));
    blocks += out.num_blocks;
    plan.num_batched_tokens += it.n;
  }
  plan.block_ids.assign(blocks, -1);
  plan.preempted = std::move(sim_.preempted);
  plan.rejected = std::move(rejections_);
  plan.evicted_blocks = std::move(sim_.evicted_order);
  plan.deferred = std::move(deferred_);
  for (size_t i = 0; i < order_.size(); ++i) {
    if (held_[i] && !sim_.dead.contains(order_[i]->id)) plan.held.push_back(order_[i]->id);
  }
  return plan;
}

}  // namespace dsinfer
