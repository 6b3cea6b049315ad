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

}  // namespace
}  // namespace dsinfer
