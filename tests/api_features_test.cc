// The embedding API's request and response features beyond text (include/dsinfer/types.h), on
// the bundled tiny model through the shared library only: logprobs, tenants (unknown, missing,
// limits), arrival times (absolute deadlines: api_test), the dequantize_fp8 load option, chat
// answers read as such (R1 reasoning; prompts never parsed) and the chat-only fields'
// validation. Tool-call parsing with scripted outputs is covered end to end, through the same
// api::Model, by chat_serving_test (the server is built on this API).
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "dsinfer/dsinfer.h"
#include "tests/api_test_util.h"

namespace dsinfer::api {
namespace {

using namespace dsinfer::api::testing;  // NOLINT: the helpers are this file's vocabulary
namespace fs = std::filesystem;
using std::chrono::steady_clock;

// The tiny model with DeepSeek-R1's tokenizer_config.json (its chat template opens <think> in
// the generation prompt): the same files otherwise, linked.
std::string TinyR1Dir() {
  const fs::path dir = fs::path(DSINFER_BINARY_DIR) / "test-models" / "tiny-r1";
  const fs::path v3 = TinyModelDir();
  if (fs::exists(dir / "tokenizer_config.json")) return dir.string();
  const fs::path tmp = dir.string() + ".tmp" + std::to_string(getpid());
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  for (const fs::directory_entry& e : fs::directory_iterator(v3)) {
    if (e.path().filename() == "tokenizer_config.json") continue;
    fs::create_symlink(e.path(), tmp / e.path().filename());
  }
  fs::copy_file(kSrc + "/tests/fixtures/chat/deepseek-r1_tokenizer_config.json",
                tmp / "tokenizer_config.json");
  std::error_code ec;
  fs::rename(tmp, dir, ec);
  if (ec) fs::remove_all(tmp);  // another test process won the race
  return dir.string();
}

TEST(ApiFeatures, LogprobsComeWithEveryTokenAndAgreeWithGreedy) {
  Request r = Ids({5, 6, 7, 8}, 8);
  r.logprobs = 3;
  absl::StatusOr<Generation> g = Tiny().Generate(r);
  ASSERT_TRUE(g.ok()) << g.status();
  ASSERT_EQ(g->logprobs.size(), g->token_ids.size());
  for (size_t i = 0; i < g->logprobs.size(); ++i) {
    const TokenLogprob& t = g->logprobs[i];
    EXPECT_EQ(t.token_id, g->token_ids[i]);
    EXPECT_LE(t.logprob, 0.0f);
    ASSERT_EQ(t.top.size(), 3u);
    // Greedy: the sampled token is the most likely one, the alternatives in falling order.
    EXPECT_EQ(t.top[0].token_id, t.token_id);
    EXPECT_FLOAT_EQ(t.top[0].logprob, t.logprob);
    EXPECT_GE(t.top[0].logprob, t.top[1].logprob);
    EXPECT_GE(t.top[1].logprob, t.top[2].logprob);
  }
  // Without logprobs the same tokens, and none reported.
  r.logprobs = -1;
  absl::StatusOr<Generation> plain = Tiny().Generate(r);
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_EQ(plain->token_ids, g->token_ids);
  EXPECT_TRUE(plain->logprobs.empty());

  r.logprobs = 21;
  absl::StatusOr<RequestHandle> h = Tiny().Submit(r, {});
  ASSERT_FALSE(h.ok());
  EXPECT_TRUE(StartsWith(h.status(), "logprobs: 21 is not in [0, 20]")) << h.status();
}

TEST(ApiFeatures, ArrivalCountsInQueueTimeAndTimeToFirstToken) {
  Model& model = Tiny();
  // Arrivals count from the Model's start at the earliest: let it be older than the arrival.
  std::this_thread::sleep_for(std::chrono::milliseconds(600));
  Request r = Ids({9, 10, 11}, 2);
  r.arrival = steady_clock::now() - std::chrono::milliseconds(500);
  Recorder rec;
  ASSERT_TRUE(model.Submit(r, rec.Make()).ok());
  ASSERT_TRUE(rec.WaitDone());
  std::lock_guard<std::mutex> lock(rec.mu);
  ASSERT_TRUE(rec.result.status.ok()) << rec.result.status;
  EXPECT_GE(rec.result.usage.queue_seconds, 0.5);
  EXPECT_GE(rec.result.usage.time_to_first_token_seconds, 0.5);
  EXPECT_GE(rec.result.usage.total_seconds, 0.5);
}

TEST(ApiFeatures, TenantsAreNamedCheckedAndShareTheModel) {
  LoadOptions o = TinyOptions();
  o.tenants = {{.id = "hotline", .weight = 2, .max_priority = Priority::kInteractive},
               {.id = "dispatch", .weight = 8, .max_priority = Priority::kEmergency,
                .max_queued = 4}};
  absl::StatusOr<std::unique_ptr<Model>> m = Model::Load(o);
  ASSERT_TRUE(m.ok()) << m.status();
  Request r = Ids({1, 2, 3}, 3);
  // Two tenants and no default: a request must say whose it is.
  absl::StatusOr<RequestHandle> h = (*m)->Submit(r, {});
  ASSERT_FALSE(h.ok());
  EXPECT_TRUE(StartsWith(h.status(), "tenant: required")) << h.status();
  r.tenant = "nobody";
  h = (*m)->Submit(r, {});
  ASSERT_FALSE(h.ok());
  EXPECT_EQ(h.status().code(), absl::StatusCode::kPermissionDenied) << h.status();
  // Above its ceiling, a request is served at the ceiling (not refused).
  r.tenant = "hotline";
  r.priority = Priority::kEmergency;
  absl::StatusOr<Generation> g = (*m)->Generate(r);
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(g->token_ids.size(), 3u);
  r.tenant = "dispatch";
  g = (*m)->Generate(r);
  ASSERT_TRUE(g.ok()) << g.status();

  absl::Status st = Model::Load([] {
                      LoadOptions bad = TinyOptions();
                      bad.tenants = {{.id = "a"}, {.id = "a"}};
                      return bad;
                    }())
                        .status();
  EXPECT_TRUE(StartsWith(st, "tenants[1].id: \"a\" repeats tenants[0]")) << st;
  st = Model::Load([] {
         LoadOptions bad = TinyOptions();
         bad.tenants = {{.id = "county a"}};
         return bad;
       }())
           .status();
  EXPECT_TRUE(StartsWith(st, "tenants[0].id: ")) << st;
}

TEST(ApiFeatures, DequantizeFp8HoldsTheWeightsInTheComputeType) {
  const int64_t kept = Tiny().info().weight_bytes;
  ASSERT_GT(kept, 0);
  LoadOptions o = TinyOptions();
  o.dequantize_fp8 = true;
  absl::StatusOr<std::unique_ptr<Model>> m = Model::Load(o);
  ASSERT_TRUE(m.ok()) << m.status();
  // The tiny checkpoint's linear and expert weights are FP8: as f32 they take more memory.
  EXPECT_GT((*m)->info().weight_bytes, kept);
  absl::StatusOr<Generation> g = (*m)->Generate(Ids({1, 2, 3}, 4));
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(g->token_ids.size(), 4u);
}

TEST(ApiFeatures, R1ChatAnswersAreReadAsReasoningPromptsAreNot) {
  LoadOptions o = TinyOptions();
  o.model_path = TinyR1Dir();
  absl::StatusOr<std::unique_ptr<Model>> m = Model::Load(o);
  ASSERT_TRUE(m.ok()) << m.status();
  Request chat;
  chat.messages = {{"user", "1+1?"}};
  chat.max_tokens = 16;
  chat.ignore_eos = true;
  Recorder rec;
  std::string reasoning;
  Callbacks cb = rec.Make();
  auto on_delta = cb.on_delta;
  cb.on_delta = [&, on_delta](const Delta& d) {
    {
      std::lock_guard<std::mutex> lock(rec.mu);
      reasoning += d.reasoning_text;
    }
    on_delta(d);
  };
  ASSERT_TRUE((*m)->Submit(chat, std::move(cb)).ok());
  ASSERT_TRUE(rec.WaitDone());
  absl::StatusOr<Generation> g = (*m)->Generate(chat);
  ASSERT_TRUE(g.ok()) << g.status();
  absl::StatusOr<std::string> decoded = (*m)->Detokenize(g->token_ids);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  {
    std::lock_guard<std::mutex> lock(rec.mu);
    // R1's prompt ends inside <think>: the answer is thought until the model closes it.
    EXPECT_FALSE(g->reasoning_text.empty());
    EXPECT_EQ(reasoning, g->reasoning_text) << "streamed pieces add up to the whole";
    EXPECT_EQ(rec.text, g->text);
    if (decoded->find("</think>") == std::string::npos) EXPECT_EQ(g->text, "");
    EXPECT_TRUE(g->tool_calls.empty());
    EXPECT_EQ(g->finish, FinishReason::kLength);
  }
  // A prompt is text as generated, never parsed.
  Request prompt;
  prompt.prompt = "1+1?";
  prompt.max_tokens = 16;
  prompt.ignore_eos = true;
  absl::StatusOr<Generation> p = (*m)->Generate(prompt);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_TRUE(p->reasoning_text.empty());
  EXPECT_FALSE(p->text.empty());
}

TEST(ApiFeatures, ChatOnlyFieldsAreValidatedByName) {
  Request r = Ids({1, 2, 3}, 4);
  r.tools = {{.name = "get_weather"}};
  absl::StatusOr<RequestHandle> h = Tiny().Submit(r, {});
  ASSERT_FALSE(h.ok());
  EXPECT_TRUE(StartsWith(h.status(), "tools: only for chat messages")) << h.status();

  Request chat;
  chat.messages = {{"user", "weather?"}};
  chat.max_tokens = 4;
  chat.tools = {{.name = "get_weather", .parameters_json = "[1, 2]"}};
  h = Tiny().Submit(chat, {});
  ASSERT_FALSE(h.ok());
  EXPECT_TRUE(StartsWith(h.status(), "tools[0].parameters_json: must be a JSON object"))
      << h.status();

  // A tool result answers a call of the history: rendered, and the request runs.
  chat.tools = {{.name = "get_weather",
                 .description = "The weather of a city",
                 .parameters_json =
                     R"({"type": "object", "properties": {"city": {"type": "string"}}})"}};
  chat.messages = {{.role = "user", .content = "weather in Hangzhou?"},
                   {.role = "assistant",
                    .tool_calls = {{.id = "call_1", .name = "get_weather",
                                    .arguments = R"({"city": "Hangzhou"})"}}},
                   {.role = "tool", .content = "sunny", .tool_call_id = "call_1"}};
  absl::StatusOr<Generation> g = Tiny().Generate(chat);
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_FALSE(g->token_ids.empty());
  chat.tool_choice = ToolChoice::kNone;
  g = Tiny().Generate(chat);
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_TRUE(g->tool_calls.empty());
}

}  // namespace
}  // namespace dsinfer::api
