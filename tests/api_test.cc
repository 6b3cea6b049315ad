// The embedding API (include/dsinfer, libdsinfer) on the bundled tiny model: load errors name
// the option at fault, requests are validated once with the API's field names, tokens and text
// stream through the callbacks, Cancel and timeouts end requests, concurrent submitters get the
// same greedy answers as one caller, and a Model destroyed under live requests answers them.
// Links only the shared library (and the tiny model writer, to create the model).
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "dsinfer/dsinfer.h"
#include "tests/api_test_util.h"

namespace dsinfer::api {
namespace {

using namespace dsinfer::api::testing;  // NOLINT: the helpers are this file's vocabulary
namespace fs = std::filesystem;

absl::Status LoadError(const std::function<void(LoadOptions&)>& change) {
  LoadOptions o = TinyOptions();
  change(o);
  absl::StatusOr<std::unique_ptr<Model>> m = Model::Load(o);
  return m.ok() ? absl::OkStatus() : m.status();
}

TEST(ApiLoad, ErrorsNameTheOption) {
  absl::Status st = LoadError([](LoadOptions& o) { o.model_path = "/nonexistent/model"; });
  EXPECT_EQ(st.code(), absl::StatusCode::kNotFound) << st;
  EXPECT_TRUE(StartsWith(st, "model_path: /nonexistent/model does not exist")) << st;

  st = LoadError([](LoadOptions& o) { o.model_path = ""; });
  EXPECT_TRUE(StartsWith(st, "model_path: must name")) << st;

  st = LoadError([](LoadOptions& o) { o.model_path += "/config.json"; });
  EXPECT_TRUE(StartsWith(st, "model_path: ")) << st;
  EXPECT_NE(st.message().find("is not a directory"), std::string::npos) << st;

  const fs::path empty = fs::path(DSINFER_BINARY_DIR) / "test-models" / "api-empty-dir";
  fs::create_directories(empty);
  st = LoadError([&](LoadOptions& o) { o.model_path = empty.string(); });
  EXPECT_EQ(st.code(), absl::StatusCode::kNotFound) << st;
  EXPECT_TRUE(StartsWith(st, "model_path: cannot open ")) << st;
  EXPECT_NE(st.message().find("config.json"), std::string::npos) << st;

  st = LoadError([](LoadOptions& o) { o.dtype = "f16"; });
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << st;
  EXPECT_EQ(st.message(), "dtype: \"f16\" is not one of bf16, f32");

  st = LoadError([](LoadOptions& o) { o.backend = "tpu"; });
  EXPECT_EQ(st.message(), "backend: \"tpu\" is not one of cpu, cuda");

  st = LoadError([](LoadOptions& o) { o.backend = "cuda"; });  // f32 on cuda
  EXPECT_TRUE(StartsWith(st, "dtype: the cuda backend runs bf16")) << st;

  st = LoadError([](LoadOptions& o) { o.threads = -1; });
  EXPECT_TRUE(StartsWith(st, "threads: -1 is not in")) << st;

  st = LoadError([](LoadOptions& o) { o.parallel.tp = 4, o.parallel.ep = 3; });
  EXPECT_TRUE(StartsWith(st, "parallel.ep: 3 does not divide parallel.tp (4)")) << st;

  st = LoadError([](LoadOptions& o) { o.parallel.tp = 2; });
  EXPECT_TRUE(StartsWith(st, "parallel.worker_executable: required")) << st;

  st = LoadError([](LoadOptions& o) {
    o.parallel.tp = 2;
    o.parallel.worker_executable = "/nonexistent/dsinfer";
  });
  EXPECT_TRUE(StartsWith(st, "parallel.worker_executable: /nonexistent/dsinfer")) << st;

  st = LoadError([](LoadOptions& o) { o.kv_cache.memory_bytes = 1 << 20; });
  EXPECT_TRUE(StartsWith(st, "kv_cache.memory_bytes: set together")) << st;

  st = LoadError([](LoadOptions& o) { o.kv_cache.memory_fraction = 1.5; });
  EXPECT_TRUE(StartsWith(st, "kv_cache.memory_fraction: 1.5")) << st;

  st = LoadError([](LoadOptions& o) { o.scheduler.max_running = 4096; });
  EXPECT_TRUE(StartsWith(st, "scheduler.max_running: 4096 exceeds")) << st;

  st = LoadError([](LoadOptions& o) { o.scheduler.max_queue_seconds = 0; });
  EXPECT_TRUE(StartsWith(st, "scheduler.max_queue_seconds: ")) << st;
}

TEST(ApiLoad, KvPoolTooLargeForMemoryIsNamed) {
  absl::Status st = LoadError([](LoadOptions& o) { o.kv_cache.num_blocks = 2000000000; });
  EXPECT_EQ(st.code(), absl::StatusCode::kResourceExhausted) << st;
  EXPECT_NE(st.message().find("kv_cache.num_blocks"), std::string::npos) << st;
}

TEST(ApiModel, InfoDescribesTheModel) {
  const ModelInfo& info = Tiny().info();
  EXPECT_EQ(info.backend, "cpu");
  EXPECT_NE(info.dtype.find("f32"), std::string::npos) << info.dtype;
  EXPECT_GT(info.vocab_size, 0);
  EXPECT_GT(info.context_length, 0);
  EXPECT_EQ(info.kv_cache_tokens, 64 * 64);
  EXPECT_TRUE(info.has_tokenizer);
}

TEST(ApiModel, StreamsTokensAndTextThenOneResult) {
  Request r;
  r.messages = {{"user", "请问如何办理居住证？"}};
  r.max_tokens = 12;
  r.ignore_eos = true;
  Recorder rec;
  absl::StatusOr<RequestHandle> h = Tiny().Submit(r, rec.Make());
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_NE(h->id(), 0u);
  ASSERT_TRUE(rec.WaitDone());
  std::lock_guard<std::mutex> lock(rec.mu);
  EXPECT_TRUE(rec.result.status.ok()) << rec.result.status;
  EXPECT_EQ(rec.result.finish, FinishReason::kLength);
  EXPECT_EQ(rec.tokens.size(), 12u);
  EXPECT_GE(rec.deltas, 1);
  EXPECT_EQ(rec.done_calls, 1);
  EXPECT_EQ(rec.result.usage.completion_tokens, 12);
  EXPECT_GT(rec.result.usage.prompt_tokens, 0);
  for (int32_t id : rec.tokens) EXPECT_LT(id, Tiny().info().vocab_size);
}

TEST(ApiModel, GenerateIsDeterministicAndMatchesTheStream) {
  Request r = Ids({1, 2, 3, 4, 5}, 10);
  absl::StatusOr<Generation> a = Tiny().Generate(r);
  absl::StatusOr<Generation> b = Tiny().Generate(r);
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(a->token_ids.size(), 10u);
  EXPECT_EQ(a->token_ids, b->token_ids);
  EXPECT_EQ(a->finish, FinishReason::kLength);
  Recorder rec;
  ASSERT_TRUE(Tiny().Submit(r, rec.Make()).ok());
  ASSERT_TRUE(rec.WaitDone());
  std::lock_guard<std::mutex> lock(rec.mu);
  EXPECT_EQ(rec.tokens, a->token_ids);
  EXPECT_EQ(rec.text, a->text);
}

TEST(ApiModel, StopTokenIdEndsTheOutputWithStop) {
  Request r = Ids({7, 8, 9}, 10);
  absl::StatusOr<Generation> all = Tiny().Generate(r);
  ASSERT_TRUE(all.ok()) << all.status();
  r.stop_token_ids = {all->token_ids[3]};
  absl::StatusOr<Generation> stopped = Tiny().Generate(r);
  ASSERT_TRUE(stopped.ok()) << stopped.status();
  EXPECT_EQ(stopped->finish, FinishReason::kStop);
  ASSERT_LE(stopped->token_ids.size(), 4u);
  EXPECT_EQ(stopped->token_ids.back(), all->token_ids[3]);
}

TEST(ApiModel, SubmitValidatesWithTheApisFieldNames) {
  const int64_t vocab = Tiny().info().vocab_size;
  struct Case {
    std::function<void(Request&)> change;
    std::string prefix;
  };
  const std::vector<Case> cases = {
      {[](Request& r) { r.token_ids.clear(); }, "request: one of prompt, token_ids or messages"},
      {[](Request& r) { r.prompt = "hi"; }, "request: set only one of"},
      {[&](Request& r) {
         r.token_ids = {1, static_cast<int32_t>(vocab)};
       },
       "token_ids[1]: "},
      {[](Request& r) { r.max_tokens = 0; }, "max_tokens: must be >= 1"},
      {[](Request& r) { r.max_tokens = 1 << 30; }, "max_tokens: the prompt (3 tokens)"},
      {[](Request& r) { r.sampling.temperature = -1; }, "sampling.temperature"},
      {[](Request& r) { r.sampling.top_p = 0; }, "sampling.top_p"},
      {[](Request& r) { r.stop = {""}; }, "stop[0]: must not be empty"},
      {[](Request& r) { r.stop_token_ids = {-1}; }, "stop_token_ids[0]: "},
      {[](Request& r) { r.timeout_seconds = -1; }, "timeout_seconds: "},
      {[](Request& r) { r.priority = static_cast<Priority>(9); }, "priority: 9 is not one of"},
      {[](Request& r) {
         r.token_ids.clear();
         r.messages = {{"user", "a"}, {"robot", "b"}};
       },
       "messages[1].role: unknown role"},
      {[](Request& r) {
         r.token_ids.clear();
         r.messages = {{"user", "a"}, {"tool", "b"}};  // the API's messages carry no call id
       },
       "messages[1].tool_call_id: required"},
      {[](Request& r) {
         r.token_ids.clear();
         r.prompt = std::string("bad \xff utf-8");
       },
       "prompt: invalid UTF-8"},
  };
  for (const Case& c : cases) {
    Request r = Ids({1, 2, 3}, 4);
    c.change(r);
    Recorder rec;
    absl::StatusOr<RequestHandle> h = Tiny().Submit(r, rec.Make());
    ASSERT_FALSE(h.ok()) << c.prefix;
    EXPECT_EQ(h.status().code(), absl::StatusCode::kInvalidArgument) << h.status();
    EXPECT_TRUE(StartsWith(h.status(), c.prefix)) << h.status() << " (wanted " << c.prefix << ")";
    std::lock_guard<std::mutex> lock(rec.mu);
    EXPECT_EQ(rec.done_calls + rec.deltas, 0) << "no callback after a refused Submit";
  }
}

TEST(ApiModel, AdmissionRefusalIsSubmitsStatusAndNoCallback) {
  // Within the context length, beyond the whole KV pool (4096 tokens): it could never run.
  Request r = Ids({1, 2, 3}, 4096);
  Recorder rec;
  absl::StatusOr<RequestHandle> h = Tiny().Submit(r, rec.Make());
  ASSERT_FALSE(h.ok());
  EXPECT_EQ(h.status().code(), absl::StatusCode::kInvalidArgument) << h.status();
  EXPECT_TRUE(
      StartsWith(h.status(), "max_tokens: the prompt (3 tokens) + max_tokens (4096) = 4099"))
      << h.status();
  EXPECT_NE(h.status().message().find("the KV pool has 64 blocks"), std::string::npos)
      << h.status();
  std::lock_guard<std::mutex> lock(rec.mu);
  EXPECT_EQ(rec.done_calls + rec.deltas, 0);
}

TEST(ApiModel, CancelEndsTheRequestWithCancelled) {
  Recorder rec;
  absl::StatusOr<RequestHandle> h = Tiny().Submit(Ids({11, 12, 13}, 3000), rec.Make());
  ASSERT_TRUE(h.ok()) << h.status();
  ASSERT_TRUE(rec.WaitTokens(2));
  h->Cancel();
  ASSERT_TRUE(rec.WaitDone());
  h->Cancel();  // again, after the end: nothing happens
  RequestHandle copy = *h;
  copy.Cancel();
  RequestHandle().Cancel();  // an empty handle
  std::lock_guard<std::mutex> lock(rec.mu);
  EXPECT_TRUE(rec.result.status.ok()) << rec.result.status;
  EXPECT_EQ(rec.result.finish, FinishReason::kCancelled);
  EXPECT_LT(rec.tokens.size(), 3000u);
  EXPECT_EQ(rec.done_calls, 1);
  EXPECT_EQ(rec.result.usage.completion_tokens, static_cast<int64_t>(rec.tokens.size()));
}

TEST(ApiModel, CancelFromTheCallbackItself) {
  Recorder rec;
  auto handle = std::make_shared<RequestHandle>();
  std::mutex handle_mu;
  Callbacks cb = rec.Make();
  auto on_delta = cb.on_delta;
  cb.on_delta = [&, on_delta](const Delta& d) {
    on_delta(d);
    std::lock_guard<std::mutex> lock(handle_mu);
    handle->Cancel();
  };
  std::unique_lock<std::mutex> hold(handle_mu);  // the first delta waits for the handle
  absl::StatusOr<RequestHandle> h = Tiny().Submit(Ids({21, 22}, 3000), cb);
  ASSERT_TRUE(h.ok()) << h.status();
  *handle = *h;
  hold.unlock();
  ASSERT_TRUE(rec.WaitDone());
  std::lock_guard<std::mutex> rl(rec.mu);
  EXPECT_EQ(rec.result.finish, FinishReason::kCancelled);
  EXPECT_LT(rec.tokens.size(), 100u);
}

TEST(ApiModel, TimeoutEndsWithDeadlineExceeded) {
  Request timeout = Ids({31, 32, 33}, 3000);
  timeout.timeout_seconds = 0.05;
  // An absolute deadline too; with both, the earlier applies.
  Request deadline = Ids({12, 13, 14}, 3000);
  deadline.deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(50);
  deadline.timeout_seconds = 600;
  for (const Request& r : {timeout, deadline}) {
    Recorder rec;
    ASSERT_TRUE(Tiny().Submit(r, rec.Make()).ok());
    ASSERT_TRUE(rec.WaitDone());
    std::lock_guard<std::mutex> lock(rec.mu);
    EXPECT_EQ(rec.result.status.code(), absl::StatusCode::kDeadlineExceeded) << rec.result.status;
    EXPECT_LT(rec.tokens.size(), 3000u);
  }
}

TEST(ApiModel, ConcurrentSubmitsGetTheSameGreedyAnswers) {
  const std::vector<std::vector<int32_t>> prompts = {{5, 6, 7}, {100, 200}, {42}, {9, 9, 9, 9}};
  std::vector<std::vector<int32_t>> alone;
  for (const auto& p : prompts) {
    absl::StatusOr<Generation> g = Tiny().Generate(Ids(p, 8));
    ASSERT_TRUE(g.ok()) << g.status();
    alone.push_back(g->token_ids);
  }
  constexpr int kThreads = 4, kPerThread = 3;
  std::vector<std::vector<std::vector<int32_t>>> got(kThreads);
  std::vector<absl::Status> errors(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        absl::StatusOr<Generation> g = Tiny().Generate(Ids(prompts[(t + i) % prompts.size()], 8));
        if (!g.ok()) {
          errors[t] = g.status();
          return;
        }
        got[t].push_back(g->token_ids);
      }
    });
  }
  for (std::thread& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) {
    ASSERT_TRUE(errors[t].ok()) << errors[t];
    ASSERT_EQ(got[t].size(), static_cast<size_t>(kPerThread));
    for (int i = 0; i < kPerThread; ++i) {
      EXPECT_EQ(got[t][i], alone[(t + i) % prompts.size()]) << "thread " << t << " request " << i;
    }
  }
}

TEST(ApiModel, FullQueueIsResourceExhaustedWithARetryHint) {
  LoadOptions o = TinyOptions();
  o.kv_cache.num_blocks = 16;
  o.scheduler.max_running = 1;
  o.scheduler.max_waiting = 1;
  absl::StatusOr<std::unique_ptr<Model>> m = Model::Load(o);
  ASSERT_TRUE(m.ok()) << m.status();
  // One runs, one waits: of three at once, at least one is turned away at Submit.
  std::vector<std::unique_ptr<Recorder>> recs;
  std::vector<RequestHandle> admitted;
  int refused = 0;
  for (int i = 0; i < 3; ++i) {
    recs.push_back(std::make_unique<Recorder>());
    absl::StatusOr<RequestHandle> h = (*m)->Submit(Ids({1, 2, 3}, 900), recs.back()->Make());
    if (h.ok()) {
      admitted.push_back(*h);
      continue;
    }
    ++refused;
    EXPECT_EQ(h.status().code(), absl::StatusCode::kResourceExhausted) << h.status();
    const std::optional<double> hint = RetryAfterSeconds(h.status());
    ASSERT_TRUE(hint.has_value()) << h.status();
    EXPECT_GT(*hint, 0);
  }
  EXPECT_GE(refused, 1);
  EXPECT_FALSE(RetryAfterSeconds(absl::OkStatus()).has_value());
  EXPECT_FALSE(RetryAfterSeconds(absl::InvalidArgumentError("x")).has_value());
  for (const RequestHandle& h : admitted) h.Cancel();
  for (size_t i = 0; i < recs.size(); ++i) {
    if (i < admitted.size()) EXPECT_TRUE(recs[i]->WaitDone());
  }
}

TEST(ApiLoad, TensorParallelRanksRunTheWorkerExecutable) {
  LoadOptions o = TinyOptions();
  o.parallel.tp = 2;
  o.parallel.worker_executable = DSINFER_CLI;
  absl::StatusOr<std::unique_ptr<Model>> sharded = Model::Load(o);
  ASSERT_TRUE(sharded.ok()) << sharded.status();
  const Request r = Ids({1, 2, 3, 4, 5}, 6);
  absl::StatusOr<Generation> two = (*sharded)->Generate(r);
  absl::StatusOr<Generation> one = Tiny().Generate(r);
  ASSERT_TRUE(two.ok()) << two.status();
  ASSERT_TRUE(one.ok()) << one.status();
  EXPECT_EQ(two->token_ids, one->token_ids);
}

TEST(ApiModel, TokenizeAndDetokenizeRoundTrip) {
  absl::StatusOr<std::vector<int32_t>> ids = Tiny().Tokenize("12345热线");
  ASSERT_TRUE(ids.ok()) << ids.status();
  EXPECT_FALSE(ids->empty());
  absl::StatusOr<std::string> text = Tiny().Detokenize(*ids);
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_EQ(*text, "12345热线");
  absl::StatusOr<std::string> bad = Tiny().Detokenize({1, -5});
  EXPECT_TRUE(StartsWith(bad.status(), "token_ids[1]: -5 is outside")) << bad.status();
}

TEST(ApiModel, DestroyedModelAnswersLiveRequestsAndHandlesOutliveIt) {
  LoadOptions o = TinyOptions();
  o.kv_cache.num_blocks = 16;
  absl::StatusOr<std::unique_ptr<Model>> m = Model::Load(o);
  ASSERT_TRUE(m.ok()) << m.status();
  Recorder rec;
  absl::StatusOr<RequestHandle> h = (*m)->Submit(Ids({1, 2, 3}, 900), rec.Make());
  ASSERT_TRUE(h.ok()) << h.status();
  ASSERT_TRUE(rec.WaitTokens(1));
  m->reset();
  {
    std::lock_guard<std::mutex> lock(rec.mu);
    EXPECT_EQ(rec.done_calls, 1) << "on_done ran before the Model was gone";
    EXPECT_EQ(rec.result.status.code(), absl::StatusCode::kUnavailable) << rec.result.status;
  }
  h->Cancel();  // the model is gone: nothing happens
}

}  // namespace
}  // namespace dsinfer::api
