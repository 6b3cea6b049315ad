// The serving engine end to end on the CPU backend (no RPC): continuous batching keeps each
// request's greedy output identical to running it alone, through preemption and cancellation.
#include <gtest/gtest.h>

#include <fstream>
#include <future>
#include <map>

#include "nlohmann/json.hpp"
#include "src/engine/engine.h"

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
  auto model = DeepseekModel::Load(kModel, {.precision = Precision::kF32, .threads = 2});
  EXPECT_TRUE(model.ok()) << model.status();
  auto exec = std::make_unique<CpuExecutor>(std::move(*model), blocks);
  auto engine = Engine::Create(std::move(exec), nullptr,
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
