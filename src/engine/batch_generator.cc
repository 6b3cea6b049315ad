#include "src/engine/batch_generator.h"

#include <condition_variable>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "src/core/status_macros.h"
#include "src/engine/engine.h"
#include "src/engine/forwarding_runner.h"
#include "src/kv_cache/block_pool.h"

namespace dsinfer {
namespace {

// The caller's runner, lent to an engine for one run, with the caller's vocabulary limit.
class BorrowedRunner : public ForwardingRunner {
 public:
  BorrowedRunner(ModelRunner& r, int64_t sample_vocab)
      : ForwardingRunner(r), sample_vocab_(sample_vocab) {}
  void LimitSampledVocabulary(int64_t n) override {
    const bool tighter = sample_vocab_ > 0 && (n <= 0 || sample_vocab_ < n);
    ForwardingRunner::LimitSampledVocabulary(tighter ? sample_vocab_ : n);
  }

 private:
  int64_t sample_vocab_;  // the caller's limit (0: none)
};

class StatsObserver : public EngineObserver {
 public:
  StatsObserver(GenerationStats* st, std::function<void()> on_prefill)
      : st_(st), on_prefill_(std::move(on_prefill)) {}
  void OnStep(const StepInfo& s, const SchedulerStats&, const ExpertLoad&) override {
    st_->draft_tokens += s.draft_tokens;
    st_->accepted_tokens += s.accepted_tokens;
    for (size_t j = 0; j < s.drafted_at.size(); ++j) {
      st_->drafted_at[j] += s.drafted_at[j];
      st_->accepted_at[j] += s.accepted_at[j];
    }
    if (s.prompt_tokens > 0) {
      st_->prefill_tokens += s.prompt_tokens;
      st_->prefill_seconds += s.seconds;
      if (on_prefill_) on_prefill_();
    } else {
      st_->decode_tokens += s.generated_tokens;
      st_->decode_seconds += s.seconds;
      ++st_->decode_steps;
    }
  }

 private:
  GenerationStats* st_;
  std::function<void()> on_prefill_;
};

}  // namespace

absl::StatusOr<std::vector<GenerationResult>> GenerateOnRunner(
    ModelRunner& runner, absl::Span<const GenerationRequest> requests,
    const GenerationOptions& options, GenerationStats* stats,
    const std::function<void(size_t, int32_t)>& on_token) {
  const ModelConfig& cfg = runner.config();
  const KvCacheSpec& spec = runner.kv_cache_spec();
  int64_t blocks = 0, prompt_tokens = 0;
  for (size_t r = 0; r < requests.size(); ++r) {
    const GenerationRequest& req = requests[r];
    if (req.prompt.empty())
      return absl::InvalidArgumentError(absl::StrCat("request ", r, ": empty prompt"));
    if (req.max_tokens < 1)
      return absl::InvalidArgumentError(absl::StrCat("request ", r, ": max_tokens must be >= 1"));
    RETURN_IF_ERROR(ValidateSamplingParams(req.sampling));
    const int64_t total = static_cast<int64_t>(req.prompt.size()) + req.max_tokens;
    if (total > cfg.max_position_embeddings) {
      return absl::InvalidArgumentError(absl::StrCat(
          "request ", r, ": prompt of ", req.prompt.size(), " tokens plus max_tokens ",
          req.max_tokens, " exceeds the context length ", cfg.max_position_embeddings));
    }
    blocks += spec.BlocksFor(total);
    prompt_tokens += std::min<int64_t>(options.prefill_chunk, req.prompt.size());
  }
  if (blocks > runner.num_kv_blocks()) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "the requests need ", blocks, " KV blocks; the runner has ", runner.num_kv_blocks()));
  }
  if (requests.empty()) return std::vector<GenerationResult>{};
  const int64_t n = static_cast<int64_t>(requests.size());
  GenerationStats local;
  StatsObserver observer(stats ? stats : &local, options.on_decode_start);
  // Every request admitted at once; a step carries every decode plus one prompt chunk (or all
  // first chunks with batch_prefill).
  int64_t budget = n + (options.batch_prefill ? prompt_tokens : options.prefill_chunk);
  if (runner.max_step_tokens() > 0) budget = std::min(budget, runner.max_step_tokens());
  if (budget < n) {
    return absl::InvalidArgumentError(absl::StrCat(n, " requests exceed the ",
                                                   runner.max_step_tokens(),
                                                   " tokens one step of the runner may carry"));
  }
  SchedulerLimits limits{
      .max_batched_tokens = budget,
      .max_running = static_cast<int32_t>(n),
      .max_waiting = static_cast<int32_t>(n),
      .max_queue_seconds = 1e12,
      .prefill_chunk = options.prefill_chunk,
      .prefix_caching = false};
  ASSIGN_OR_RETURN(auto engine,
                   Engine::Create(std::make_unique<BorrowedRunner>(runner, options.sample_vocab), nullptr,
                                  {.limits = limits, .tenants = {{.id = "offline"}}}, &observer));
  std::mutex mu;
  std::condition_variable cv;
  size_t done = 0;
  absl::Status failure;
  std::vector<GenerationResult> results(requests.size());
  for (size_t r = 0; r < requests.size(); ++r) {
    EngineRequest er;
    er.tenant = "offline";
    er.priority = Priority::kInteractive;
    er.prompt = requests[r].prompt;
    er.sampling = requests[r].sampling;
    er.max_tokens = requests[r].max_tokens;
    er.ignore_eos = !requests[r].stop_at_eos;
    engine->Submit(std::move(er), [&, r](EngineEvent ev) {
      std::lock_guard<std::mutex> lock(mu);
      for (int32_t t : ev.token_ids) {
        results[r].tokens.push_back(t);
        if (on_token) on_token(r, t);
      }
      if (!ev.last()) return;
      if (!ev.status.ok() && failure.ok())
        failure = absl::Status(ev.status.code(),
                               absl::StrCat("request ", r, ": ", ev.status.message()));
      results[r].finish_reason = FinishReasonName(ev.finish);
      ++done;
      cv.notify_all();
    });
  }
  {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return done == requests.size(); });
  }
  engine->Shutdown();
  RETURN_IF_ERROR(failure);
  return results;
}

}  // namespace dsinfer
