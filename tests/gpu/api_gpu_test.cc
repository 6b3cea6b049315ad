// The embedding API (libdsinfer) on the CUDA backend: the shared library's CUDA code (built
// position-independent into it) loads the bundled tiny model on the GPU, streams a greedy answer
// and honours a cancel. Parity of the CUDA backend with the CPU is the runner tests' business.
// Skips without a CUDA device.
#include <cuda_runtime.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <optional>
#include <string>

#include "dsinfer/dsinfer.h"
#include "src/weights/tiny_model.h"

namespace dsinfer::api {
namespace {

namespace fs = std::filesystem;

bool HasCudaDevice() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();
    return false;
  }
  return n > 0;
}

std::string TinyModelDir() {
  const fs::path dir = fs::path(DSINFER_BINARY_DIR) / "test-models" / "tiny-v3";
  if (fs::exists(dir / "config.json")) return dir.string();
  const fs::path tmp = dir.string() + ".tmp" + std::to_string(getpid());
  fs::remove_all(tmp);
  const absl::Status st = WriteTinyModel(
      tmp.string(), std::string(DSINFER_SOURCE_DIR) + "/models/tokenizers/deepseek-v3");
  EXPECT_TRUE(st.ok()) << st;
  std::error_code ec;
  fs::rename(tmp, dir, ec);
  if (ec) fs::remove_all(tmp);
  return dir.string();
}

TEST(ApiGpu, TinyModelOnCudaStreamsAndCancels) {
  if (!HasCudaDevice()) GTEST_SKIP() << "no CUDA device: skipped";
  LoadOptions o;
  o.model_path = TinyModelDir();
  o.backend = "cuda";
  o.dtype = "bf16";
  o.kv_cache.num_blocks = 64;
  o.scheduler.max_running = 8;
  absl::StatusOr<std::unique_ptr<Model>> model = Model::Load(o);
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ((*model)->info().backend, "cuda");

  Request r;
  r.messages = {{"user", "请问如何办理居住证？"}};
  r.max_tokens = 16;
  r.ignore_eos = true;
  absl::StatusOr<Generation> g = (*model)->Generate(r);
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(g->token_ids.size(), 16u);
  EXPECT_EQ(g->finish, FinishReason::kLength);
  absl::StatusOr<Generation> again = (*model)->Generate(r);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->token_ids, g->token_ids) << "greedy on the GPU is deterministic";

  std::mutex mu;
  std::condition_variable cv;
  size_t tokens = 0;
  std::optional<Result> done;
  Request long_request = r;
  long_request.max_tokens = 3000;
  absl::StatusOr<RequestHandle> h =
      (*model)->Submit(long_request, {.on_delta =
                                          [&](const Delta& d) {
                                            std::lock_guard<std::mutex> lock(mu);
                                            tokens += d.token_ids.size();
                                            cv.notify_all();
                                          },
                                      .on_done =
                                          [&](const Result& res) {
                                            std::lock_guard<std::mutex> lock(mu);
                                            done = res;
                                            cv.notify_all();
                                          }});
  ASSERT_TRUE(h.ok()) << h.status();
  {
    std::unique_lock<std::mutex> lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(60), [&] { return tokens >= 2 || done; }));
  }
  h->Cancel();
  std::unique_lock<std::mutex> lock(mu);
  ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(60), [&] { return done.has_value(); }));
  EXPECT_TRUE(done->status.ok()) << done->status;
  EXPECT_EQ(done->finish, FinishReason::kCancelled);
  EXPECT_LT(tokens, 3000u);
}

}  // namespace
}  // namespace dsinfer::api
