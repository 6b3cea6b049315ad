// The serving engine: one thread owns the scheduler and the model runner and runs the step loop
// (admit -> plan -> commit -> forward -> sample -> stream). Other threads only Submit and Cancel;
// both return at once. Admission is decided inside Submit, on the caller's thread, by the
// AdmissionController (limits, queue capacity, token rate): a rejection reaches the sink before
// Submit returns, without waiting for the step in flight. Every later outcome (tokens, the end)
// arrives on the request's EventSink from the engine thread. Sinks must not block: a slow
// client buffers in its own stream, never in the step loop. Invariants: README.md.
#pragma once

#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "src/engine/admission_controller.h"
#include "src/engine/finish.h"
#include "src/engine/model_runner.h"
#include "src/engine/output_text.h"
#include "src/sampling/sampler.h"
#include "src/scheduler/scheduler.h"
#include "src/tokenizer/tokenizer.h"

namespace dsinfer {

struct EngineRequest {
  std::string tenant;  // from the caller's credentials, never from the request body
  Priority priority = Priority::kInteractive;
  std::vector<int32_t> prompt;
  SamplingParams sampling;
  int64_t max_tokens = 16;
  std::vector<std::string> stop;  // stop strings, not included in the output
  bool ignore_eos = false;
  int32_t logprobs = -1;  // -1: none; n >= 0: each token's logprob and its n top alternatives
  double deadline = std::numeric_limits<double>::infinity();  // Engine::Now() clock
  // When the request reached the server (Engine::Now() clock); queue time and time to first
  // token count from here. Unset (< 0): when Submit was called.
  double arrival = -1;
  std::string client_request_id;  // for logs only
};

// Why a request is cancelled: the client went away, or its deadline passed (gRPC cancels a call
// at its deadline; the outcome is then DEADLINE_EXCEEDED, not a cancellation).
enum class CancelReason : uint8_t { kClient, kDeadline };

struct Usage {
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  int64_t cached_tokens = 0;
  double queue_seconds = 0;
  double time_to_first_token_seconds = 0;
  double total_seconds = 0;
};

// In order per request. The last event has finish != kNone or a non-OK status.
struct EngineEvent {
  absl::Status status;             // non-OK: the request ended with this error
  double retry_after_seconds = 0;  // with RESOURCE_EXHAUSTED
  std::vector<int32_t> token_ids;  // new tokens
  std::vector<SequenceResult> logprobs;  // per new token, when the request asked for them
  std::string text;                // UTF-8-safe delta
  FinishReason finish = FinishReason::kNone;
  Usage usage;                     // on the last event
  bool last() const { return !status.ok() || finish != FinishReason::kNone; }
};
using EventSink = std::function<void(EngineEvent)>;

// Hooks for metrics and logs, called on the engine thread, except that OnRejected and
// OnRequestEnd of a request turned away at admission run on the thread that called Submit:
// implementations must be thread-safe and must not block.
class EngineObserver {
 public:
  virtual ~EngineObserver() = default;
  struct StepInfo {
    double seconds = 0;        // forward + sampling
    double schedule_seconds = 0;
    int64_t tokens = 0;        // batched tokens
    int64_t sequences = 0;
    int64_t prompt_tokens = 0;      // prefill tokens computed
    int64_t generated_tokens = 0;   // tokens sampled
    int64_t draft_tokens = 0;       // MTP draft tokens verified
    int64_t accepted_tokens = 0;    // of which accepted
    // Per draft position j (0: the first draft of a sequence's step): verified, accepted.
    std::array<int64_t, kMaxMtpDraftTokens> drafted_at = {}, accepted_at = {};
  };
  virtual void OnStep(const StepInfo& step, const SchedulerStats& stats,
                      const ExpertLoad& expert_load) {}
  // The scheduler's state changed (a step, an admission, a cancellation, a rejection), and once
  // at start: gauges follow the state, not the steps. `admitted` counts, per class, requests
  // admitted at Submit that the scheduler has not taken in yet (they wait for the step in
  // flight). Called with the engine's inbox lock held: only atomics.
  virtual void OnStats(const SchedulerStats& stats,
                       const std::array<int32_t, kNumPriorities>& admitted) {}
  // A request was admitted at Submit (on the submitting thread, inbox lock held): it waits now,
  // before the engine thread sees it. Only atomics.
  virtual void OnAdmitted(Priority p) {}
  virtual void OnFirstToken(const std::string& tenant, Priority p, double ttft_seconds,
                            double queue_seconds) {}
  virtual void OnTokenGap(double seconds) {}  // time between two tokens of a request
  // Every request ends exactly once: outcome "ok", "cancelled" or a status-code name
  // ("DEADLINE_EXCEEDED" when its deadline passed, however that was noticed).
  virtual void OnRequestEnd(uint64_t id, const std::string& tenant, Priority p,
                            const std::string& outcome, const Usage& usage,
                            const std::string& client_request_id) {}
  virtual void OnRejected(const std::string& tenant, Priority p, RejectReason reason) {}
};

struct EngineOptions {
  SchedulerLimits limits;  // num_kv_blocks and max_model_len are taken from the runner
  std::vector<TenantPolicy> tenants;
};

class Engine {
 public:
  // tokenizer may be null (token ids only, no text or stop strings).
  static absl::StatusOr<std::unique_ptr<Engine>> Create(std::unique_ptr<ModelRunner> runner,
                                                        const Tokenizer* tokenizer,
                                                        EngineOptions options,
                                                        EngineObserver* observer = nullptr);
  ~Engine();

  // Returns the request id at once; the outcome arrives on `sink` (an admission rejection
  // before Submit returns, on this thread).
  uint64_t Submit(EngineRequest request, EventSink sink);
  // Ends a request at the next step boundary and frees its KV blocks: a kCancelled finish, or
  // DEADLINE_EXCEEDED when its deadline passed.
  void Cancel(uint64_t id, CancelReason reason = CancelReason::kClient);
  // Stops admitting: later Submits end with UNAVAILABLE; running requests continue.
  void StartDraining();
  bool draining() const { return draining_.load(); }
  // No request waiting or running.
  bool Idle() const { return live_.load() == 0; }
  // Ends every request still live with UNAVAILABLE and stops the thread.
  void Shutdown();

  // Seconds on the engine's monotonic clock (deadlines use it).
  double Now() const;
  const ModelConfig& model_config() const { return runner_->config(); }
  const ModelRunner& runner() const { return *runner_; }
  SchedulerStats Stats() const;  // copy, refreshed after every change of the scheduler's state
  const AdmissionController& admission() const { return *admission_; }

 private:
  struct Live;
  struct Command {
    enum Kind { kSubmit, kCancel } kind;
    uint64_t id;
    EngineRequest request;
    EventSink sink;
    AdmissionController::Ticket ticket;
    CancelReason reason = CancelReason::kClient;
  };

  Engine(std::unique_ptr<ModelRunner> runner, const Tokenizer* tokenizer,
         std::unique_ptr<Scheduler> scheduler, std::unique_ptr<AdmissionController> admission,
         EngineObserver* observer);
  // A request that never became live: the sink hears `status`, nothing follows.
  void Refuse(uint64_t id, const EngineRequest& request, EventSink& sink, absl::Status status,
              double retry_after_seconds, RejectReason reason);
  void Loop();
  void HandleCommand(Command& c, double now);
  void RunStep(double now);
  void End(uint64_t id, EngineEvent ev, const std::string& outcome);
  void PublishStats();

  std::unique_ptr<ModelRunner> runner_;
  const Tokenizer* tokenizer_;
  std::unique_ptr<Scheduler> scheduler_;
  std::unique_ptr<AdmissionController> admission_;
  EngineObserver* observer_;
  const std::chrono::steady_clock::time_point epoch_;

  mutable std::mutex mu_;  // guards inbox_, inbox_submits_, stop_, stats_
  std::mutex join_mu_;
  std::condition_variable cv_;
  std::deque<Command> inbox_;
  std::array<int32_t, kNumPriorities> inbox_submits_{};  // admitted requests in inbox_, by class
  bool stop_ = false;
  SchedulerStats stats_;
  std::atomic<uint64_t> next_id_{1};
  std::atomic<bool> draining_{false};
  std::atomic<int64_t> live_{0};

  // Engine-thread state.
  std::unordered_map<uint64_t, std::unique_ptr<Live>> requests_;
  StepResult result_;
  std::thread thread_;
};

}  // namespace dsinfer
