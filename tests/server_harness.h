// Shared by the server's loopback tests: a real InferenceServer on 127.0.0.1 (ephemeral ports)
// and real gRPC channels. Token-id tests use the v2_lite_bf16 fixture at f32 (tiny, no
// tokenizer); text tests use the bundled tiny V3 model (real tokenizer), generated once into
// the build tree.
#pragma once

#include <google/protobuf/unknown_field_set.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "dsinfer/v1/dsinfer.grpc.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "httplib.h"
#include "src/config/server_config.h"
#include "src/config/sha256.h"
#include "src/server/auth.h"
#include "src/server/inference_server.h"
#include "src/tokenizer/tokenizer.h"
#include "src/weights/tiny_model.h"
#include "tests/test_pki.h"

namespace dsinfer::testing {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

inline const std::string kSrc = DSINFER_SOURCE_DIR;
inline const std::string kIdsModel = kSrc + "/tests/fixtures/models/v2_lite_bf16";
inline constexpr char kKeyA[] = "key-county-a";
inline constexpr char kKeyDispatch[] = "key-dispatch";
inline constexpr char kKeyQuota[] = "key-quota";
inline constexpr char kKeyBatchOnly[] = "key-batch-only";
// Longer than any test waits, and within the ids server's KV pool (1024 blocks of 64 tokens).
inline constexpr uint32_t kLongRun = 30000;

// Waits for `flag` (set by another thread); false after `timeout`.
inline bool WaitFor(const std::atomic<bool>& flag, milliseconds timeout = milliseconds(10000)) {
  const auto until = steady_clock::now() + timeout;
  while (!flag.load()) {
    if (steady_clock::now() > until) return false;
    std::this_thread::sleep_for(milliseconds(2));
  }
  return true;
}

// The bundled tiny model, written once per build tree (rename makes parallel tests safe).
inline std::string TinyModelDir() {
  const fs::path dir = fs::path(DSINFER_BINARY_DIR) / "test-models" / "tiny-v3";
  if (fs::exists(dir / "config.json")) return dir.string();
  const fs::path tmp = dir.string() + absl::StrCat(".tmp", getpid());
  fs::remove_all(tmp);
  absl::Status st = WriteTinyModel(tmp.string(), kSrc + "/models/tokenizers/deepseek-v3");
  if (!st.ok()) {
    ADD_FAILURE() << st;
    return "";
  }
  std::error_code ec;
  fs::rename(tmp, dir, ec);
  if (ec) fs::remove_all(tmp);  // another test process won the race
  return dir.string();
}

inline constexpr char kDefaultScheduler[] = R"(
scheduler:
  max_batched_tokens: 2048
  max_running: 64
  max_waiting: 256
  max_queue_seconds: 30
  prefill_chunk: 512)";

inline std::string ConfigYaml(const std::string& model_dir, int num_blocks,
                              const std::string& scheduler = kDefaultScheduler,
                              const std::string& listen = "127.0.0.1:0") {
  return absl::StrCat(R"(
model_path: )",
                      model_dir, R"(
dtype: f32
threads: 2
grpc_listen: )",
                      listen, R"(
http_listen: 127.0.0.1:0)",
                      scheduler, R"(
kv_cache:
  num_blocks: )",
                      num_blocks, R"(
  prefix_caching: true
tenants:
  - id: county-a
    max_priority: interactive
    api_key_sha256: [)",
                      Sha256Hex(kKeyA), R"(]
  - id: dispatch
    weight: 4
    max_priority: emergency
    api_key_sha256: [)",
                      Sha256Hex(kKeyDispatch), R"(]
  - id: quota
    max_priority: interactive
    max_concurrent: 1
    api_key_sha256: [)",
                      Sha256Hex(kKeyQuota), R"(]
  - id: analytics
    max_priority: batch
    api_key_sha256: [)",
                      Sha256Hex(kKeyBatchOnly), R"(]
drain_grace_seconds: 5
log_level: warning
)");
}

struct TestServer {
  std::unique_ptr<InferenceServer> server;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<v1::Inference::Stub> stub;

  static std::unique_ptr<TestServer> Start(const std::string& model_dir, int num_blocks = 1024) {
    return StartYaml(model_dir, ConfigYaml(model_dir, num_blocks));
  }

  // `runner`: serve it instead of loading model_dir's weights (the config still comes from
  // model_dir), with `tokenizer` (may be null) and `chat_format` (unset: model_dir's).
  static std::unique_ptr<TestServer> StartYaml(
      const std::string& model_dir, const std::string& yaml,
      std::unique_ptr<ModelRunner> runner = nullptr, std::unique_ptr<Tokenizer> tokenizer = nullptr,
      std::optional<chat::ChatFormat> chat_format = std::nullopt) {
    auto t = std::make_unique<TestServer>();
    absl::StatusOr<ServerConfig> config = ParseServerConfig(yaml);
    EXPECT_TRUE(config.ok()) << config.status();
    if (!config.ok()) return nullptr;
    absl::StatusOr<ModelConfig> model = LoadModelConfig(model_dir);
    EXPECT_TRUE(model.ok()) << model.status();
    if (!model.ok()) return nullptr;
    absl::StatusOr<std::unique_ptr<InferenceServer>> s =
        InferenceServer::Create(*config, *std::move(model));
    EXPECT_TRUE(s.ok()) << s.status();
    if (!s.ok()) return nullptr;
    t->server = *std::move(s);
    absl::Status st = t->server->StartListeners();
    EXPECT_TRUE(st.ok()) << st;
    st = runner ? t->server->StartEngine(std::move(runner), std::move(tokenizer), chat_format)
                : t->server->LoadModel(nullptr);
    EXPECT_TRUE(st.ok()) << st;
    if (!st.ok()) return nullptr;
    t->channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", t->server->grpc_port()),
                                     grpc::InsecureChannelCredentials());
    t->stub = v1::Inference::NewStub(t->channel);
    return t;
  }

  // KV blocks held by sequences (cached prefix blocks that nobody holds do not count).
  int32_t BlocksHeld() const {
    const SchedulerStats s = server->engine()->Stats();
    return s.kv_blocks_used - s.kv_blocks_evictable;
  }

  // Polls until no sequence runs or waits and none holds a KV block.
  bool WaitUntilReleased(milliseconds timeout = milliseconds(3000)) const {
    const auto until = steady_clock::now() + timeout;
    while (steady_clock::now() < until) {
      const SchedulerStats s = server->engine()->Stats();
      int32_t waiting = 0;
      for (int32_t w : s.waiting) waiting += w;
      if (server->engine()->Idle() && s.running == 0 && waiting == 0 && BlocksHeld() == 0) {
        return true;
      }
      std::this_thread::sleep_for(milliseconds(10));
    }
    return false;
  }
};

// Shared servers, started on first use (ctest runs every test in its own process).
inline TestServer& IdsServer() {
  static std::unique_ptr<TestServer> s = TestServer::Start(kIdsModel);
  return *s;
}
inline TestServer& TextServer() {
  static std::unique_ptr<TestServer> s = TestServer::Start(TinyModelDir(), 256);
  return *s;
}

struct Call {
  grpc::Status status;
  std::vector<v1::GenerateResponse> messages;
  std::multimap<std::string, std::string> trailers;
  double seconds = 0;

  std::vector<int32_t> ids() const {
    std::vector<int32_t> out;
    for (const auto& m : messages)
      out.insert(out.end(), m.token_ids().begin(), m.token_ids().end());
    return out;
  }
  std::string text() const {
    std::string out;
    for (const auto& m : messages) out += m.text();
    return out;
  }
};

inline Call Generate(TestServer& s, const v1::GenerateRequest& req, const std::string& key = kKeyA,
                     double timeout_seconds = 60,
                     const std::function<void(grpc::ClientContext&, int)>& on_message = nullptr) {
  grpc::ClientContext ctx;
  if (!key.empty()) ctx.AddMetadata("authorization", absl::StrCat("Bearer ", key));
  ctx.set_deadline(std::chrono::system_clock::now() +
                   std::chrono::milliseconds(static_cast<int64_t>(timeout_seconds * 1000)));
  const auto t0 = steady_clock::now();
  std::unique_ptr<grpc::ClientReader<v1::GenerateResponse>> reader = s.stub->Generate(&ctx, req);
  Call c;
  v1::GenerateResponse m;
  while (reader->Read(&m)) {
    c.messages.push_back(m);
    if (on_message) on_message(ctx, static_cast<int>(c.messages.size()));
  }
  c.status = reader->Finish();
  c.seconds = std::chrono::duration<double>(steady_clock::now() - t0).count();
  for (const auto& [k, v] : ctx.GetServerTrailingMetadata()) {
    c.trailers.emplace(std::string(k.data(), k.size()), std::string(v.data(), v.size()));
  }
  return c;
}

inline v1::GenerateRequest IdsRequest(std::vector<int32_t> ids, uint32_t max_tokens) {
  v1::GenerateRequest r;
  r.mutable_token_ids()->mutable_ids()->Assign(ids.begin(), ids.end());
  r.set_max_tokens(max_tokens);
  r.set_ignore_eos(true);
  return r;
}

inline v1::GenerateRequest ChatRequest(const std::string& user, uint32_t max_tokens) {
  v1::GenerateRequest r;
  v1::ChatMessage* m = r.mutable_chat()->add_messages();
  m->set_role("user");
  m->set_content(user);
  r.set_max_tokens(max_tokens);
  return r;
}

// The value of one series in the Prometheus text ("name{labels}" exactly as rendered).
inline double Sample(const std::string& exposition, const std::string& series) {
  const std::string key = "\n" + series + " ";
  const size_t at = exposition.find(key);
  if (at == std::string::npos) return -1;
  return std::stod(exposition.substr(at + key.size()));
}

// Engine steps that ran more than 8 sequences at once, so far.
inline double WideSteps(TestServer& s) {
  const std::string text = s.server->metrics().Render();
  return Sample(text, "dsinfer_batch_sequences_count") -
         Sample(text, "dsinfer_batch_sequences_bucket{le=\"8\"}");
}

inline std::vector<int32_t> Prompt(int n, int seed) {
  std::vector<int32_t> p;
  for (int i = 0; i < n; ++i) p.push_back(2 + (seed * 131 + i * 17 + i * i * 7) % 500);
  return p;
}

inline grpc::health::v1::HealthCheckResponse::ServingStatus Health(
    const std::shared_ptr<grpc::Channel>& channel, const std::string& service) {
  auto stub = grpc::health::v1::Health::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  grpc::health::v1::HealthCheckRequest req;
  req.set_service(service);
  grpc::health::v1::HealthCheckResponse resp;
  grpc::Status st = stub->Check(&ctx, req, &resp);
  EXPECT_TRUE(st.ok()) << st.error_message();
  return resp.status();
}

}  // namespace dsinfer::testing
