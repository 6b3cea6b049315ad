// Faults found by trying the server as a hostile client and as a careless operator (issue 13):
// each was reproduced, and each test here failed before its fix.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "src/core/status_macros.h"
#include "src/engine/forwarding_runner.h"
#include "src/runner/runner_factory.h"
#include "tests/server_harness.h"

namespace dsinfer {
namespace {

using namespace dsinfer::testing;  // NOLINT: the harness is this file's vocabulary

absl::StatusOr<std::unique_ptr<InferenceServer>> MakeServer(const std::string& model_dir,
                                                            const std::string& yaml) {
  absl::StatusOr<ServerConfig> config = ParseServerConfig(yaml);
  if (!config.ok()) return config.status();
  absl::StatusOr<ModelConfig> model = LoadModelConfig(model_dir);
  if (!model.ok()) return model.status();
  return InferenceServer::Create(*config, *std::move(model));
}

// LoadModel's error for the ids fixture with `edit` applied to the server config or, through
// `config_json`, to a copy of the model directory (the checkpoint itself is linked, not copied).
absl::Status LoadError(const std::string& kv_yaml,
                       const std::function<void(nlohmann::json&)>& config_json = nullptr) {
  std::string dir = kIdsModel;
  if (config_json) {
    const fs::path copy = fs::temp_directory_path() / absl::StrCat("dsinfer_faults_", getpid());
    fs::remove_all(copy);
    fs::create_directories(copy);
    fs::create_symlink(fs::path(kIdsModel) / "model.safetensors", copy / "model.safetensors");
    std::ifstream in(fs::path(kIdsModel) / "config.json");
    nlohmann::json cfg = nlohmann::json::parse(in);
    config_json(cfg);
    std::ofstream(copy / "config.json") << cfg.dump();
    dir = copy.string();
  }
  std::string yaml = ConfigYaml(dir, 64);
  yaml.replace(yaml.find("  num_blocks: 64"), std::string("  num_blocks: 64").size(), kv_yaml);
  auto server = MakeServer(dir, yaml);
  if (!server.ok()) return server.status();
  absl::Status st = (*server)->LoadModel(nullptr);
  (*server)->Drain(0);
  return st;
}

// The lines `fn` writes on stderr (fd 2), after the server logs are flushed.
std::vector<std::string> StderrOf(InferenceServer& server, const std::function<void()>& fn) {
  const fs::path capture = fs::temp_directory_path() / absl::StrCat("dsinfer_stderr_", getpid());
  std::fflush(stderr);
  const int saved = dup(2);
  FILE* f = std::fopen(capture.c_str(), "w");
  EXPECT_NE(f, nullptr);
  if (f == nullptr) return {};
  dup2(fileno(f), 2);
  fn();
  server.log().Flush();
  std::fflush(stderr);
  dup2(saved, 2);
  close(saved);
  std::fclose(f);
  std::ifstream in(capture);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) lines.push_back(line);
  }
  fs::remove(capture);
  return lines;
}

void ExpectJsonLines(const std::vector<std::string>& lines, const std::string& event) {
  bool seen = false;
  for (const std::string& line : lines) {
    EXPECT_TRUE(nlohmann::json::accept(line)) << "not a JSON line: " << line;
    if (nlohmann::json::accept(line))
      seen |= nlohmann::json::parse(line).value("event", "") == event;
  }
  EXPECT_TRUE(seen) << "no \"" << event << "\" line";
}

// Absurd sizes are refused at start-up naming the field, not with std::bad_alloc (SIGABRT), and
// a vocab_size the checkpoint does not have is refused at once, not after a 20 s allocation.
TEST(ServerFaults, AbsurdSizesAreRefusedNamingTheField) {
  absl::Status st = LoadError("  num_blocks: 2000000000");
  EXPECT_EQ(st.code(), absl::StatusCode::kResourceExhausted) << st;
  EXPECT_EQ(st.message().rfind("kv_cache.num_blocks: 2000000000", 0), 0u) << st;

  st = LoadError("  memory_bytes: 1TiB");
  EXPECT_EQ(st.code(), absl::StatusCode::kResourceExhausted) << st;
  EXPECT_EQ(st.message().rfind("kv_cache.memory_bytes: 1.0 TiB", 0), 0u) << st;

  st = LoadError("  num_blocks: 64", [](nlohmann::json& c) { c["hidden_size"] = 16777216; });
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << st;
  EXPECT_EQ(st.message().rfind("hidden_size: config.json says 16777216", 0), 0u) << st;

  const auto t0 = std::chrono::steady_clock::now();
  st = LoadError("  num_blocks: 64", [](nlohmann::json& c) { c["vocab_size"] = 16777216; });
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << st;
  EXPECT_EQ(st.message().rfind("vocab_size: config.json says 16777216", 0), 0u) << st;
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(2));
}

// A second server on a port in use is an error, not a silent SO_REUSEPORT traffic split.
TEST(ServerFaults, ASecondServerOnTheSamePortIsRefused) {
  TestServer& first = IdsServer();
  const std::string port = absl::StrCat(first.server->grpc_port());
  auto second =
      MakeServer(kIdsModel, ConfigYaml(kIdsModel, 64, kDefaultScheduler, "127.0.0.1:" + port));
  ASSERT_TRUE(second.ok()) << second.status();
  absl::Status st;
  // gRPC's own complaint ("Address already in use") is a JSON log line too.
  ExpectJsonLines(StderrOf(**second, [&] { st = (*second)->StartListeners(); }), "grpc");
  EXPECT_FALSE(st.ok());
  EXPECT_EQ(st.message().rfind("grpc_listen: cannot listen on 127.0.0.1:" + port, 0), 0u) << st;
  // The first one still answers.
  EXPECT_TRUE(Generate(first, IdsRequest({1, 2, 3}, 2)).status.ok());
}

// The tiny V3 model; remembers the vocabulary limit the engine set.
class LimitRecordingRunner : public ForwardingRunner {
 public:
  using ForwardingRunner::ForwardingRunner;
  void LimitSampledVocabulary(int64_t n) override {
    limit = n;
    ForwardingRunner::LimitSampledVocabulary(n);
  }
  int64_t limit = -1;
};

// One rule for ids the tokenizer lacks (the model's vocabulary is padded to 129,280, the
// tokenizer has 128,815): they are never sampled, so every id Generate returns detokenizes.
// The engine hands the runner the tokenizer's size; that the runner never samples past it, even
// where a padded id is the most likely, is model_program_test's SampledVocabularyLimit.
TEST(ServerFaults, EveryGeneratedIdDetokenizes) {
  const std::string dir = TinyModelDir();
  auto server = MakeServer(dir, ConfigYaml(dir, 64));
  ASSERT_TRUE(server.ok()) << server.status();
  ASSERT_TRUE((*server)->StartListeners().ok());
  auto runner = MakeModelRunner(
      {.model_dir = dir, .precision = Precision::kF32, .threads = 2, .num_kv_blocks = 64});
  ASSERT_TRUE(runner.ok()) << runner.status();
  auto tokenizer = Tokenizer::FromFile(dir + "/tokenizer.json");
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  const int32_t tokenizer_vocab = (*tokenizer)->vocab_size();
  ASSERT_LT(tokenizer_vocab, (*runner)->config().vocab_size);
  auto recording = std::make_unique<LimitRecordingRunner>(*std::move(runner));
  LimitRecordingRunner* rec = recording.get();
  ASSERT_TRUE((*server)->StartEngine(std::move(recording), *std::move(tokenizer)).ok());
  EXPECT_EQ(rec->limit, tokenizer_vocab);
  TestServer s;
  s.channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", (*server)->grpc_port()),
                                  grpc::InsecureChannelCredentials());
  s.stub = v1::Inference::NewStub(s.channel);
  v1::GenerateRequest req = ChatRequest("Tell me about the residence permit.", 6);
  req.set_ignore_eos(true);
  for (float temperature : {0.0f, 1.0f}) {
    req.mutable_sampling()->set_temperature(temperature);
    req.mutable_sampling()->set_seed(1);
    Call c = Generate(s, req);
    ASSERT_TRUE(c.status.ok()) << c.status.error_message();
    ASSERT_EQ(c.ids().size(), 6u);
    for (int32_t id : c.ids()) EXPECT_LT(id, tokenizer_vocab);
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", absl::StrCat("Bearer ", kKeyA));
    v1::DetokenizeRequest dreq;
    for (int32_t id : c.ids()) dreq.add_token_ids(id);
    dreq.set_skip_special_tokens(true);
    v1::DetokenizeResponse dresp;
    grpc::Status st = s.stub->Detokenize(&ctx, dreq, &dresp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    EXPECT_EQ(c.text(), dresp.text());
  }
  (*server)->Drain(0);
}

// A vanishing temperature is greedy (1 / 1e-45 overflowed to inf and NaN probabilities).
TEST(ServerFaults, TinyTemperatureIsGreedy) {
  TestServer& s = IdsServer();
  v1::GenerateRequest greedy = IdsRequest(Prompt(12, 9), 16);
  Call want = Generate(s, greedy);
  ASSERT_TRUE(want.status.ok()) << want.status.error_message();
  v1::GenerateRequest tiny = greedy;
  tiny.mutable_sampling()->set_temperature(1e-45f);
  tiny.mutable_sampling()->set_seed(7);
  Call got = Generate(s, tiny);
  ASSERT_TRUE(got.status.ok()) << got.status.error_message();
  EXPECT_EQ(got.ids(), want.ids());
}

// Invalid UTF-8 makes protobuf complain; that line goes through the JSON log, so stderr stays
// one JSON object per line whatever a client sends.
TEST(ServerFaults, ProtobufComplaintsAreJsonLogLines) {
  TestServer& s = TextServer();
  v1::GenerateRequest req = ChatRequest("ok", 2);
  req.mutable_chat()->mutable_messages(0)->set_content("bad \xff\xfe bytes");
  Call c;
  ExpectJsonLines(StderrOf(*s.server, [&] { c = Generate(s, req); }), "protobuf");
  EXPECT_EQ(c.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

// A wrong TLS file is named; it used to surface as "grpc_listen: cannot listen on ...".
TEST(ServerFaults, BadTlsFilesAreNamed) {
  if (std::system("command -v openssl >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "the openssl command is not installed; cannot make test certificates";
  }
  const TestPki pki = TestPki::Make();
  ASSERT_TRUE(pki.ok) << pki.Read("openssl.log");
  { std::ofstream(pki.dir / "garbage.pem") << "not a certificate\n"; }
  auto start = [&](const std::string& cert, const std::string& key) {
    const std::string yaml =
        absl::StrCat(ConfigYaml(kIdsModel, 64), "\ntls:\n  enabled: true\n",
                     "  cert_file: ", pki.Path(cert), "\n  key_file: ", pki.Path(key), "\n");
    auto server = MakeServer(kIdsModel, yaml);
    EXPECT_TRUE(server.ok()) << server.status();
    return server.ok() ? (*server)->StartListeners() : server.status();
  };
  absl::Status st = start("garbage.pem", "server.key");
  EXPECT_EQ(st.message().rfind("tls.cert_file: " + pki.Path("garbage.pem"), 0), 0u) << st;
  st = start("server.pem", "garbage.pem");
  EXPECT_EQ(st.message().rfind("tls.key_file: " + pki.Path("garbage.pem"), 0), 0u) << st;
  st = start("server.pem", "stranger.key");
  EXPECT_EQ(st.message().rfind("tls.key_file: " + pki.Path("stranger.key"), 0), 0u) << st;
  EXPECT_NE(st.message().find("does not match"), std::string::npos) << st;
  EXPECT_TRUE(start("server.pem", "server.key").ok());
  fs::remove_all(pki.dir);
}

}  // namespace
}  // namespace dsinfer
