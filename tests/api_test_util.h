// Helpers of the embedding API's tests (api_test.cc, api_features_test.cc): the bundled tiny
// model, written once per build tree, and a recorder of one request's callbacks. Only the
// public headers and the tiny model writer.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <memory>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <string>
#include <vector>

#include "dsinfer/dsinfer.h"
#include "src/weights/tiny_model.h"

namespace dsinfer::api::testing {

namespace fs = std::filesystem;

inline const std::string kSrc = DSINFER_SOURCE_DIR;

// The bundled tiny model, written once per build tree (rename makes parallel tests safe).
inline std::string TinyModelDir() {
  const fs::path dir = fs::path(DSINFER_BINARY_DIR) / "test-models" / "tiny-v3";
  if (fs::exists(dir / "config.json")) return dir.string();
  const fs::path tmp = dir.string() + ".tmp" + std::to_string(getpid());
  fs::remove_all(tmp);
  const absl::Status st = WriteTinyModel(tmp.string(), kSrc + "/models/tokenizers/deepseek-v3");
  EXPECT_TRUE(st.ok()) << st;
  std::error_code ec;
  fs::rename(tmp, dir, ec);
  if (ec) fs::remove_all(tmp);  // another test process won the race
  return dir.string();
}

inline LoadOptions TinyOptions() {
  LoadOptions o;
  o.model_path = TinyModelDir();
  o.dtype = "f32";
  o.threads = 2;
  o.kv_cache.num_blocks = 64;  // 4096 tokens
  return o;
}

// The tiny model loaded once per test process (options: TinyOptions()).
inline Model& Tiny() {
  static std::unique_ptr<Model> model = [] {
    absl::StatusOr<std::unique_ptr<Model>> m = Model::Load(TinyOptions());
    EXPECT_TRUE(m.ok()) << m.status();
    return m.ok() ? std::move(*m) : nullptr;
  }();
  if (model == nullptr) std::abort();
  return *model;
}

// One request's callbacks, recorded.
struct Recorder {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<int32_t> tokens;
  std::string text;
  int deltas = 0;
  int done_calls = 0;
  Result result;

  Callbacks Make() {
    return {.on_delta =
                [this](const Delta& d) {
                  std::lock_guard<std::mutex> lock(mu);
                  ++deltas;
                  tokens.insert(tokens.end(), d.token_ids.begin(), d.token_ids.end());
                  text += d.text;
                  cv.notify_all();
                },
            .on_done =
                [this](const Result& r) {
                  std::lock_guard<std::mutex> lock(mu);
                  ++done_calls;
                  result = r;
                  cv.notify_all();
                }};
  }
  bool WaitDone(std::chrono::seconds t = std::chrono::seconds(60)) {
    std::unique_lock<std::mutex> lock(mu);
    return cv.wait_for(lock, t, [this] { return done_calls > 0; });
  }
  bool WaitTokens(size_t n) {
    std::unique_lock<std::mutex> lock(mu);
    return cv.wait_for(lock, std::chrono::seconds(60),
                       [&] { return tokens.size() >= n || done_calls > 0; });
  }
};

inline Request Ids(std::vector<int32_t> ids, int64_t max_tokens) {
  Request r;
  r.token_ids = std::move(ids);
  r.max_tokens = max_tokens;
  r.ignore_eos = true;
  return r;
}

inline bool StartsWith(const absl::Status& st, const std::string& prefix) {
  return st.message().substr(0, prefix.size()) == prefix;
}

}  // namespace dsinfer::api::testing
