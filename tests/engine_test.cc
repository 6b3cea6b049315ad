// The serving engine end to end on the CPU backend (no RPC): continuous batching keeps each
// request's greedy output identical to running it alone, through preemption and cancellation.
#include <gtest/gtest.h>

#include <fstream>
#include <future>
#include <map>
#include <random>

#include "nlohmann/json.hpp"
#include "src/engine/engine.h"
#include "src/runner/runner_factory.h"

namespace dsinfer {
namespace {

const std::string kModel = std::string(DSINFER_SOURCE_DIR) + "/tests/fixtures/models/v2_lite_bf16";

struct Golden {
  std::vector<std::vector<int32_t>> prompts, greedy;
};
Golden LoadGolden() {
  std::ifstream in(kModel + "/golden.json");
  auto j = nlohmann::json::parse(in);
  return {j["prompts"].get<std::vector<std::vector<int32_t>>>(),
          j["greedy"].get<std::vector<std::vector<int32_t>>>()};
}

std::unique_ptr<Engine> MakeEngine(int32_t blocks, SchedulerLimits limits = {},
                                   std::vector<TenantPolicy> tenants = {{.id = "county"}}) {
  auto runner = MakeModelRunner(
      {.model_dir = kModel, .precision = Precision::kF32, .threads = 2, .num_kv_blocks = blocks});
  EXPECT_TRUE(runner.ok()) << runner.status();
  auto engine = Engine::Create(std::move(*runner), nullptr,
                               {.limits = limits, .tenants = std::move(tenants)});
  EXPECT_TRUE(engine.ok()) << engine.status();
  return std::move(*engine);
}

// Collects a request's events; the future resolves with the last one.
struct Collector {
  std::vector<int32_t> tokens;
  EngineEvent last;
  std::promise<void> done;
  std::shared_future<void> fut = done.get_future().share();
  EventSink Sink() {
    return [this](EngineEvent ev) {
      tokens.insert(tokens.end(), ev.token_ids.begin(), ev.token_ids.end());
      if (ev.last()) {
        last = std::move(ev);
        done.set_value();
      }
    };
  }
};

EngineRequest Greedy(const std::vector<int32_t>& prompt, int64_t n,
                     Priority p = Priority::kInteractive) {
  EngineRequest r;
  r.tenant = "county";
  r.priority = p;
  r.prompt = prompt;
  r.max_tokens = n;
  r.ignore_eos = true;
  return r;
}

TEST(Engine, ConcurrentRequestsMatchGoldenGreedy) {
  Golden g = LoadGolden();
  auto engine = MakeEngine(64);
  std::vector<std::unique_ptr<Collector>> cs;
  for (int rep = 0; rep < 4; ++rep) {
    for (size_t i = 0; i < g.prompts.size(); ++i) {
      cs.push_back(std::make_unique<Collector>());
      engine->Submit(Greedy(g.prompts[i], 16), cs.back()->Sink());
    }
  }
  for (size_t k = 0; k < cs.size(); ++k) {
    cs[k]->fut.wait();
    ASSERT_TRUE(cs[k]->last.status.ok()) << cs[k]->last.status;
    EXPECT_EQ(cs[k]->last.finish, FinishReason::kLength);
    EXPECT_EQ(cs[k]->tokens, g.greedy[k % g.prompts.size()]) << "request " << k;
    EXPECT_EQ(cs[k]->last.usage.completion_tokens, 16);
  }
  EXPECT_TRUE(engine->Idle());
}

TEST(Engine, PreemptionUnderAPoolTooSmallKeepsOutputs) {
  Golden g = LoadGolden();
  // 4 blocks = 256 tokens: six 70-token prompts generating 16 tokens cannot all be resident.
  auto engine = MakeEngine(4);
  std::vector<std::unique_ptr<Collector>> cs;
  for (int k = 0; k < 6; ++k) {
    cs.push_back(std::make_unique<Collector>());
    engine->Submit(Greedy(g.prompts[2], 16), cs.back()->Sink());
  }
  for (auto& c : cs) {
    c->fut.wait();
    ASSERT_TRUE(c->last.status.ok()) << c->last.status;
    EXPECT_EQ(c->tokens, g.greedy[2]);
  }
  SchedulerStats st = engine->Stats();
  EXPECT_EQ(st.running, 0);
}

TEST(Engine, CancelEndsAtOnceAndFreesBlocks) {
  Golden g = LoadGolden();
  auto engine = MakeEngine(80);
  Collector c;
  uint64_t id = engine->Submit(Greedy(g.prompts[2], 4000), c.Sink());
  while (c.tokens.size() < 2) {
    ASSERT_EQ(c.fut.wait_for(std::chrono::milliseconds(1)), std::future_status::timeout)
        << c.last.status;
  }
  engine->Cancel(id);
  c.fut.wait();
  EXPECT_EQ(c.last.finish, FinishReason::kCancelled);
  for (int i = 0; i < 100 && !engine->Idle(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  EXPECT_TRUE(engine->Idle());
  // Only prefix-cache blocks (evictable) may remain in use.
  SchedulerStats st = engine->Stats();
  EXPECT_EQ(st.kv_blocks_used, st.kv_blocks_evictable);
}

TEST(Engine, AdmissionErrorsArriveOnTheSink) {
  auto engine = MakeEngine(4);
  Collector unknown, too_long, drained;
  EngineRequest r = Greedy({5, 6, 7}, 4);
  r.tenant = "nobody";
  engine->Submit(r, unknown.Sink());
  unknown.fut.wait();
  EXPECT_EQ(unknown.last.status.code(), absl::StatusCode::kPermissionDenied);
  // Needs more blocks than the whole pool has: can never fit.
  engine->Submit(Greedy(std::vector<int32_t>(200, 5), 200), too_long.Sink());
  too_long.fut.wait();
  EXPECT_EQ(too_long.last.status.code(), absl::StatusCode::kInvalidArgument);
  engine->StartDraining();
  engine->Submit(Greedy({5}, 2), drained.Sink());
  drained.fut.wait();
  EXPECT_EQ(drained.last.status.code(), absl::StatusCode::kUnavailable);
}

TEST(Engine, PrefixCacheHitKeepsOutput) {
  Golden g = LoadGolden();
  auto engine = MakeEngine(16);
  Collector a, b;
  engine->Submit(Greedy(g.prompts[2], 16), a.Sink());
  a.fut.wait();
  engine->Submit(Greedy(g.prompts[2], 16), b.Sink());
  b.fut.wait();
  EXPECT_EQ(a.last.usage.cached_tokens, 0);
  EXPECT_EQ(b.last.usage.cached_tokens, 64);  // one full block of the 70-token prompt
  EXPECT_EQ(b.tokens, g.greedy[2]);
}

TEST(Engine, ShutdownEndsEverything) {
  Golden g = LoadGolden();
  auto engine = MakeEngine(16);
  Collector c;
  engine->Submit(Greedy(g.prompts[2], 900), c.Sink());
  while (c.tokens.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  engine->Shutdown();
  c.fut.wait();
  EXPECT_EQ(c.last.status.code(), absl::StatusCode::kUnavailable);
}

// The engine knows a runner, not a model: a runner with no model behind it drives it, each
// sampled row reaches the runner with its request's parameters and seeded draw, and the one
// finish rule ends requests on a stop id and on max_tokens.
class ScriptedRunner : public ModelRunner {
 public:
  ScriptedRunner() {
    config_.vocab_size = 50;
    config_.max_position_embeddings = 12;
    config_.num_hidden_layers = 1;
    config_.eos_token_ids = {49};
    spec_ = {.num_layers = 1, .row_width = 4, .dtype = KvDType::kF32};
  }
  const ModelConfig& config() const override { return config_; }
  const KvCacheSpec& kv_cache_spec() const override { return spec_; }
  int32_t num_kv_blocks() const override { return 16; }
  const char* backend_name() const override { return "scripted"; }
  const char* dtype_name() const override { return "none"; }
  absl::Status Step(absl::Span<const RunnerSequence> seqs, StepResult* result) override {
    result->seqs.assign(seqs.size(), {});
    for (size_t i = 0; i < seqs.size(); ++i) {
      if (!seqs[i].sample) continue;
      rows.push_back(seqs[i].sampling);
      // The next token: the position, so outputs are predictable; 7 after position 5.
      const int64_t pos = seqs[i].start_pos + static_cast<int64_t>(seqs[i].tokens.size());
      result->seqs[i].token = pos == 6 ? 7 : static_cast<int32_t>(pos);
    }
    return absl::OkStatus();
  }
  const ExpertLoad& expert_load() const override { return load_; }
  void LimitSampledVocabulary(int64_t n) override { sample_vocab = n; }
  std::vector<SamplingRow> rows;  // engine thread only; read after the requests end
  int64_t sample_vocab = -1;

 private:
  ModelConfig config_;
  KvCacheSpec spec_;
  ExpertLoad load_;
};

TEST(Engine, DrivesAnyRunnerWithItsSamplingParameters) {
  auto runner = std::make_unique<ScriptedRunner>();
  ScriptedRunner* r = runner.get();
  auto engine = Engine::Create(std::move(runner), nullptr, {.tenants = {{.id = "county"}}});
  ASSERT_TRUE(engine.ok()) << engine.status();
  EXPECT_EQ(r->sample_vocab, 50);  // no tokenizer: the model's vocabulary
  EngineRequest req = Greedy({1, 2, 3}, 8);
  req.sampling = {.temperature = 0.5f, .top_k = 7, .top_p = 0.9f, .seed = 42,
                  .stop_token_ids = {7}};
  Collector stop, length;
  (*engine)->Submit(req, stop.Sink());
  stop.fut.wait();
  // Tokens 3, 4, 5 then 7 (a stop id) at position 6.
  EXPECT_EQ(stop.tokens, (std::vector<int32_t>{3, 4, 5, 7}));
  EXPECT_EQ(stop.last.finish, FinishReason::kStop);
  ASSERT_EQ(r->rows.size(), 4u);
  std::mt19937_64 rng(42);
  for (const SamplingRow& row : r->rows) {
    EXPECT_EQ(row.temperature, 0.5f);
    EXPECT_EQ(row.top_k, 7);
    EXPECT_EQ(row.top_p, 0.9f);
    EXPECT_EQ(row.uniform, std::uniform_real_distribution<double>(0.0, 1.0)(rng));
  }
  req.sampling.stop_token_ids.clear();
  req.max_tokens = 2;
  (*engine)->Submit(req, length.Sink());
  length.fut.wait();
  EXPECT_EQ(length.tokens, (std::vector<int32_t>{3, 4}));
  EXPECT_EQ(length.last.finish, FinishReason::kLength);
}

// Retry hints come from the drain rates the controller sees, not a constant: a client told to
// come back when a slot can be free, never sooner than kMinRetrySeconds.
TEST(AdmissionController, RetryHintsFollowTheDrainRate) {
  SchedulerLimits limits;
  limits.max_waiting = 4;
  limits.num_kv_blocks = 1024;
  limits.max_model_len = 4096;
  TenantPolicy quota{.id = "quota", .max_concurrent = 1};
  TenantPolicy open{.id = "open"};
  AdmissionController ac(limits, {quota, open});
  const RequestSize small{.prompt_tokens = 10, .max_tokens = 10};
  AdmissionController::Ticket t;
  std::function<std::pair<AdmitResult, AdmissionController::Ticket>(const std::string&, double)>
      admit = [&](const std::string& tenant, double at) {
        AdmissionController::Ticket ticket;
        AdmitResult res = ac.Admit(tenant, small, at, &ticket);
        return std::make_pair(res, ticket);
      };

  // Nothing has drained yet: the configured default.
  ASSERT_TRUE(ac.Admit("quota", small, 0, &t).status.ok());
  AdmitResult r = admit("quota", 0.1).first;
  EXPECT_EQ(r.reason, RejectReason::kTenantConcurrent);
  EXPECT_DOUBLE_EQ(r.retry_after_seconds, limits.queue_full_retry_seconds);

  // The quota tenant's requests end 4 times a second: a slot frees in about 0.25 s.
  double now = 1;
  ac.Started(&t, now);
  for (int i = 0; i < 8; ++i) {
    ac.Ended(t, now);
    now += 0.25;
    ASSERT_TRUE(ac.Admit("quota", small, now, &t).status.ok());
    ac.Started(&t, now);
  }
  r = admit("quota", now).first;
  EXPECT_EQ(r.reason, RejectReason::kTenantConcurrent);
  EXPECT_NEAR(r.retry_after_seconds, 0.25, 0.05);

  // On a fresh controller: the global queue (4) is full and requests start 10 times a second.
  AdmissionController fresh(limits, {quota, open});
  now = 0;
  admit = [&](const std::string& tenant, double at) {
    AdmissionController::Ticket ticket;
    AdmitResult res = fresh.Admit(tenant, small, at, &ticket);
    return std::make_pair(res, ticket);
  };
  std::vector<AdmissionController::Ticket> queued;
  for (int i = 0; i < 20; ++i) {
    auto [ok, ticket] = admit("open", now);
    ASSERT_TRUE(ok.status.ok());
    now += 0.1;
    fresh.Started(&ticket, now);
    queued.push_back(ticket);
  }
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(admit("open", now).first.status.ok());
  r = admit("open", now).first;
  EXPECT_EQ(r.reason, RejectReason::kQueueFull);
  EXPECT_NEAR(r.retry_after_seconds, 0.1, 0.03);
  EXPECT_NEAR(fresh.QueueDrainSeconds(now), 0.4, 0.05);  // four waiting, 10 starts a second
  EXPECT_EQ(fresh.waiting(), 4);
  // Unknown tenants and impossible sizes are answered here too.
  EXPECT_EQ(admit("nobody", now).first.status.code(), absl::StatusCode::kPermissionDenied);
  AdmissionController::Ticket unused;
  EXPECT_EQ(
      fresh.Admit("open", {.prompt_tokens = 4000, .max_tokens = 200}, now, &unused).status.code(),
      absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace dsinfer
