// dsinfer embedded in an application: load a model, stream a greedy chat answer through a
// callback, then start a long request and cancel it after its first tokens.
//   embed_example MODEL_DIR [--threads N]
// Prints one line per event (token counts, never the text itself: it may be anything the
// model says) and exits non-zero when something is not as expected.
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>

#include "dsinfer/dsinfer.h"

namespace {

// What one request's callbacks saw; the callbacks run on the model's engine thread.
struct Stream {
  std::mutex mu;
  std::condition_variable cv;
  int deltas = 0;
  int tokens = 0;
  size_t text_bytes = 0;
  bool done = false;
  dsinfer::api::Result result;

  dsinfer::api::Callbacks Callbacks() {
    return {[this](const dsinfer::api::Delta& d) {
              std::lock_guard<std::mutex> lock(mu);
              ++deltas;
              tokens += static_cast<int>(d.token_ids.size());
              text_bytes += d.text.size();
              cv.notify_all();
            },
            [this](const dsinfer::api::Result& r) {
              std::lock_guard<std::mutex> lock(mu);
              result = r;
              done = true;
              cv.notify_all();
            }};
  }
  void WaitDone() {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [this] { return done; });
  }
  void WaitTokens(int n) {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return tokens >= n || done; });
  }
};

int Fail(const char* what, const absl::Status& st) {
  std::fprintf(stderr, "%s: %s\n", what, std::string(st.message()).c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s MODEL_DIR [--threads N]\n", argv[0]);
    return 2;
  }
  dsinfer::api::LoadOptions options;
  options.model_path = argv[1];
  options.dtype = "f32";
  if (argc == 4 && std::strcmp(argv[2], "--threads") == 0) options.threads = std::atoi(argv[3]);
  options.kv_cache.num_blocks = 64;  // 4096 tokens: plenty for this example
  absl::StatusOr<std::unique_ptr<dsinfer::api::Model>> model = dsinfer::api::Model::Load(options);
  if (!model.ok()) return Fail("load", model.status());
  const dsinfer::api::ModelInfo& info = (*model)->info();
  std::printf("loaded %s on %s (%s): vocabulary %lld, KV pool %lld tokens\n",
              info.model_type.c_str(), info.backend.c_str(), info.dtype.c_str(),
              static_cast<long long>(info.vocab_size),
              static_cast<long long>(info.kv_cache_tokens));

  // 1. A greedy chat answer, streamed.
  dsinfer::api::Request chat;
  chat.messages = {{"system", "You are the 12345 citizen hotline assistant."},
                   {"user", "请问如何办理居住证？"}};
  chat.max_tokens = 16;
  chat.ignore_eos = true;  // the bundled model is random: let it say all 16 tokens
  Stream first;
  absl::StatusOr<dsinfer::api::RequestHandle> h1 = (*model)->Submit(chat, first.Callbacks());
  if (!h1.ok()) return Fail("submit", h1.status());
  first.WaitDone();
  if (!first.result.status.ok()) return Fail("generate", first.result.status);
  std::printf("streamed %d tokens in %d deltas (%zu bytes of text), finish %s\n", first.tokens,
              first.deltas, first.text_bytes, dsinfer::api::FinishReasonName(first.result.finish));

  // 2. A long request, cancelled once its first tokens are out.
  dsinfer::api::Request long_request;
  long_request.prompt = "请介绍一下居住证的办理流程。";
  long_request.max_tokens = 2000;
  long_request.ignore_eos = true;
  Stream second;
  absl::StatusOr<dsinfer::api::RequestHandle> h2 =
      (*model)->Submit(long_request, second.Callbacks());
  if (!h2.ok()) return Fail("submit", h2.status());
  second.WaitTokens(2);
  h2->Cancel();
  second.WaitDone();
  if (!second.result.status.ok()) return Fail("cancelled request", second.result.status);
  std::printf("second request: %d of 2000 tokens, finish %s\n", second.tokens,
              dsinfer::api::FinishReasonName(second.result.finish));
  const bool ok =
      first.tokens == 16 && first.result.finish == dsinfer::api::FinishReason::kLength &&
      second.result.finish == dsinfer::api::FinishReason::kCancelled && second.tokens < 2000;
  std::printf("%s\n", ok ? "embed example: ok" : "embed example: UNEXPECTED");
  return ok ? 0 : 1;
}
