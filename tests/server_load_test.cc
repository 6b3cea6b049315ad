// Fair and honest under load, on loopback (issue 13): admission answered while a long step runs,
// retry hints from the actual state, time to first token from arrival, deadlines reported as
// such, gauges that follow cancellations, and a failed backend that tells strangers nothing.
// A GatedRunner (the real CPU model behind a gate the test opens) makes "a step of several
// seconds" deterministic.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "src/engine/forwarding_runner.h"
#include "src/runner/runner_factory.h"
#include "tests/server_harness.h"

namespace dsinfer {
namespace {

using namespace dsinfer::testing;  // NOLINT: the harness is this file's vocabulary

// The fixture's CPU model; Step waits while the gate is closed, and Health reports what the
// test sets.
class GatedRunner : public ForwardingRunner {
 public:
  struct Control {
    std::mutex mu;
    std::condition_variable cv;
    bool open = true;
    int waiting = 0;  // Step calls held at the gate now
    absl::Status health;

    void Close() {
      std::lock_guard<std::mutex> lock(mu);
      open = false;
    }
    void Open() {
      {
        std::lock_guard<std::mutex> lock(mu);
        open = true;
      }
      cv.notify_all();
    }
    bool WaitHeld(milliseconds timeout = milliseconds(10000)) {
      std::unique_lock<std::mutex> lock(mu);
      return cv.wait_for(lock, timeout, [&] { return waiting > 0; });
    }
  };

  GatedRunner(std::unique_ptr<ModelRunner> inner, std::shared_ptr<Control> control)
      : ForwardingRunner(std::move(inner)), control_(std::move(control)) {}

  absl::Status Step(absl::Span<const RunnerSequence> seqs, StepResult* result) override {
    {
      std::unique_lock<std::mutex> lock(control_->mu);
      ++control_->waiting;
      control_->cv.notify_all();
      control_->cv.wait(lock, [&] { return control_->open; });
      --control_->waiting;
    }
    return ForwardingRunner::Step(seqs, result);
  }
  absl::Status Health() const override {
    std::lock_guard<std::mutex> lock(control_->mu);
    return control_->health;
  }

 private:
  std::shared_ptr<Control> control_;
};

std::unique_ptr<TestServer> StartGated(const std::shared_ptr<GatedRunner::Control>& control,
                                       const std::string& scheduler = kDefaultScheduler) {
  auto cpu = MakeModelRunner({.model_dir = kIdsModel, .precision = Precision::kF32, .threads = 2,
                              .num_kv_blocks = 1024});
  EXPECT_TRUE(cpu.ok()) << cpu.status();
  if (!cpu.ok()) return nullptr;
  return TestServer::StartYaml(kIdsModel, ConfigYaml(kIdsModel, 1024, scheduler),
                               std::make_unique<GatedRunner>(*std::move(cpu), control));
}

double Percentile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())))];
}

// Rejections are decided at Submit, off the engine thread: they arrive while a step is still
// running (here: held at the gate); an admitted request shows in the waiting gauges at once;
// and time to first token counts from arrival.
TEST(ServerLoad, RejectionsDoNotWaitForTheStepInFlight) {
  auto control = std::make_shared<GatedRunner::Control>();
  std::unique_ptr<TestServer> s = StartGated(control);
  ASSERT_NE(s, nullptr);
  // The quota tenant's one request streams; then the next step is held at the gate.
  std::atomic<bool> holding{false}, release{false};
  std::thread holder([&] {
    Generate(*s, IdsRequest(Prompt(20, 3), kLongRun), kKeyQuota, 60,
             [&](grpc::ClientContext& ctx, int n) {
               if (n == 1) {
                 control->Close();
                 holding.store(true);
               }
               if (release.load()) ctx.TryCancel();
             });
  });
  ASSERT_TRUE(WaitFor(holding));
  ASSERT_TRUE(control->WaitHeld());

  // A county request arrives during the held step; it will run once the step is over.
  Call waited;
  std::thread county([&] { waited = Generate(*s, IdsRequest(Prompt(8, 5), 2), kKeyA, 60); });

  std::vector<double> seconds;
  for (int i = 0; i < 10; ++i) {
    Call c = Generate(*s, IdsRequest({1, 2, 3}, 4), kKeyQuota, /*timeout_seconds=*/2);
    EXPECT_EQ(c.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
        << c.status.error_message();
    seconds.push_back(c.seconds);
  }
  // Never servable (more KV blocks than the pool): INVALID_ARGUMENT, also at once.
  Call too_big = Generate(*s, IdsRequest({1, 2, 3}, 70000), kKeyA, 2);
  EXPECT_EQ(too_big.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
      << too_big.status.error_message();
  seconds.push_back(too_big.seconds);
  {
    std::lock_guard<std::mutex> lock(control->mu);
    EXPECT_GT(control->waiting, 0) << "the step was released before the rejections arrived";
  }
  std::printf("rejections during a held step: p50 %.1f ms, p99 %.1f ms (n=%zu)\n",
              1e3 * Percentile(seconds, 0.5), 1e3 * Percentile(seconds, 0.99), seconds.size());
  EXPECT_LT(Percentile(seconds, 0.99), 0.5);

  // The admitted county request is waiting (for the step in flight) and the gauges say so now,
  // not after the step.
  const auto gauges_until = steady_clock::now() + milliseconds(1000);
  auto waiting = [&] { return Sample(s->server->metrics().Render(), "dsinfer_sequences_waiting"); };
  while (waiting() < 1 && steady_clock::now() < gauges_until) {
    std::this_thread::sleep_for(milliseconds(10));
  }
  EXPECT_EQ(waiting(), 1);
  EXPECT_EQ(Sample(s->server->metrics().Render(), "dsinfer_queue_length{priority=\"interactive\"}"),
            1);
  std::this_thread::sleep_for(milliseconds(1000));
  control->Open();
  county.join();
  ASSERT_TRUE(waited.status.ok()) << waited.status.error_message();
  EXPECT_EQ(Sample(s->server->metrics().Render(), "dsinfer_sequences_waiting"), 0);
  // The second the request spent waiting for the step counts: TTFT is from arrival.
  const v1::Usage& usage = waited.messages.back().usage();
  EXPECT_GE(usage.time_to_first_token_seconds(), 0.9) << "server TTFT starts at arrival";
  EXPECT_GE(usage.queue_seconds(), 0.9);
  EXPECT_LE(usage.time_to_first_token_seconds(), waited.seconds + 0.01);

  release.store(true);
  holder.join();
  s->server->Drain(1);
}

// A request that timed out in the queue is told to come back when the queue can have moved,
// not in 1 ms.
TEST(ServerLoad, QueueTimeoutRetryHintIsNotAnInvitationToStorm) {
  std::unique_ptr<TestServer> s = TestServer::StartYaml(kIdsModel, ConfigYaml(kIdsModel, 1024, R"(
scheduler:
  max_batched_tokens: 2048
  max_running: 1
  max_waiting: 16
  max_queue_seconds: 0.3
  prefill_chunk: 512)"));
  ASSERT_NE(s, nullptr);
  std::atomic<bool> running{false}, release{false};
  std::thread holder([&] {
    Generate(*s, IdsRequest(Prompt(10, 1), kLongRun), kKeyA, 60,
             [&](grpc::ClientContext& ctx, int n) {
               running.store(true);
               if (release.load()) ctx.TryCancel();
             });
  });
  ASSERT_TRUE(WaitFor(running));
  Call c = Generate(*s, IdsRequest({1, 2, 3}, 2), kKeyA, 10);
  release.store(true);
  holder.join();
  ASSERT_EQ(c.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
      << c.status.error_message();
  EXPECT_NE(c.status.error_message().find("max_queue_seconds"), std::string::npos);
  auto it = c.trailers.find("retry-after-ms");
  ASSERT_NE(it, c.trailers.end());
  EXPECT_GE(std::stoll(it->second), 50) << "a retry storm invitation";
  s->server->Drain(1);
}

// A client deadline is a deadline: outcome deadline_exceeded, not cancelled.
TEST(ServerLoad, ADeadlineIsCountedAsADeadline) {
  TestServer& s = IdsServer();
  const TenantMetrics* county = s.server->metrics().Tenant("county-a");
  ASSERT_NE(county, nullptr);
  Counter& deadline = county->Requests(Priority::kInteractive, RequestOutcome::kDeadlineExceeded);
  Counter& cancelled = county->Requests(Priority::kInteractive, RequestOutcome::kCancelled);
  const double deadline_before = deadline.Value(), cancelled_before = cancelled.Value();
  Call c = Generate(s, IdsRequest(Prompt(50, 2), kLongRun), kKeyA, /*timeout_seconds=*/0.4);
  EXPECT_EQ(c.status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  ASSERT_TRUE(s.WaitUntilReleased());
  const auto until = steady_clock::now() + milliseconds(3000);
  while (deadline.Value() == deadline_before && steady_clock::now() < until) {
    std::this_thread::sleep_for(milliseconds(10));
  }
  EXPECT_EQ(deadline.Value(), deadline_before + 1);
  EXPECT_EQ(cancelled.Value(), cancelled_before);
}

// Gauges follow the state, not the steps: a fresh server shows its free pool, and a cancelled
// request's sequence and blocks leave the gauges without another request arriving.
TEST(ServerLoad, GaugesFollowCancellationsWithoutAnotherRequest) {
  std::unique_ptr<TestServer> s = TestServer::Start(kIdsModel, 512);
  ASSERT_NE(s, nullptr);
  auto gauge = [&](const std::string& series) {
    return Sample(s->server->metrics().Render(), series);
  };
  EXPECT_EQ(gauge("dsinfer_kv_cache_blocks{state=\"free\"}"), 512);
  double running_seen = 0, used_seen = 0;
  Call c = Generate(*s, IdsRequest(Prompt(100, 1), kLongRun), kKeyA, 60,
                    [&](grpc::ClientContext& ctx, int n) {
                      if (n == 3) {
                        running_seen = gauge("dsinfer_sequences_running");
                        used_seen = gauge("dsinfer_kv_cache_blocks{state=\"used\"}");
                        ctx.TryCancel();
                      }
                    });
  EXPECT_EQ(c.status.error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_EQ(running_seen, 1);
  EXPECT_GT(used_seen, 0);
  const auto until = steady_clock::now() + milliseconds(1000);
  while (gauge("dsinfer_sequences_running") != 0 && steady_clock::now() < until) {
    std::this_thread::sleep_for(milliseconds(10));
  }
  EXPECT_EQ(gauge("dsinfer_sequences_running"), 0);
  EXPECT_EQ(gauge("dsinfer_sequences_waiting"), 0);
  EXPECT_EQ(gauge("dsinfer_kv_cache_blocks{state=\"used\"}"), 0);
  EXPECT_EQ(gauge("dsinfer_kv_cache_blocks{state=\"free\"}") +
                gauge("dsinfer_kv_cache_blocks{state=\"cached\"}"),
            512);
  s->server->Drain(1);
}

// A failed backend (a rank of a sharded model gone) turns grpc.health.v1 NOT_SERVING like
// /readyz, and its internals (files, lines, peer addresses) stay in the log: an unauthenticated
// caller is told only that it is unauthenticated.
TEST(ServerLoad, AFailedBackendIsNotServingAndTellsStrangersNothing) {
  auto control = std::make_shared<GatedRunner::Control>();
  std::unique_ptr<TestServer> s = StartGated(control);
  ASSERT_NE(s, nullptr);
  ASSERT_EQ(Health(s->channel, ""), grpc::health::v1::HealthCheckResponse::SERVING);
  {
    std::lock_guard<std::mutex> lock(control->mu);
    control->health = absl::UnavailableError(
        "the model's ranks are no longer complete: [gloo/transport/tcp/pair.cc:598] Connection "
        "closed by peer [10.1.2.3]:29500");
  }
  const auto until = steady_clock::now() + milliseconds(3000);
  while (Health(s->channel, "") == grpc::health::v1::HealthCheckResponse::SERVING &&
         steady_clock::now() < until) {
    std::this_thread::sleep_for(milliseconds(20));
  }
  EXPECT_EQ(Health(s->channel, ""), grpc::health::v1::HealthCheckResponse::NOT_SERVING);
  EXPECT_EQ(Health(s->channel, "dsinfer.v1.Inference"),
            grpc::health::v1::HealthCheckResponse::NOT_SERVING);

  Call stranger = Generate(*s, IdsRequest({1, 2, 3}, 2), "");
  EXPECT_EQ(stranger.status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(stranger.status.error_message().find("gloo"), std::string::npos);
  {
    grpc::ClientContext ctx;
    v1::ModelInfoResponse info;
    EXPECT_EQ(s->stub->ModelInfo(&ctx, {}, &info).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  }
  Call county = Generate(*s, IdsRequest({1, 2, 3}, 2), kKeyA);
  EXPECT_EQ(county.status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_NE(county.status.error_message().find("ranks are no longer complete"), std::string::npos)
      << county.status.error_message();
  for (const char* internal : {"gloo", "pair.cc", "10.1.2.3"}) {
    EXPECT_EQ(county.status.error_message().find(internal), std::string::npos)
        << county.status.error_message();
  }
  httplib::Client http("127.0.0.1", s->server->http_port());
  auto ready = http.Get("/readyz");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 503);
  EXPECT_EQ(ready->body.find("gloo"), std::string::npos) << ready->body;
  s->server->Drain(0);
}

}  // namespace
}  // namespace dsinfer
