// Serving through the leader of a sharded model: the server (rank 0) starts its other rank as a
// process, answers like a single-rank server, and when a rank dies turns not-ready and refuses
// requests with UNAVAILABLE instead of hanging.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "dsinfer/v1/dsinfer.grpc.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "httplib.h"
#include "src/engine/batch_generator.h"
#include "src/runner/runner_factory.h"
#include "src/server/inference_server.h"

namespace dsinfer {
namespace {

const std::string kModel = std::string(DSINFER_SOURCE_DIR) + "/tests/fixtures/models/v2_lite_bf16";

std::vector<pid_t> ChildPids() {
  std::vector<pid_t> out;
  std::ifstream f(absl::StrCat("/proc/self/task/", getpid(), "/children"));
  pid_t p;
  while (f >> p) out.push_back(p);
  return out;
}

int Get(int port, const char* path) {
  httplib::Client c("127.0.0.1", port);
  auto r = c.Get(path);
  return r ? r->status : -1;
}
int Readyz(int port) { return Get(port, "/readyz"); }

grpc::Status Generate(v1::Inference::Stub& stub, const std::vector<int32_t>& ids, int n,
                      std::vector<int32_t>* out) {
  v1::GenerateRequest req;
  req.mutable_token_ids()->mutable_ids()->Assign(ids.begin(), ids.end());
  req.set_max_tokens(n);
  req.set_ignore_eos(true);
  req.mutable_sampling()->set_temperature(0);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  auto reader = stub.Generate(&ctx, req);
  v1::GenerateResponse m;
  while (reader->Read(&m)) out->insert(out->end(), m.token_ids().begin(), m.token_ids().end());
  return reader->Finish();
}

TEST(ShardedServer, ServesLikeOneRankAndFailsClearlyWhenARankDies) {
  setenv("DSINFER_WORKER_BINARY", DSINFER_CLI, 1);
  auto config = ParseServerConfig(absl::StrCat(R"(
model_path: )", kModel, R"(
dtype: f32
threads: 1
grpc_listen: 127.0.0.1:0
http_listen: 127.0.0.1:0
allow_unauthenticated: true
kv_cache: {num_blocks: 64}
parallel: {tp: 2, ep: 2, timeout_seconds: 5}
log_level: warning
)"));
  ASSERT_TRUE(config.ok()) << config.status();
  auto model = LoadModelConfig(kModel);
  ASSERT_TRUE(model.ok());
  auto server = InferenceServer::Create(*config, *model);
  ASSERT_TRUE(server.ok()) << server.status();
  ASSERT_TRUE((*server)->StartListeners().ok());
  ASSERT_TRUE((*server)->LoadModel(nullptr).ok());
  auto stub = v1::Inference::NewStub(grpc::CreateChannel(
      absl::StrCat("127.0.0.1:", (*server)->grpc_port()), grpc::InsecureChannelCredentials()));
  EXPECT_EQ(Readyz((*server)->http_port()), 200);
  EXPECT_EQ(Get((*server)->http_port(), "/healthz"), 200);

  // Greedy tokens equal one rank's (CPU f32, the same model).
  const std::vector<int32_t> prompt = {3, 14, 15, 92, 65, 35};
  std::vector<int32_t> got;
  ASSERT_TRUE(Generate(*stub, prompt, 12, &got).ok());
  auto single = MakeModelRunner(
      {.model_dir = kModel, .precision = Precision::kF32, .threads = 1, .num_kv_blocks = 4});
  ASSERT_TRUE(single.ok()) << single.status();
  GenerationRequest req;
  req.prompt = prompt;
  req.max_tokens = 12;
  req.stop_at_eos = false;
  auto want = GenerateOnRunner(**single, {&req, 1});
  ASSERT_TRUE(want.ok());
  EXPECT_EQ(got, (*want)[0].tokens);
  {
    grpc::ClientContext ctx;
    v1::ModelInfoRequest mreq;
    v1::ModelInfoResponse info;
    ASSERT_TRUE(stub->ModelInfo(&ctx, mreq, &info).ok());
    EXPECT_EQ(info.tensor_parallel_size(), 2u);
    EXPECT_EQ(info.expert_parallel_size(), 2u);
  }

  // Kill the worker rank: not ready within a heartbeat, and requests end at once, clearly.
  const std::vector<pid_t> kids = ChildPids();
  ASSERT_EQ(kids.size(), 1u);
  kill(kids[0], SIGKILL);
  const auto t0 = std::chrono::steady_clock::now();
  while (Readyz((*server)->http_port()) == 200 &&
         std::chrono::steady_clock::now() - t0 < std::chrono::seconds(15))
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(Readyz((*server)->http_port()), 503);
  // Liveness fails too: the group never recovers in place, a restart (of the group) cures it.
  EXPECT_EQ(Get((*server)->http_port(), "/healthz"), 503);
  // grpc.health.v1 agrees with /readyz (load balancers that probe gRPC stop sending traffic).
  auto channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", (*server)->grpc_port()),
                                     grpc::InsecureChannelCredentials());
  auto health = grpc::health::v1::Health::NewStub(channel);
  for (const std::string service : {"", "dsinfer.v1.Inference"}) {
    grpc::health::v1::HealthCheckResponse resp;
    for (int i = 0; i < 30; ++i) {
      grpc::ClientContext ctx;
      grpc::health::v1::HealthCheckRequest hreq;
      hreq.set_service(service);
      ASSERT_TRUE(health->Check(&ctx, hreq, &resp).ok());
      if (resp.status() != grpc::health::v1::HealthCheckResponse::SERVING) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    EXPECT_EQ(resp.status(), grpc::health::v1::HealthCheckResponse::NOT_SERVING)
        << "service \"" << service << "\"";
  }
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(8));
  got.clear();
  const auto t1 = std::chrono::steady_clock::now();
  grpc::Status st = Generate(*stub, prompt, 4, &got);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAVAILABLE) << st.error_message();
  EXPECT_NE(st.error_message().find("ranks are no longer complete"), std::string::npos)
      << st.error_message();
  EXPECT_LT(std::chrono::steady_clock::now() - t1, std::chrono::seconds(1));
  (*server)->Drain(0);
}

}  // namespace
}  // namespace dsinfer
