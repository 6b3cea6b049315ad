// A dense R1-distill model served end to end: the qwen2 fixture with the distills' tokenizer
// layout (NFC, Qwen2 regex) and DeepSeek-R1's chat template, over gRPC on 127.0.0.1. Its KV pool
// is sized from the GQA row (2 x kv_heads x head_dim per layer) and a chat turn streams back as
// reasoning (the R1 format opens <think>).
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "absl/strings/str_cat.h"
#include "dsinfer/v1/dsinfer.grpc.pb.h"
#include "tests/server_harness.h"

namespace dsinfer {
namespace {

using namespace dsinfer::testing;  // NOLINT: the harness is this file's vocabulary
namespace fs = std::filesystem;

std::string DenseModelDir() {
  const fs::path dir = fs::temp_directory_path() / absl::StrCat("dsinfer_dense_", getpid());
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string src = DSINFER_SOURCE_DIR;
  for (const char* f : {"config.json", "model.safetensors"})
    fs::copy_file(src + "/tests/fixtures/models/qwen2_gqa_f32/" + f, dir / f);
  for (const char* f : {"tokenizer.json", "tokenizer_config.json"})
    fs::copy_file(src + "/tests/fixtures/tokenizer/distill/qwen2/" + f, dir / f);
  return dir.string();
}

TEST(DenseServer, ChatTurnStreamsReasoningAndModelInfoNamesTheFamily) {
  const std::string dir = DenseModelDir();
  auto s = TestServer::Start(dir, 64);
  ASSERT_NE(s, nullptr);
  Call c = Generate(*s, ChatRequest("请问如何办理居住证？", 10));
  ASSERT_TRUE(c.status.ok()) << c.status.error_message();
  EXPECT_EQ(c.ids().size(), 10u);
  std::string reasoning;
  for (const auto& m : c.messages) reasoning += m.reasoning_text();
  EXPECT_FALSE(reasoning.empty());  // greedy: deterministic, and no </think> among these 10

  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", absl::StrCat("Bearer ", kKeyA));
  v1::ModelInfoResponse info;
  ASSERT_TRUE(s->stub->ModelInfo(&ctx, {}, &info).ok());
  EXPECT_EQ(info.model_type(), "qwen2");
  EXPECT_EQ(info.architecture(), "Qwen2ForCausalLM");
  EXPECT_EQ(info.vocab_size(), 500u);
  EXPECT_EQ(info.kv_cache_blocks(), 64u);
  EXPECT_TRUE(s->WaitUntilReleased());
  s.reset();
  fs::remove_all(dir);
}

}  // namespace
}  // namespace dsinfer
