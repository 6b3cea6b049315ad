#include "src/engine/engine.h"

#include <algorithm>
#include <chrono>
#include <limits>

#include "absl/strings/str_cat.h"
#include "src/core/status_macros.h"

namespace dsinfer {

const char* FinishReasonName(FinishReason r) {
  switch (r) {
    case FinishReason::kStop: return "stop";
    case FinishReason::kLength: return "length";
    case FinishReason::kCancelled: return "cancelled";
    case FinishReason::kNone: break;
  }
  return "none";
}

// Engine-thread state of one live request.
struct Engine::Live {
  Live(uint64_t id, EngineRequest r, EventSink s, const Tokenizer* tok,
       AdmissionController::Ticket t, const ModelConfig& cfg)
      : id(id),
        req(std::move(r)),
        sink(std::move(s)),
        sampler(req.sampling, req.prompt),
        text(tok, req.stop),
        submit_time(req.arrival),
        ticket(t) {
    finish = {.stop_ids = req.sampling.stop_token_ids,
              .max_tokens = req.max_tokens,
              .context_length = cfg.max_position_embeddings};
    if (!req.ignore_eos) finish.eos_ids.assign(cfg.eos_token_ids.begin(), cfg.eos_token_ids.end());
  }
  uint64_t id;
  EngineRequest req;
  EventSink sink;
  Sampler sampler;
  OutputText text;
  FinishRule finish;
  double submit_time;  // arrival at the server: queue time and TTFT count from here
  AdmissionController::Ticket ticket;
  double admit_time = -1;
  double first_token_time = -1;
  double last_token_time = -1;
  int64_t cached_tokens = 0;
  int64_t generated = 0;
  // MTP drafts are verified by one sample of the target row, which holds for the rows a
  // sampler gives without penalties (they would depend on the draft) and without logprobs.
  bool MayDraft() const {
    const SamplingParams& p = req.sampling;
    return req.logprobs < 0 && p.repetition_penalty == 1.0f && p.frequency_penalty == 0.0f &&
           p.presence_penalty == 0.0f;
  }

  Usage MakeUsage(double now) const {
    Usage u;
    u.prompt_tokens = static_cast<int64_t>(req.prompt.size());
    u.completion_tokens = generated;
    u.cached_tokens = cached_tokens;
    u.queue_seconds = admit_time >= 0 ? admit_time - submit_time : now - submit_time;
    u.time_to_first_token_seconds = first_token_time >= 0 ? first_token_time - submit_time : 0;
    u.total_seconds = now - submit_time;
    return u;
  }
};

absl::StatusOr<std::unique_ptr<Engine>> Engine::Create(std::unique_ptr<ModelRunner> runner,
                                                       const Tokenizer* tokenizer,
                                                       EngineOptions options,
                                                       EngineObserver* observer) {
  if (!runner) return absl::InvalidArgumentError("engine: no model runner");
  options.limits.num_kv_blocks = runner->num_kv_blocks();
  options.limits.max_model_len = runner->config().max_position_embeddings;
  RETURN_IF_ERROR(Scheduler::ValidateConfig(options.limits, options.tenants));
  // Queue, concurrency and rate limits are decided once, at Submit, by the admission
  // controller; the scheduler orders and places what was admitted.
  SchedulerLimits placement = options.limits;
  // Chained MTP drafts write the MTP layer's cache k - 1 positions past a sampled sequence's
  // new tokens: the scheduler lends those blocks for the step where it has them free.
  placement.mtp_lookahead = std::max(0, runner->mtp_draft_tokens() - 1);
  placement.max_waiting = std::numeric_limits<int32_t>::max();
  placement.max_waiting_tokens = 0;
  std::vector<TenantPolicy> tenants = options.tenants;
  for (TenantPolicy& t : tenants) t.max_concurrent = t.max_queued = t.tokens_per_minute = 0;
  ASSIGN_OR_RETURN(auto scheduler, Scheduler::Create(placement, std::move(tenants)));
  auto admission =
      std::make_unique<AdmissionController>(options.limits, std::move(options.tenants));
  return std::unique_ptr<Engine>(new Engine(std::move(runner), tokenizer, std::move(scheduler),
                                            std::move(admission), observer));
}

Engine::Engine(std::unique_ptr<ModelRunner> runner, const Tokenizer* tokenizer,
               std::unique_ptr<Scheduler> scheduler, std::unique_ptr<AdmissionController> admission,
               EngineObserver* observer)
    : runner_(std::move(runner)),
      tokenizer_(tokenizer),
      scheduler_(std::move(scheduler)),
      admission_(std::move(admission)),
      observer_(observer),
      epoch_(std::chrono::steady_clock::now()) {
  // Never sample an id the tokenizer cannot turn into text (a model's vocabulary may be padded
  // beyond the tokenizer's), so every generated id also detokenizes.
  int64_t sample_vocab = runner_->config().vocab_size;
  if (tokenizer_ != nullptr) sample_vocab = std::min<int64_t>(sample_vocab, tokenizer_->vocab_size());
  runner_->LimitSampledVocabulary(sample_vocab);
  PublishStats();  // a fresh engine reports its empty pool
  thread_ = std::thread([this] { Loop(); });
}

Engine::~Engine() { Shutdown(); }

double Engine::Now() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - epoch_).count();
}

SchedulerStats Engine::Stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

void Engine::Refuse(uint64_t id, const EngineRequest& r, EventSink& sink, absl::Status status,
                    double retry_after_seconds, RejectReason reason) {
  EngineEvent ev;
  ev.status = std::move(status);
  ev.retry_after_seconds = retry_after_seconds;
  ev.usage.prompt_tokens = static_cast<int64_t>(r.prompt.size());
  if (observer_) {
    if (reason != RejectReason::kNone) observer_->OnRejected(r.tenant, r.priority, reason);
    observer_->OnRequestEnd(id, r.tenant, r.priority,
                            std::string(absl::StatusCodeToString(ev.status.code())), ev.usage,
                            r.client_request_id);
  }
  sink(std::move(ev));
}

uint64_t Engine::Submit(EngineRequest request, EventSink sink) {
  const uint64_t id = next_id_.fetch_add(1);
  const double now = Now();
  if (request.arrival < 0 || request.arrival > now) request.arrival = now;
  // Admission, at once and on this thread: nothing here waits for the step in flight.
  if (draining_.load()) {
    Refuse(id, request, sink,
           absl::UnavailableError("server is draining; retry on another replica"), 0,
           RejectReason::kNone);
    return id;
  }
  if (absl::Status st = ValidateSamplingParams(request.sampling); !st.ok()) {
    Refuse(id, request, sink, st, 0, RejectReason::kNone);
    return id;
  }
  if (!tokenizer_ && !request.stop.empty()) {
    Refuse(id, request, sink,
           absl::InvalidArgumentError("stop: the model has no tokenizer, stop strings need one"), 0,
           RejectReason::kNone);
    return id;
  }
  AdmissionController::Ticket ticket;
  AdmitResult admit = admission_->Admit(
      request.tenant,
      {static_cast<int64_t>(request.prompt.size()), request.max_tokens, request.priority}, now,
      &ticket);
  if (!admit.status.ok()) {
    Refuse(id, request, sink, admit.status, admit.retry_after_seconds, admit.reason);
    return id;
  }
  {
    std::unique_lock<std::mutex> lock(mu_);
    if (stop_) {  // the engine thread is gone: nobody would ever answer
      lock.unlock();
      admission_->Ended(ticket, now);
      Refuse(id, request, sink, absl::UnavailableError("server is shutting down"), 0,
             RejectReason::kNone);
      return id;
    }
    live_.fetch_add(1);
    const Priority p = request.priority;
    inbox_.push_back({Command::kSubmit, id, std::move(request), std::move(sink), ticket});
    ++inbox_submits_[PriorityIndex(p)];
    if (observer_) observer_->OnAdmitted(p);
  }
  cv_.notify_one();
  return id;
}

void Engine::Cancel(uint64_t id, CancelReason reason) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    inbox_.push_back({Command::kCancel, id, {}, {}, {}, reason});
  }
  cv_.notify_one();
}

void Engine::StartDraining() { draining_.store(true); }

void Engine::Shutdown() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_one();
  std::lock_guard<std::mutex> lock(join_mu_);  // Shutdown may be called from several threads
  if (thread_.joinable()) thread_.join();
}

void Engine::End(uint64_t id, EngineEvent ev, const std::string& outcome) {
  auto it = requests_.find(id);
  if (it == requests_.end()) return;
  Live& l = *it->second;
  const double now = Now();
  ev.usage = l.MakeUsage(now);
  admission_->Ended(l.ticket, now);
  if (observer_)
    observer_->OnRequestEnd(id, l.req.tenant, l.req.priority, outcome, ev.usage,
                            l.req.client_request_id);
  EventSink sink = std::move(l.sink);
  requests_.erase(it);
  live_.fetch_sub(1);  // before the sink runs: a client that saw its end sees Idle()
  sink(std::move(ev));
}

void Engine::HandleCommand(Command& c, double now) {
  if (c.kind == Command::kCancel) {
    auto it = requests_.find(c.id);
    if (it == requests_.end()) return;
    const double deadline = it->second->req.deadline;
    scheduler_->Cancel(c.id);
    PublishStats();  // the cancelled request's blocks are free before its sink hears the end
    EngineEvent ev;
    if (c.reason == CancelReason::kDeadline || now >= deadline) {
      ev.status = absl::DeadlineExceededError(absl::StrCat(
          "deadline passed after ", absl::SixDigits(now - it->second->submit_time), " s"));
      End(c.id, std::move(ev), "DEADLINE_EXCEEDED");
    } else {
      ev.finish = FinishReason::kCancelled;
      End(c.id, std::move(ev), "cancelled");
    }
    return;
  }
  NewRequest nr{.id = c.id,
                .tenant = c.request.tenant,
                .priority = c.request.priority,
                .prompt = c.request.prompt,
                .max_tokens = c.request.max_tokens,
                .deadline = c.request.deadline};
  AdmitResult admit = scheduler_->Add(std::move(nr), now);
  if (!admit.status.ok()) {
    // Cannot happen for a request the admission controller passed (the same checks, with the
    // scheduler's own limits off); kept so that a disagreement is an answer, not a hang.
    admission_->Ended(c.ticket, now);
    live_.fetch_sub(1);
    Refuse(c.id, c.request, c.sink, admit.status, admit.retry_after_seconds, admit.reason);
    return;
  }
  auto live = std::make_unique<Live>(c.id, std::move(c.request), std::move(c.sink), tokenizer_,
                                     c.ticket, runner_->config());
  requests_.emplace(c.id, std::move(live));
}

void Engine::RunStep(double now) {
  StepPlan plan = scheduler_->Plan(now);
  scheduler_->Commit(plan);
  const double t_planned = Now();
  if (!plan.rejected.empty()) PublishStats();  // rejected requests' blocks are free before they hear
  for (const Rejection& r : plan.rejected) {
    auto it = requests_.find(r.seq_id);
    if (it == requests_.end()) continue;
    if (observer_) observer_->OnRejected(it->second->req.tenant, it->second->req.priority, r.reason);
    EngineEvent ev;
    ev.status = r.status;
    // Retry when the queue as it is now has had time to start.
    if (r.reason == RejectReason::kQueueTimeout)
      ev.retry_after_seconds = admission_->QueueDrainSeconds(now);
    End(r.seq_id, std::move(ev), std::string(absl::StatusCodeToString(r.status.code())));
  }
  if (plan.items.empty()) return;

  std::vector<RunnerSequence> seqs;
  seqs.reserve(plan.items.size());
  std::vector<std::vector<SamplingRow>> draft_rows(plan.items.size());  // rows after each draft
  EngineObserver::StepInfo info;
  info.schedule_seconds = t_planned - now;
  for (size_t i = 0; i < plan.items.size(); ++i) {
    const StepItem& item = plan.items[i];
    RunnerSequence rs{.tokens = plan.tokens(item),
                      .start_pos = item.start_pos,
                      .block_table = plan.block_table(item),
                      .num_draft = item.num_draft};
    if (!item.sample && runner_->has_mtp()) {
      // A prompt chunk before the last: the MTP layer pairs its last row with the next token.
      const absl::Span<const int32_t> all = scheduler_->tokens(item.seq_id);
      const int64_t after = item.start_pos + item.num_tokens;
      if (after < static_cast<int64_t>(all.size())) rs.next_token = all[after];
    }
    auto it = requests_.find(item.seq_id);
    if (it != requests_.end()) {
      Live& l = *it->second;
      if (item.admitted && l.admit_time < 0) {
        l.admit_time = now;
        l.cached_tokens = item.cached_tokens;
        admission_->Started(&l.ticket, now);
      }
      if (item.sample) {
        rs.sample = true;
        rs.sampling = l.sampler.NextRow();
        rs.logprobs = l.req.logprobs;
        for (int32_t j = 0; j < item.num_draft; ++j) draft_rows[i].push_back(l.sampler.NextRow());
        rs.draft_sampling = draft_rows[i];
      }
    }
    seqs.push_back(rs);
    info.tokens += item.num_tokens;
    if (!(item.num_tokens - item.num_draft == 1 && item.sample && item.start_pos > 0))
      info.prompt_tokens += item.num_tokens;
    info.draft_tokens += item.num_draft;
    for (int32_t j = 0; j < item.num_draft; ++j) ++info.drafted_at[j];
  }
  info.sequences = static_cast<int64_t>(plan.items.size());

  const absl::Status st = runner_->Step(seqs, &result_);
  const double t_done = Now();
  std::vector<std::pair<uint64_t, int32_t>> sampled;
  std::vector<uint64_t> finished;
  if (!st.ok()) {
    // A failed step ends the requests it carried; the others continue.
    for (const StepItem& item : plan.items) {
      scheduler_->Cancel(item.seq_id);
      EngineEvent ev;
      const bool gone = st.code() == absl::StatusCode::kUnavailable;
      ev.status = gone ? absl::UnavailableError(absl::StrCat("model step failed: ", st.message()))
                       : absl::InternalError(absl::StrCat("model step failed: ", st.message()));
      End(item.seq_id, std::move(ev), gone ? "UNAVAILABLE" : "INTERNAL");
    }
    return;
  }
  // Events are delivered after the scheduler has taken the step in, so a client that sees its
  // request end also sees the KV blocks released in Stats().
  std::vector<std::pair<uint64_t, EngineEvent>> events;
  std::vector<std::pair<uint64_t, std::vector<int32_t>>> drafts;  // MTP drafts for the next step
  for (size_t i = 0; i < plan.items.size(); ++i) {
    const StepItem& item = plan.items[i];
    if (!seqs[i].sample) continue;
    auto it = requests_.find(item.seq_id);
    if (it == requests_.end()) continue;
    Live& l = *it->second;
    const SequenceResult& res = result_.seqs[i];
    // The sampled token, then one more per accepted draft; the first that finishes the request
    // ends it (rejected or unused draft slots are rolled back by the scheduler).
    std::vector<int32_t> toks = {res.token};
    if (item.num_draft > 0) {
      toks.insert(toks.end(), res.bonus_tokens.begin(), res.bonus_tokens.end());
      info.accepted_tokens += static_cast<int64_t>(res.bonus_tokens.size());
      for (size_t j = 0; j < res.bonus_tokens.size(); ++j) ++info.accepted_at[j];
    }
    EngineEvent ev;
    for (const int32_t tok : toks) {
      l.sampler.Accept(tok);
      ++l.generated;
      ++info.generated_tokens;
      if (l.first_token_time < 0) {
        l.first_token_time = t_done;
        if (observer_)
          observer_->OnFirstToken(l.req.tenant, l.req.priority, t_done - l.submit_time,
                                  (l.admit_time >= 0 ? l.admit_time : now) - l.submit_time);
      } else if (observer_) {
        observer_->OnTokenGap(t_done - l.last_token_time);
      }
      l.last_token_time = t_done;

      ev.token_ids.push_back(tok);
      if (l.req.logprobs >= 0) ev.logprobs.push_back(std::move(result_.seqs[i]));
      if (!IsEos(l.finish, tok)) ev.text += l.text.Push(tok);
      ev.finish = DecideFinish(l.finish, tok, l.generated,
                               static_cast<int64_t>(l.req.prompt.size()), l.text.stopped());
      sampled.push_back({item.seq_id, tok});
      if (ev.finish != FinishReason::kNone) break;
    }
    if (ev.finish != FinishReason::kNone) {
      ev.text += l.text.Finish();
      finished.push_back(item.seq_id);
    } else if (!res.drafts.empty() && l.MayDraft()) {
      drafts.push_back({item.seq_id, res.drafts});
    }
    events.emplace_back(item.seq_id, std::move(ev));
  }
  scheduler_->OnTokens(sampled, finished);
  for (const auto& [id, tokens] : drafts) scheduler_->SetDrafts(id, tokens);
  info.seconds = Now() - t_planned;
  PublishStats();
  if (observer_) observer_->OnStep(info, Stats(), runner_->expert_load());
  for (auto& [id, ev] : events) {
    if (ev.last()) {
      End(id, std::move(ev), "ok");
    } else {
      requests_.at(id)->sink(std::move(ev));
    }
  }
}

void Engine::PublishStats() {
  SchedulerStats stats = scheduler_->Stats();
  std::lock_guard<std::mutex> lock(mu_);  // Submit's OnAdmitted cannot interleave
  if (observer_) observer_->OnStats(stats, inbox_submits_);
  stats_ = std::move(stats);
}

void Engine::Loop() {
  for (;;) {
    std::deque<Command> cmds;
    {
      std::unique_lock<std::mutex> lock(mu_);
      const bool busy = scheduler_->num_waiting() > 0 || scheduler_->num_running() > 0;
      if (!busy) cv_.wait(lock, [&] { return stop_ || !inbox_.empty(); });
      if (stop_) break;  // what is left in the inbox is answered below
      cmds.swap(inbox_);
      inbox_submits_.fill(0);  // the scheduler takes them in before the next PublishStats
    }
    const double now = Now();
    for (Command& c : cmds) HandleCommand(c, now);
    if (!cmds.empty()) PublishStats();  // admissions change the stats without a step
    if (scheduler_->num_waiting() > 0 || scheduler_->num_running() > 0) {
      const size_t before = requests_.size();
      RunStep(Now());
      // Nothing could run (e.g. waiting for a queue-time limit): do not spin.
      if (scheduler_->num_running() == 0 && requests_.size() == before) {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait_for(lock, std::chrono::milliseconds(5), [&] { return stop_ || !inbox_.empty(); });
      }
    }
  }
  // Shutdown: every request still live (or still in the inbox) ends with UNAVAILABLE.
  std::deque<Command> rest;
  {
    std::lock_guard<std::mutex> lock(mu_);
    rest.swap(inbox_);
  }
  for (Command& c : rest) {
    if (c.kind != Command::kSubmit) continue;
    EngineEvent ev;
    ev.status = absl::UnavailableError("server is shutting down");
    admission_->Ended(c.ticket, Now());
    live_.fetch_sub(1);
    c.sink(std::move(ev));
  }
  std::vector<uint64_t> ids;
  for (auto& [id, l] : requests_) ids.push_back(id);
  for (uint64_t id : ids) {
    scheduler_->Cancel(id);
    EngineEvent ev;
    ev.status = absl::UnavailableError("server is shutting down");
    End(id, std::move(ev), "UNAVAILABLE");
  }
}

}  // namespace dsinfer
