// The OpenAI API's request parsing (every rejection names its parameter) and its behaviour
// before the model is loaded: authentication first, then 503, errors in OpenAI's JSON shape.
// The end-to-end behaviour (streaming, n, stop, 429, 413, disconnects) is in openai_api_test.py.
#include <gtest/gtest.h>

#include <csignal>

#include "nlohmann/json.hpp"
#include "src/server/openai_api.h"
#include "src/server/openai_protocol.h"
#include "tests/server_harness.h"

namespace dsinfer {
namespace {

using nlohmann::json;

std::string ParamOf(std::string_view body, bool chat = true) {
  absl::StatusOr<OpenAiRequest> r = ParseOpenAiRequest(body, chat);
  if (r.ok()) return "OK";
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << r.status();
  return FieldOfStatus(r.status());
}

TEST(OpenAiParse, ChatRequest) {
  absl::StatusOr<OpenAiRequest> r = ParseOpenAiRequest(R"({
    "model": "m", "messages": [
      {"role": "developer", "content": "Be brief."},
      {"role": "user", "content": [{"type": "text", "text": "Hel"}, {"type": "text", "text": "lo"}]}],
    "max_tokens": 5, "max_completion_tokens": 7, "temperature": 0.5, "top_p": 0.9, "seed": 3,
    "stop": "\n", "n": 2, "presence_penalty": 0.5, "frequency_penalty": -0.5, "top_k": 40,
    "min_p": 0.1, "repetition_penalty": 1.1, "priority": "batch", "user": "someone",
    "logprobs": true, "top_logprobs": 3, "stream": true, "stream_options": {"include_usage": true},
    "store": false})",
                                                       /*chat=*/true);
  ASSERT_TRUE(r.ok()) << r.status();
  const ServingRequest& s = r->serving;
  ASSERT_EQ(s.chat.messages.size(), 2u);
  EXPECT_EQ(s.chat.messages[0].role, "system");
  EXPECT_EQ(s.chat.messages[1].content, "Hello");
  EXPECT_EQ(s.max_tokens, 7);  // max_completion_tokens wins
  EXPECT_FLOAT_EQ(s.sampling.temperature, 0.5f);
  EXPECT_FLOAT_EQ(s.sampling.top_p, 0.9f);
  EXPECT_EQ(s.sampling.seed, 3u);
  EXPECT_EQ(s.sampling.top_k, 40);
  EXPECT_FLOAT_EQ(s.sampling.frequency_penalty, -0.5f);
  EXPECT_EQ(s.stop, std::vector<std::string>{"\n"});
  EXPECT_EQ(r->n, 2);
  EXPECT_EQ(r->priority, Priority::kBatch);
  EXPECT_TRUE(r->stream);
  EXPECT_TRUE(r->include_usage);
  EXPECT_EQ(s.logprobs, 3);
}

TEST(OpenAiParse, ToolsToolChoiceAndThinking) {
  absl::StatusOr<OpenAiRequest> r = ParseOpenAiRequest(R"({
    "messages": [
      {"role": "user", "content": "Weather?"},
      {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function",
        "function": {"name": "get_weather", "arguments": "{\"city\": \"Kunming\"}"}}]},
      {"role": "tool", "tool_call_id": "call_1", "content": "22C"}],
    "tools": [{"type": "function", "function": {"name": "get_weather",
      "parameters": {"type": "object", "required": ["city"], "properties": {}}}}],
    "tool_choice": "none", "chat_template_kwargs": {"thinking": true}})",
                                                       /*chat=*/true);
  ASSERT_TRUE(r.ok()) << r.status();
  const ServingChat& c = r->serving.chat;
  ASSERT_EQ(c.messages.size(), 3u);
  ASSERT_EQ(c.messages[1].tool_calls.size(), 1u);
  EXPECT_EQ(c.messages[1].tool_calls[0].name, "get_weather");
  EXPECT_EQ(c.messages[1].tool_calls[0].arguments, "{\"city\": \"Kunming\"}");
  EXPECT_EQ(c.messages[2].tool_call_id, "call_1");
  ASSERT_EQ(c.tools.size(), 1u);
  // The client's key order is kept (it is printed into the prompt).
  EXPECT_EQ(c.tools[0].parameters.dump(),
            R"({"type":"object","required":["city"],"properties":{}})");
  EXPECT_EQ(c.tool_choice, ToolChoice::kNone);
  EXPECT_TRUE(c.thinking);
  r = ParseOpenAiRequest(R"({"messages": [{"role": "user", "content": "x"}]})", true);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->serving.chat.tool_choice, ToolChoice::kAuto);
  EXPECT_FALSE(r->serving.chat.thinking);
}

TEST(OpenAiParse, DefaultsFollowOpenAi) {
  absl::StatusOr<OpenAiRequest> r =
      ParseOpenAiRequest(R"({"messages": [{"role": "user", "content": "x"}]})", true);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FLOAT_EQ(r->serving.sampling.temperature, 1.0f);
  EXPECT_FALSE(r->serving.max_tokens.has_value());  // the rest of the context
  EXPECT_EQ(r->n, 1);
  EXPECT_FALSE(r->stream);
  EXPECT_EQ(r->serving.logprobs, -1);
}

TEST(OpenAiParse, CompletionsPrompts) {
  absl::StatusOr<OpenAiRequest> r = ParseOpenAiRequest(R"({"prompt": ["one"], "logprobs": 2})",
                                                       /*chat=*/false);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->serving.input, ServingRequest::Input::kPrompt);
  EXPECT_EQ(r->serving.prompt, "one");
  EXPECT_EQ(r->serving.logprobs, 2);
  r = ParseOpenAiRequest(R"({"prompt": [5, 6, 7], "stop": ["a", "b"]})", false);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->serving.token_ids, (std::vector<int32_t>{5, 6, 7}));
  EXPECT_EQ(r->serving.stop.size(), 2u);
}

TEST(OpenAiParse, RejectionsNameTheParameter) {
  const std::string user = R"("messages": [{"role": "user", "content": "x"}])";
  EXPECT_EQ(ParamOf("{not json"), "body");
  EXPECT_EQ(ParamOf("[1]"), "body");
  EXPECT_EQ(ParamOf("{}"), "messages");
  EXPECT_EQ(ParamOf(R"({"messages": "hi"})"), "messages");
  EXPECT_EQ(ParamOf(R"({"messages": [{"role": 5, "content": "x"}]})"), "messages[0].role");
  EXPECT_EQ(ParamOf(R"({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]})"),
            "messages[0].content[0].type");
  EXPECT_EQ(ParamOf(R"({"messages": [{"role": "assistant", "content": null,
                    "tool_calls": [{"id": "1"}]}]})"),
            "messages[0].tool_calls[0].function");
  EXPECT_EQ(ParamOf(R"({"messages": [{"role": "tool", "content": "x", "tool_call_id": 3}]})"),
            "messages[0].tool_call_id");
  for (const char* p : {"temperature", "top_p", "presence_penalty", "frequency_penalty"}) {
    EXPECT_EQ(ParamOf("{" + user + ", \"" + p + "\": \"hot\"}"), p);
  }
  EXPECT_EQ(ParamOf("{" + user + R"(, "temperature": 2.5})"), "temperature");
  EXPECT_EQ(ParamOf("{" + user + R"(, "presence_penalty": 3})"), "presence_penalty");
  EXPECT_EQ(ParamOf("{" + user + R"(, "n": 0})"), "n");
  EXPECT_EQ(ParamOf("{" + user + R"(, "n": 17})"), "n");
  EXPECT_EQ(ParamOf("{" + user + R"(, "max_tokens": 0})"), "max_tokens");
  EXPECT_EQ(ParamOf("{" + user + R"(, "max_tokens": 1.5})"), "max_tokens");
  EXPECT_EQ(ParamOf("{" + user + R"(, "stop": [1]})"), "stop[0]");
  EXPECT_EQ(ParamOf("{" + user + R"(, "seed": "x"})"), "seed");
  EXPECT_EQ(ParamOf("{" + user + R"(, "priority": "urgent"})"), "priority");
  EXPECT_EQ(ParamOf("{" + user + R"(, "top_logprobs": 2})"), "top_logprobs");
  EXPECT_EQ(ParamOf("{" + user + R"(, "stream_options": {"include_usage": true}})"),
            "stream_options");
  EXPECT_EQ(ParamOf("{" + user + R"(, "logit_bias": {"1": 2}})"), "logit_bias");
  EXPECT_EQ(ParamOf("{" + user + R"(, "tools": [{"type": "function"}]})"), "tools[0].function");
  EXPECT_EQ(ParamOf("{" + user + R"(, "tools": {"type": "function"}})"), "tools");
  EXPECT_EQ(ParamOf("{" + user + R"(, "tool_choice": "required"})"), "tool_choice");
  EXPECT_EQ(ParamOf("{" + user + R"(, "tool_choice": {"type": "function",
                                                       "function": {"name": "f"}}})"),
            "tool_choice");
  EXPECT_EQ(ParamOf("{" + user + R"(, "chat_template_kwargs": {"thinking": "yes"}})"),
            "chat_template_kwargs.thinking");
  EXPECT_EQ(ParamOf(R"({"prompt": "a", "tools": []})", false), "tools");
  EXPECT_EQ(ParamOf("{" + user + R"(, "functions": [{"name": "f"}]})"), "functions");
  EXPECT_EQ(ParamOf("{" + user + R"(, "response_format": {"type": "json_object"}})"),
            "response_format");
  EXPECT_EQ(ParamOf("{" + user + R"(, "user": 5})"), "user");
  EXPECT_EQ(ParamOf(R"({"prompt": ["a", "b"]})", false), "prompt");
  EXPECT_EQ(ParamOf(R"({"prompt": [1, -2]})", false), "prompt[1]");
  EXPECT_EQ(ParamOf(R"({"prompt": "a", "echo": true})", false), "echo");
  EXPECT_EQ(ParamOf(R"({"prompt": "a", "best_of": 3})", false), "best_of");
  EXPECT_EQ(ParamOf(R"({"prompt": "a", "logprobs": 9})", false), "logprobs");
}

TEST(ServingRequest, UnsetMaxTokensFillsTheContextOrThePool) {
  ServingRequest r;
  r.input = ServingRequest::Input::kTokenIds;
  r.token_ids = {1, 2, 3};
  RequestLimits limits;
  limits.vocab_size = 10;
  limits.context_length = 1000;
  absl::StatusOr<ValidatedRequest> e =
      ValidateServingRequest(r, ServingText{}, limits, OpenAiFieldNames(false));
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->engine.max_tokens, 997);
  limits.kv_capacity_tokens = 100;
  e = ValidateServingRequest(r, ServingText{}, limits, OpenAiFieldNames(false));
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->engine.max_tokens, 97);
  r.max_tokens = 998;
  e = ValidateServingRequest(r, ServingText{}, limits, OpenAiFieldNames(false));
  EXPECT_EQ(FieldOfStatus(e.status()), "max_tokens");
  r.max_tokens = 5;
  r.token_ids = {1, 12};
  e = ValidateServingRequest(r, ServingText{}, limits, OpenAiFieldNames(false));
  EXPECT_EQ(FieldOfStatus(e.status()), "prompt[1]");
}

TEST(OpenAiParse, PriorityIsCappedByTheTenant) {
  EXPECT_EQ(EffectivePriority(Priority::kEmergency, Priority::kInteractive),
            Priority::kInteractive);
  EXPECT_EQ(EffectivePriority(Priority::kBatch, Priority::kEmergency), Priority::kBatch);
  EXPECT_EQ(EffectivePriority(std::nullopt, Priority::kBatch), Priority::kBatch);
  EXPECT_EQ(EffectivePriority(std::nullopt, Priority::kEmergency), Priority::kInteractive);
}

TEST(OpenAiErrors, StatusesMapToOpenAiShapes) {
  HttpResponse r = OpenAiErrorResponse(absl::ResourceExhaustedError("queue full"), 2.2);
  EXPECT_EQ(r.status, 429);
  ASSERT_EQ(r.headers.size(), 1u);
  EXPECT_EQ(r.headers[0].first, "Retry-After");
  EXPECT_EQ(r.headers[0].second, "3");
  json body = json::parse(r.body);
  EXPECT_EQ(body["error"]["type"], "rate_limit_error");
  EXPECT_TRUE(body["error"]["param"].is_null());
  r = OpenAiErrorResponse(absl::InvalidArgumentError("stop[2]: must not be empty"));
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(json::parse(r.body)["error"]["param"], "stop[2]");
  EXPECT_EQ(OpenAiErrorResponse(absl::UnauthenticatedError("no")).status, 401);
  EXPECT_EQ(OpenAiErrorResponse(absl::UnavailableError("draining")).status, 503);
}

// Before the model is loaded: authentication first, then 503; the server's own errors (404)
// are OpenAI-shaped JSON too.
TEST(OpenAiServer, LoadingAnswers503AfterAuthentication) {
  const std::string yaml =
      testing::ConfigYaml(testing::kIdsModel, 64) + "openai_listen: 127.0.0.1:0\n";
  absl::StatusOr<ServerConfig> config = ParseServerConfig(yaml);
  ASSERT_TRUE(config.ok()) << config.status();
  absl::StatusOr<ModelConfig> model = LoadModelConfig(testing::kIdsModel);
  ASSERT_TRUE(model.ok()) << model.status();
  absl::StatusOr<std::unique_ptr<InferenceServer>> s =
      InferenceServer::Create(*config, *std::move(model));
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_TRUE((*s)->StartListeners().ok());
  ASSERT_GT((*s)->openai_port(), 0);
  httplib::Client c("127.0.0.1", (*s)->openai_port());
  const std::string body = R"({"model": "m", "messages": [{"role": "user", "content": "x"}]})";
  httplib::Result r = c.Post("/v1/chat/completions", {{"Authorization", "Bearer wrong"}}, body,
                             "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401);
  EXPECT_EQ(json::parse(r->body)["error"]["type"], "authentication_error");
  r = c.Post("/v1/chat/completions",
             {{"Authorization", std::string("Bearer ") + testing::kKeyA}}, body,
             "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(json::parse(r->body)["error"]["code"], "unavailable");
  r = c.Get("/v1/models", {{"Authorization", std::string("Bearer ") + testing::kKeyA}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503);
  r = c.Get("/v1/nothing");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);
  EXPECT_TRUE(json::parse(r->body).contains("error"));
  (*s)->Drain(0);
}

// The OpenAI listener with TLS and required client certificates (tls.client_ca_file): the same
// files and rules as gRPC, and a verified certificate names its tenant exactly as on gRPC
// (Server.MutualTlsIdentifiesTheTenantByCertificate); the ops listener stays plain HTTP.
TEST(OpenAiServer, MutualTlsMapsTheCertificateToItsTenant) {
  if (!testing::TestPki::OpensslInstalled()) {
    GTEST_SKIP() << "the openssl command is not installed; cannot make test certificates";
  }
  // httplib writes a request into a connection the server just refused (no certificate): that is
  // EPIPE here, not the end of the test process.
  std::signal(SIGPIPE, SIG_IGN);
  const testing::TestPki pki = testing::TestPki::Make("openai");
  ASSERT_TRUE(pki.ok) << pki.Read("openssl.log");
  const std::string model_dir = testing::TinyModelDir();
  ASSERT_FALSE(model_dir.empty());
  const std::string yaml = absl::StrCat("model_path: ", model_dir, R"(
dtype: f32
threads: 2
grpc_listen: 127.0.0.1:0
http_listen: 127.0.0.1:0
openai_listen: 127.0.0.1:0
kv_cache: {num_blocks: 64}
tls:
  enabled: true
  cert_file: )", pki.Path("server.pem"), R"(
  key_file: )", pki.Path("server.key"), R"(
  client_ca_file: )", pki.Path("ca.pem"), R"(
  require_client_cert: true
tenants:
  - id: county-a
    api_key_sha256: [)", Sha256Hex(testing::kKeyA), R"(]
  - id: county-c
    client_cert_identities: [county-c-client]
  - id: county-u
    client_cert_identities: ["spiffe://prov.internal/county-u"]
log_level: error
)");
  absl::StatusOr<ServerConfig> config = ParseServerConfig(yaml);
  ASSERT_TRUE(config.ok()) << config.status();
  absl::StatusOr<ModelConfig> model = LoadModelConfig(model_dir);
  ASSERT_TRUE(model.ok()) << model.status();
  auto server = InferenceServer::Create(*config, *std::move(model));
  ASSERT_TRUE(server.ok()) << server.status();
  ASSERT_TRUE((*server)->StartListeners().ok());
  ASSERT_TRUE((*server)->LoadModel(nullptr).ok());
  const int port = (*server)->openai_port();
  ASSERT_GT(port, 0);

  const std::string body = R"({"prompt": "hello", "max_tokens": 2, "temperature": 0})";
  // The status of one completion from `client` (a certificate stem; "" for none) with `key`,
  // or -1 when the connection failed.
  auto complete = [&](const std::string& client, const std::string& key) {
    std::unique_ptr<httplib::SSLClient> c =
        client.empty() ? std::make_unique<httplib::SSLClient>("127.0.0.1", port)
                       : std::make_unique<httplib::SSLClient>("127.0.0.1", port,
                                                              pki.Path(client + ".pem"),
                                                              pki.Path(client + ".key"));
    c->set_ca_cert_path(pki.Path("ca.pem"));
    c->enable_server_certificate_verification(true);
    c->set_read_timeout(30, 0);
    httplib::Headers headers;
    if (!key.empty()) headers.emplace("Authorization", "Bearer " + key);
    httplib::Result r = c->Post("/v1/completions", headers, body, "application/json");
    return r ? r->status : -1;
  };
  const TenantMetrics* county_c = (*server)->metrics().Tenant("county-c");
  const TenantMetrics* county_a = (*server)->metrics().Tenant("county-a");
  ASSERT_NE(county_c, nullptr);
  ASSERT_NE(county_a, nullptr);
  // Completed requests of tenant `t`, once it reaches `want` (the observer may count a moment
  // after the answer went out) or 2 s passed.
  auto completed = [](const TenantMetrics* t, int64_t want) {
    int64_t v = 0;
    for (int i = 0; i < 200; ++i) {
      v = static_cast<int64_t>(t->Requests(Priority::kInteractive, RequestOutcome::kCompleted)
                                   .Value());
      if (v >= want) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return v;
  };

  EXPECT_EQ(complete("county-c-client", ""), 200);
  EXPECT_EQ(completed(county_c, 1), 1);
  EXPECT_EQ(completed(county_a, 0), 0);
  // The certificate's tenant and the key's tenant differ.
  EXPECT_EQ(complete("county-c-client", testing::kKeyA), 403);
  // A verified certificate that names no tenant identifies nobody; a key then does.
  EXPECT_EQ(complete("stranger", ""), 401);
  EXPECT_EQ(complete("stranger", testing::kKeyA), 200);
  EXPECT_EQ(completed(county_a, 1), 1);
  // No certificate, or one from another CA: the handshake fails, whatever the key.
  EXPECT_EQ(complete("", testing::kKeyA), -1);
  EXPECT_EQ(complete("rogue-client", testing::kKeyA), -1);
  EXPECT_EQ(completed(county_c, 1), 1);
  // A URI subject alternative name names its tenant on both protocols, read the same way: one
  // gRPC call and one HTTP call from the same certificate count for the same tenant.
  const TenantMetrics* county_u = (*server)->metrics().Tenant("county-u");
  ASSERT_NE(county_u, nullptr);
  EXPECT_EQ(complete("multi-san-client", ""), 200);
  EXPECT_EQ(completed(county_u, 1), 1);
  {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = pki.Read("ca.pem");
    ssl.pem_cert_chain = pki.Read("multi-san-client.pem");
    ssl.pem_private_key = pki.Read("multi-san-client.key");
    grpc::ChannelArguments args;
    args.SetSslTargetNameOverride("localhost");
    testing::TestServer t;
    t.channel = grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", (*server)->grpc_port()),
                                          grpc::SslCredentials(ssl), args);
    t.stub = v1::Inference::NewStub(t.channel);
    testing::Call c = testing::Generate(t, testing::IdsRequest({1, 2, 3}, 2), "", 30);
    EXPECT_TRUE(c.status.ok()) << c.status.error_message();
  }
  EXPECT_EQ(completed(county_u, 2), 2);
  // The ops listener stays plain HTTP (tls.on_http_listen is off).
  httplib::Client ops("127.0.0.1", (*server)->http_port());
  httplib::Result h = ops.Get("/healthz");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, 200);
  (*server)->Drain(1);
  std::filesystem::remove_all(pki.dir);
}

}  // namespace
}  // namespace dsinfer
