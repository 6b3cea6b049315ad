// ServerConfig: the bundled configs parse; every invalid input is InvalidArgument naming its key.
#include "src/config/server_config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "src/config/priority.h"
#include "src/config/sha256.h"

namespace dsinfer {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kKeyA[] = "414c6158bb30e2cc286db2af3dc999dc89656ec73ac429f6f8081fe778aa187d";
constexpr char kKeyB[] = "3e7d454d68b3851908c171470f50d0b16fae787c3b18d6b39411f1e40f0626ec";

// A valid config; tests append or replace lines to break one thing at a time.
std::string Minimal(const std::string& extra = "") {
  return std::string("model_path: /models/m\n") + extra +
         "tenants:\n"
         "  - id: county-a\n"
         "    api_key_sha256: [" +
         kKeyA + "]\n";
}

std::string ErrorOf(const std::string& yaml) {
  absl::StatusOr<ServerConfig> c = ParseServerConfig(yaml);
  if (c.ok()) return "OK";
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument) << c.status();
  return std::string(c.status().message());
}

TEST(Sha256Hex, KnownVectors) {
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Sha256Hex("local-key-anning"), kKeyA);
}

TEST(Priority, NamesRoundTrip) {
  for (Priority p : {Priority::kEmergency, Priority::kInteractive, Priority::kBatch}) {
    EXPECT_EQ(ParsePriority(PriorityName(p)), p);
  }
  EXPECT_EQ(ParsePriority("urgent"), std::nullopt);
  EXPECT_EQ(ParsePriority("Emergency"), std::nullopt);
  EXPECT_LT(Priority::kEmergency, Priority::kBatch);
}

TEST(ServerConfig, MinimalGetsDefaults) {
  absl::StatusOr<ServerConfig> c = ParseServerConfig(Minimal());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->model_path, "/models/m");
  EXPECT_EQ(c->dtype, "bf16");
  EXPECT_EQ(c->backend, "cpu");
  EXPECT_FALSE(c->dequantize_fp8);
  EXPECT_EQ(c->grpc_listen, "0.0.0.0:50051");
  EXPECT_EQ(c->http_listen, "0.0.0.0:9090");
  EXPECT_FALSE(c->tls.enabled);
  EXPECT_EQ(c->scheduler.max_batched_tokens, 2048);
  EXPECT_EQ(c->scheduler.max_running, 64);
  EXPECT_EQ(c->scheduler.max_waiting, 1024);
  EXPECT_DOUBLE_EQ(c->scheduler.max_queue_seconds, 30);
  EXPECT_EQ(c->scheduler.prefill_chunk, 512);
  EXPECT_EQ(c->scheduler.max_preemptions_per_request, 2);
  EXPECT_TRUE(c->scheduler.step_share);
  EXPECT_DOUBLE_EQ(c->scheduler.share_window_seconds, 5);
  EXPECT_EQ(c->kv_cache.num_blocks, 0);
  EXPECT_TRUE(c->kv_cache.prefix_caching);
  ASSERT_EQ(c->tenants.size(), 1u);
  EXPECT_EQ(c->tenants[0].id, "county-a");
  EXPECT_DOUBLE_EQ(c->tenants[0].weight, 1.0);
  EXPECT_EQ(c->tenants[0].max_priority, Priority::kInteractive);
  EXPECT_FALSE(c->allow_unauthenticated);
  EXPECT_DOUBLE_EQ(c->drain_grace_seconds, 30);
  EXPECT_FALSE(c->log_request_content);
  EXPECT_EQ(c->log_level, "info");
  EXPECT_TRUE(c->openai_listen.empty());
  EXPECT_EQ(c->http.max_header_bytes, 16 << 10);
  EXPECT_EQ(c->http.max_body_bytes, 4 << 20);
  EXPECT_DOUBLE_EQ(c->http.header_timeout_seconds, 10);
  EXPECT_EQ(c->http.max_connections, 1024);
  EXPECT_EQ(c->http.max_connections_per_address, 64);
}

TEST(ServerConfig, DequantizeFp8IsABoolean) {
  absl::StatusOr<ServerConfig> c = ParseServerConfig(Minimal("dequantize_fp8: true\n"));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(c->dequantize_fp8);
  c = ParseServerConfig(Minimal("dequantize_fp8: sometimes\n"));
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("dequantize_fp8"), std::string::npos) << c.status();
}

TEST(ServerConfig, MtpDraftTokens) {
  absl::StatusOr<ServerConfig> c = ParseServerConfig(Minimal("mtp: true\n"));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->mtp_draft_tokens, 1);  // today's one-token drafts by default
  c = ParseServerConfig(Minimal("mtp: true\nmtp_draft_tokens: 3\n"));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->mtp_draft_tokens, 3);
  EXPECT_THAT(ErrorOf(Minimal("mtp: true\nmtp_draft_tokens: 0\n")), HasSubstr("mtp_draft_tokens"));
  EXPECT_THAT(ErrorOf(Minimal("mtp: true\nmtp_draft_tokens: 64\n")),
              HasSubstr("mtp_draft_tokens"));
  EXPECT_THAT(ErrorOf(Minimal("mtp: true\nmtp_draft_tokens: two\n")),
              HasSubstr("mtp_draft_tokens"));
  EXPECT_THAT(ErrorOf(Minimal("mtp_draft_tokens: 2\n")),
              HasSubstr("mtp_draft_tokens: 2 drafts but mtp is false"));
}

TEST(ServerConfig, HttpSection) {
  absl::StatusOr<ServerConfig> c = ParseServerConfig(Minimal(
      "openai_listen: 127.0.0.1:8000\n"
      "http:\n  max_header_bytes: 8192\n  max_body_bytes: 1048576\n"
      "  header_timeout_seconds: 2.5\n  body_timeout_seconds: 5\n  idle_timeout_seconds: 7\n"
      "  write_timeout_seconds: 9\n  max_connections: 100\n  max_connections_per_address: 10\n"
      "  threads: 2\n"));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->openai_listen, "127.0.0.1:8000");
  EXPECT_EQ(c->http.max_header_bytes, 8192);
  EXPECT_EQ(c->http.max_body_bytes, 1 << 20);
  EXPECT_DOUBLE_EQ(c->http.header_timeout_seconds, 2.5);
  EXPECT_DOUBLE_EQ(c->http.body_timeout_seconds, 5);
  EXPECT_DOUBLE_EQ(c->http.idle_timeout_seconds, 7);
  EXPECT_DOUBLE_EQ(c->http.write_timeout_seconds, 9);
  EXPECT_EQ(c->http.max_connections, 100);
  EXPECT_EQ(c->http.max_connections_per_address, 10);
  EXPECT_EQ(c->http.threads, 2);
}

TEST(ServerConfig, LocalYaml) {
  const std::string path = std::string(DSINFER_SOURCE_DIR) + "/configs/local.yaml";
  absl::StatusOr<ServerConfig> c = LoadServerConfig(path);
  ASSERT_TRUE(c.ok()) << c.status();
  // Relative to configs/, not to the working directory.
  EXPECT_EQ(
      std::filesystem::path(c->model_path),
      (std::filesystem::path(DSINFER_SOURCE_DIR) / "models/generated/tiny-v3").lexically_normal());
  EXPECT_EQ(c->backend, "cpu");
  EXPECT_EQ(c->grpc_listen, "127.0.0.1:50051");
  EXPECT_EQ(c->http_listen, "127.0.0.1:9090");
  EXPECT_FALSE(c->tls.enabled);
  bool has_emergency = false;
  for (const TenantConfig& t : c->tenants) {
    if (t.max_priority == Priority::kEmergency) has_emergency = true;
    EXPECT_FALSE(t.api_key_sha256.empty()) << t.id;
  }
  EXPECT_TRUE(has_emergency);
  // The comment's example key belongs to the first tenant.
  EXPECT_EQ(c->tenants[0].api_key_sha256[0], Sha256Hex("local-key-anning"));
}

TEST(ServerConfig, ProductionYaml) {
  const std::string path = std::string(DSINFER_SOURCE_DIR) + "/configs/production.yaml";
  absl::StatusOr<ServerConfig> c = LoadServerConfig(path);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->backend, "cuda");
  EXPECT_TRUE(c->tls.enabled);
  EXPECT_TRUE(c->tls.require_client_cert);
  EXPECT_EQ(c->tls.cert_file, "/etc/dsinfer/tls/tls.crt");
  EXPECT_GE(c->tenants.size(), 12u);
  int emergency = 0, batch = 0;
  for (const TenantConfig& t : c->tenants) {
    emergency += t.max_priority == Priority::kEmergency;
    batch += t.max_priority == Priority::kBatch;
    EXPECT_GT(t.weight, 0);
  }
  EXPECT_EQ(emergency, 1);
  EXPECT_EQ(batch, 1);
  EXPECT_FALSE(c->allow_unauthenticated);
}

TEST(ServerConfig, FullTenantAndSections) {
  const std::string yaml = std::string(R"(
model_path: relative/model
dtype: bf16
backend: cuda
threads: 8
grpc_listen: "[::1]:6000"
http_listen: localhost:0
tls:
  enabled: true
  cert_file: c.pem
  key_file: k.pem
  client_ca_file: ca.pem
  require_client_cert: True
  on_http_listen: true
scheduler: {max_batched_tokens: 4096, max_running: 32, max_waiting: 0, max_queue_seconds: 2.5, prefill_chunk: 4096, max_preemptions_per_request: 0, step_share: false, share_window_seconds: 0.5}
kv_cache: {memory_bytes: 60GiB, memory_fraction: 0.5, prefix_caching: false}
tenants:
  - id: dispatch
    weight: 2.5
    max_priority: emergency
    max_concurrent: 3
    max_queued: 4
    tokens_per_minute: 5000
    api_key_sha256: [)") + "3E7D454D68B3851908C171470F50D0B16FAE787C3B18D6B39411F1E40F0626EC" +
                           R"(]
    client_cert_identities: ["CN=dispatch", dispatch.example]
  - id: analytics
    max_priority: batch
    client_cert_identities: [analytics.example]
drain_grace_seconds: 0
log_level: warning
)";
  absl::StatusOr<ServerConfig> c = ParseServerConfig(yaml);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->model_path, "relative/model");  // ParseServerConfig leaves paths alone
  EXPECT_EQ(c->threads, 8);
  EXPECT_EQ(c->grpc_listen, "[::1]:6000");
  EXPECT_TRUE(c->tls.require_client_cert);
  EXPECT_TRUE(c->tls.on_http_listen);
  EXPECT_EQ(c->scheduler.max_waiting, 0);
  EXPECT_DOUBLE_EQ(c->scheduler.max_queue_seconds, 2.5);
  EXPECT_EQ(c->scheduler.max_preemptions_per_request, 0);
  EXPECT_FALSE(c->scheduler.step_share);
  EXPECT_DOUBLE_EQ(c->scheduler.share_window_seconds, 0.5);
  EXPECT_EQ(c->kv_cache.memory_bytes, int64_t{60} << 30);
  EXPECT_DOUBLE_EQ(c->kv_cache.memory_fraction, 0.5);
  EXPECT_FALSE(c->kv_cache.prefix_caching);
  const TenantConfig& t = c->tenants[0];
  EXPECT_DOUBLE_EQ(t.weight, 2.5);
  EXPECT_EQ(t.max_priority, Priority::kEmergency);
  EXPECT_EQ(t.max_concurrent, 3);
  EXPECT_EQ(t.max_queued, 4);
  EXPECT_EQ(t.tokens_per_minute, 5000);
  EXPECT_EQ(t.api_key_sha256[0], kKeyB);  // normalised to lower case
  EXPECT_THAT(t.client_cert_identities, ::testing::ElementsAre("CN=dispatch", "dispatch.example"));
  EXPECT_EQ(c->tenants[1].max_priority, Priority::kBatch);
  EXPECT_EQ(c->log_level, "warning");
}

TEST(ServerConfig, LoadResolvesRelativePaths) {
  const auto dir = std::filesystem::temp_directory_path() / "dsinfer_server_config_test";
  std::filesystem::create_directories(dir);
  const auto file = dir / "server.yaml";
  std::ofstream(file) << "model_path: ../m\n"
                         "tls: {enabled: true, cert_file: tls/c.pem, key_file: /abs/k.pem}\n"
                         "allow_unauthenticated: true\n";
  absl::StatusOr<ServerConfig> c = LoadServerConfig(file.string());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->model_path, (dir / "../m").lexically_normal().string());
  EXPECT_EQ(c->tls.cert_file, (dir / "tls/c.pem").string());
  EXPECT_EQ(c->tls.key_file, "/abs/k.pem");
  std::filesystem::remove_all(dir);
}

TEST(ServerConfig, LoadErrorsNameTheFile) {
  absl::StatusOr<ServerConfig> c = LoadServerConfig("/nonexistent/dsinfer.yaml");
  EXPECT_EQ(c.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(c.status().message(), HasSubstr("/nonexistent/dsinfer.yaml"));

  const auto file = std::filesystem::temp_directory_path() / "dsinfer_bad_server.yaml";
  std::ofstream(file) << "model_path: /m\nthreadz: 3\nallow_unauthenticated: true\n";
  c = LoadServerConfig(file.string());
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.status().message(), HasSubstr(file.string() + ": threadz: unknown key"));
  std::filesystem::remove(file);
}

TEST(ServerConfig, UnauthenticatedWithoutTenantsGetsAnonymous) {
  absl::StatusOr<ServerConfig> c =
      ParseServerConfig("model_path: /m\nallow_unauthenticated: true\n");
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->tenants.size(), 1u);
  EXPECT_EQ(c->tenants[0].id, "anonymous");
  EXPECT_EQ(c->default_tenant, "anonymous");
}

TEST(ServerConfig, DefaultTenantMayHaveNoCredentials) {
  absl::StatusOr<ServerConfig> c = ParseServerConfig(
      Minimal("allow_unauthenticated: true\ndefault_tenant: guest\n") + "  - id: guest\n");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->default_tenant, "guest");
}

struct BadCase {
  const char* name;
  std::string yaml;
  std::string message;  // expected substring
};

// Keeps ctest's test names short (gtest_discover_tests appends the printed parameter).
void PrintTo(const BadCase& c, std::ostream* os) { *os << c.name; }

class ServerConfigErrors : public ::testing::TestWithParam<BadCase> {};

TEST_P(ServerConfigErrors, NamesTheKey) {
  EXPECT_THAT(ErrorOf(GetParam().yaml), HasSubstr(GetParam().message));
}

const std::string kTenantB = std::string("  - id: county-b\n    api_key_sha256: [") + kKeyB + "]\n";

INSTANTIATE_TEST_SUITE_P(
    All, ServerConfigErrors,
    ::testing::Values(
        BadCase{"NotYaml", "model_path: [unclosed\n", "not valid YAML"},
        BadCase{"TopLevelSequence", "- a\n- b\n", "expected a mapping at the top level"},
        BadCase{"Empty", "", "model_path: required"},
        BadCase{"MissingModelPath",
                "tenants: [{id: a, api_key_sha256: [" + std::string(kKeyA) + "]}]\n",
                "model_path: required"},
        BadCase{"UnknownTopKey", Minimal("modle_path: /x\n"), "modle_path: unknown key"},
        BadCase{"UnknownSchedulerKey", Minimal("scheduler:\n  max_batched_tokenz: 10\n"),
                "scheduler.max_batched_tokenz: unknown key (line 3)"},
        BadCase{"UnknownTenantKey", Minimal() + "    colour: red\n",
                "tenants[0].colour: unknown key"},
        BadCase{"DuplicateKey", Minimal("backend: cpu\nbackend: cuda\n"), "backend: duplicate key"},
        BadCase{"SectionNotMap", Minimal("tls: yes\n"), "tls: expected a mapping, got a scalar"},
        BadCase{"BadPriority", Minimal() + kTenantB + "  - id: c\n    max_priority: urgent\n",
                "tenants[2].max_priority: \"urgent\" is not one of emergency, interactive, batch"},
        BadCase{"BadBackend", Minimal("backend: tpu\n"),
                "backend: \"tpu\" is not one of cpu, cuda"},
        BadCase{"BadDtype", Minimal("dtype: int4\n"), "dtype: \"int4\" is not one of bf16, f32"},
        BadCase{"CudaRunsBf16", Minimal("backend: cuda\ndtype: f32\n"),
                "dtype: \"f32\" with backend cuda: the cuda backend runs bf16"},
        BadCase{"BadLogLevel", Minimal("log_level: verbose\n"),
                "log_level: \"verbose\" is not one of"},
        BadCase{"IntNotInt", Minimal("threads: many\n"), "threads: \"many\" is not an integer"},
        BadCase{"IntIsFloat", Minimal("scheduler: {max_running: 1.5}\n"),
                "scheduler.max_running: \"1.5\" is not an integer"},
        BadCase{"IntIsList", Minimal("threads: [1]\n"),
                "threads: expected an integer, got a sequence"},
        BadCase{"BadBool", Minimal("kv_cache: {prefix_caching: maybe}\n"),
                "kv_cache.prefix_caching: \"maybe\" is not true or false"},
        BadCase{"ZeroWeight", Minimal() + "    weight: 0\n", "tenants[0].weight: must be > 0"},
        BadCase{"NegativeWeight", Minimal() + "    weight: -1\n", "tenants[0].weight: must be > 0"},
        BadCase{"NanWeight", Minimal() + "    weight: .nan\n",
                "tenants[0].weight: \".nan\" is not a finite number"},
        BadCase{"NegativeConcurrent", Minimal() + "    max_concurrent: -1\n",
                "tenants[0].max_concurrent: must be >= 0, got -1"},
        BadCase{"NegativeQueued", Minimal() + "    max_queued: -5\n",
                "tenants[0].max_queued: must be >= 0"},
        BadCase{"NegativeTpm", Minimal() + "    tokens_per_minute: -5\n",
                "tenants[0].tokens_per_minute: must be >= 0"},
        BadCase{"Int32Overflow", Minimal() + "    max_concurrent: 3000000000\n",
                "tenants[0].max_concurrent: must be <= 2147483647"},
        BadCase{"NegativeWaiting", Minimal("scheduler: {max_waiting: -1}\n"),
                "scheduler.max_waiting: must be >= 0"},
        BadCase{"ZeroBatchedTokens", Minimal("scheduler: {max_batched_tokens: 0}\n"),
                "scheduler.max_batched_tokens: must be >= 1"},
        BadCase{"ZeroQueueSeconds", Minimal("scheduler: {max_queue_seconds: 0}\n"),
                "scheduler.max_queue_seconds: must be > 0"},
        BadCase{"NegativePreemptions", Minimal("scheduler: {max_preemptions_per_request: -1}\n"),
                "scheduler.max_preemptions_per_request: must be >= 0"},
        BadCase{"NegativeShareWindow", Minimal("scheduler: {share_window_seconds: -1}\n"),
                "scheduler.share_window_seconds: must be >= 0"},
        BadCase{
            "RunningOverTokens",
            Minimal("scheduler: {max_batched_tokens: 16, max_running: 32, prefill_chunk: 16}\n"),
            "scheduler.max_running: 32 exceeds scheduler.max_batched_tokens"},
        BadCase{
            "ChunkOverTokens",
            Minimal("scheduler: {max_batched_tokens: 256, prefill_chunk: 512, max_running: 8}\n"),
            "scheduler.prefill_chunk: 512 exceeds"},
        BadCase{"NegativeBlocks", Minimal("kv_cache: {num_blocks: -1}\n"),
                "kv_cache.num_blocks: must be >= 0"},
        BadCase{"BadByteSize", Minimal("kv_cache: {memory_bytes: 60GB}\n"),
                "kv_cache.memory_bytes: \"60GB\" is not a byte count"},
        BadCase{"NegativeBytes", Minimal("kv_cache: {memory_bytes: -1}\n"),
                "kv_cache.memory_bytes: must be >= 0"},
        BadCase{"BlocksAndBytes", Minimal("kv_cache: {num_blocks: 10, memory_bytes: 1GiB}\n"),
                "kv_cache.memory_bytes: set together with kv_cache.num_blocks"},
        BadCase{"FractionOverOne", Minimal("kv_cache: {memory_fraction: 1.5}\n"),
                "kv_cache.memory_fraction: must be <= 1"},
        BadCase{"NegativeDrain", Minimal("drain_grace_seconds: -1\n"),
                "drain_grace_seconds: must be >= 0"},
        BadCase{"DuplicateTenant",
                Minimal() + "  - id: county-a\n    api_key_sha256: [" + kKeyB + "]\n",
                "tenants[1].id: duplicate tenant id \"county-a\""},
        BadCase{"MissingTenantId", Minimal() + "  - weight: 2\n", "tenants[1].id: required"},
        BadCase{"BadTenantId", Minimal() + "  - id: \"county a\"\n",
                "tenants[1].id: \"county a\" must be 1-64 characters"},
        BadCase{"TenantNotMap", Minimal() + "  - county-b\n",
                "tenants[1]: expected a mapping, got a scalar"},
        BadCase{"TenantsNotList", "model_path: /m\ntenants: {id: a}\n",
                "tenants: expected a sequence, got a mapping"},
        BadCase{"DuplicateTenantKey", Minimal() + kTenantB + "    api_key_sha256: [abc123]\n",
                "tenants[1].api_key_sha256: duplicate key (line 7)"},
        BadCase{"MalformedHash",
                "model_path: /m\ntenants:\n  - id: a\n    api_key_sha256: [" + std::string(kKeyA) +
                    ", abc123]\n",
                "tenants[0].api_key_sha256[1]: must be 64 hex characters"},
        BadCase{"NonHexHash",
                "model_path: /m\ntenants:\n  - id: a\n    api_key_sha256: [" +
                    std::string(63, 'a') + "g]\n",
                "tenants[0].api_key_sha256[0]: must be 64 hex characters"},
        BadCase{"SameKeyTwoTenants",
                Minimal() + "  - id: county-b\n    api_key_sha256: [" + kKeyA + "]\n",
                "tenants[1].api_key_sha256[0]: the same key hash is listed twice"},
        BadCase{"EmptyIdentity", Minimal() + "    client_cert_identities: [\"\"]\n",
                "tenants[0].client_cert_identities[0]: must not be empty"},
        BadCase{"IdentityWithoutTls", Minimal() + "    client_cert_identities: [a.example]\n",
                "tenants[0].client_cert_identities[0]: needs tls.enabled and tls.client_ca_file"},
        BadCase{
            "TenantWithoutCredentials", Minimal() + "  - id: orphan\n",
            "tenants[1]: tenant \"orphan\" has no api_key_sha256 and no client_cert_identities"},
        BadCase{"TlsWithoutCert", Minimal("tls: {enabled: true, key_file: k}\n"),
                "tls.cert_file: required when tls.enabled is true"},
        BadCase{"TlsWithoutKey", Minimal("tls: {enabled: true, cert_file: c}\n"),
                "tls.key_file: required when tls.enabled is true"},
        BadCase{
            "ClientCertWithoutCa",
            Minimal("tls: {enabled: true, cert_file: c, key_file: k, require_client_cert: true}\n"),
            "tls.client_ca_file: required when tls.require_client_cert is true"},
        BadCase{"TlsFilesWhileDisabled", Minimal("tls: {cert_file: c}\n"),
                "tls.cert_file: set but tls.enabled is false"},
        BadCase{"ClientCertWhileDisabled", Minimal("tls: {require_client_cert: true}\n"),
                "tls.require_client_cert: true but tls.enabled is false"},
        BadCase{"HttpListenTlsWhileDisabled", Minimal("tls: {on_http_listen: true}\n"),
                "tls.on_http_listen: true but tls.enabled is false"},
        BadCase{"NoTenantsNoAnonymous", "model_path: /m\n",
                "tenants: no tenants and allow_unauthenticated is false"},
        BadCase{"DefaultTenantUnknown",
                Minimal("allow_unauthenticated: true\ndefault_tenant: nobody\n"),
                "default_tenant: \"nobody\" is not a tenant id"},
        BadCase{"DefaultTenantRequired", Minimal("allow_unauthenticated: true\n"),
                "default_tenant: required when allow_unauthenticated is true"},
        BadCase{"DefaultTenantWithoutAnonymous", Minimal("default_tenant: county-a\n"),
                "default_tenant: set but allow_unauthenticated is false"},
        BadCase{"LogRequestContent", Minimal("log_request_content: true\n"),
                "log_request_content: must be false"},
        BadCase{"BadListen", Minimal("grpc_listen: localhost\n"),
                "grpc_listen: \"localhost\" is not host:port"},
        BadCase{"BadPort", Minimal("http_listen: 0.0.0.0:70000\n"),
                "http_listen: \"0.0.0.0:70000\" has no valid port"},
        BadCase{"BadHost", Minimal("http_listen: \"a b:80\"\n"),
                "http_listen: \"a b:80\" has an invalid host"},
        BadCase{"SamePort", Minimal("grpc_listen: 0.0.0.0:9000\nhttp_listen: 127.0.0.1:9000\n"),
                "http_listen: port 9000 is also grpc_listen's"},
        BadCase{"ThreadsTooMany", Minimal("threads: 100000\n"), "threads: must be <= 4096"},
        BadCase{"OpenAiSamePortAsHttp",
                Minimal("http_listen: 0.0.0.0:9000\nopenai_listen: 127.0.0.1:9000\n"),
                "openai_listen: port 9000 is also http_listen's"},
        BadCase{"OpenAiBadListen", Minimal("openai_listen: nowhere\n"),
                "openai_listen: \"nowhere\" is not host:port"},
        BadCase{"HttpUnknownKey", Minimal("http: {max_headers: 1}\n"),
                "http.max_headers: unknown key"},
        BadCase{"HttpHeaderTooSmall", Minimal("http: {max_header_bytes: 10}\n"),
                "http.max_header_bytes: must be >= 1024"},
        BadCase{"HttpZeroTimeout", Minimal("http: {header_timeout_seconds: 0}\n"),
                "http.header_timeout_seconds: must be > 0"},
        BadCase{"HttpPerAddressOverTotal",
                Minimal("http: {max_connections: 10, max_connections_per_address: 20}\n"),
                "http.max_connections_per_address: 20 exceeds http.max_connections (10)"}),
    [](const ::testing::TestParamInfo<BadCase>& info) { return std::string(info.param.name); });

TEST(ServerConfig, CollectsEveryError) {
  const std::string message =
      ErrorOf(Minimal("backend: tpu\nthreads: -1\nscheduler: {max_runing: 3}\n"));
  EXPECT_THAT(message, HasSubstr("backend: \"tpu\""));
  EXPECT_THAT(message, HasSubstr("threads: must be >= 0"));
  EXPECT_THAT(message, HasSubstr("scheduler.max_runing: unknown key"));
}

TEST(ServerConfig, NeverEchoesKeyMaterial) {
  // A plaintext key pasted where its hash belongs must not be repeated into logs.
  const std::string secret = "sk-county-very-secret-plaintext";
  const std::string message =
      ErrorOf("model_path: /m\ntenants:\n  - id: a\n    api_key_sha256: [" + secret + "]\n");
  EXPECT_THAT(message, HasSubstr("api_key_sha256[0]: must be 64 hex characters"));
  EXPECT_THAT(message, Not(HasSubstr(secret)));
  // Nor does a YAML syntax error quote the offending line.
  const std::string syntax = ErrorOf("model_path: /m\napi_key: [" + secret + ", {\n");
  EXPECT_THAT(syntax, HasSubstr("not valid YAML"));
  EXPECT_THAT(syntax, Not(HasSubstr(secret)));
}

TEST(ServerConfig, RandomMutationsNeverCrash) {
  std::ifstream in(std::string(DSINFER_SOURCE_DIR) + "/configs/production.yaml");
  const std::string base((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_FALSE(base.empty());
  static constexpr char kAlphabet[] = ":-[]{}\"'#&*!|>%@`\n\t 0123456789abcxyz\0\xff.";
  const std::string alphabet(kAlphabet, sizeof(kAlphabet) - 1);
  uint64_t state = 0x9E3779B97F4A7C15ull;
  auto next = [&state] {
    state ^= state << 13, state ^= state >> 7, state ^= state << 17;
    return state;
  };
  for (int i = 0; i < 3000; ++i) {
    std::string text = base;
    for (int k = 0, n = 1 + next() % 4; k < n; ++k) {
      const size_t pos = next() % text.size();
      switch (next() % 3) {
        case 0:
          text[pos] = alphabet[next() % alphabet.size()];
          break;
        case 1:
          text.erase(pos, 1 + next() % 16);
          break;
        default:
          text.insert(text.begin() + static_cast<std::ptrdiff_t>(pos),
                      alphabet[next() % alphabet.size()]);
      }
      if (text.empty()) text.push_back('x');
    }
    absl::StatusOr<ServerConfig> c = ParseServerConfig(text);
    if (!c.ok()) {
      ASSERT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument) << c.status();
    }
  }
}

TEST(ServerConfig, ControlCharactersInValuesAreEscaped) {
  const std::string message = ErrorOf(Minimal("backend: \"cu\\nda\"\n"));
  EXPECT_THAT(message, HasSubstr("backend: \"cu\\nda\" is not one of"));
}

}  // namespace
}  // namespace dsinfer
