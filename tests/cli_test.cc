// The dsinfer command end to end: JSON on stdout, clear errors on stderr with non-zero exit.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "src/weights/safetensors.h"

namespace dsinfer {
namespace {

namespace fs = std::filesystem;
const std::string kSrc = DSINFER_SOURCE_DIR;
const std::string kFixtures = kSrc + "/tests/fixtures/models/";
const std::string kTokenizer = kSrc + "/models/tokenizers/deepseek-v3/tokenizer.json";

struct Result {
  int code;
  std::string out, err;
};

Result RunCli(const std::string& args) {
  const fs::path err_file = fs::temp_directory_path() / absl::StrCat("dsinfer_cli_err_", getpid());
  const std::string cmd = absl::StrCat(DSINFER_CLI, " ", args, " 2>", err_file.string());
  Result r;
  FILE* p = popen(cmd.c_str(), "r");
  char buf[65536];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) r.out.append(buf, n);
  int status = pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::ifstream e(err_file);
  r.err.assign(std::istreambuf_iterator<char>(e), {});
  fs::remove(err_file);
  return r;
}

fs::path TempDir(const std::string& name) {
  fs::path d = fs::temp_directory_path() / absl::StrCat("dsinfer_cli_", name, "_", getpid());
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

// max |got - golden| / max |golden| of a fixture's golden logits.<prompt> (1 when missing).
double GoldenRelErr(const std::string& fixture, int prompt,
                    const std::vector<std::vector<float>>& logits) {
  auto file = SafetensorsFile::Open(kFixtures + fixture + "/golden.safetensors");
  const TensorInfo* t = file.ok() ? (*file)->Find("logits." + std::to_string(prompt)) : nullptr;
  if (t == nullptr || logits.empty()) return 1;
  std::vector<float> want(t->nbytes / 4);
  std::memcpy(want.data(), t->data, t->nbytes);
  const size_t V = logits[0].size();
  if (want.size() != logits.size() * V) return 1;
  double num = 0, den = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    num = std::max(num, std::fabs(static_cast<double>(logits[i / V][i % V]) - want[i]));
    den = std::max(den, std::fabs(static_cast<double>(want[i])));
  }
  return num / den;
}

TEST(Cli, LogitsMatchGolden) {
  std::ifstream g(kFixtures + "v3_fp8/golden.json");
  auto golden = nlohmann::json::parse(g);
  auto prompt = golden["prompts"][1].get<std::vector<int32_t>>();
  std::string ids;
  for (int32_t t : prompt) absl::StrAppend(&ids, ids.empty() ? "" : ",", t);
  Result r = RunCli("logits --model " + kFixtures + "v3_fp8 --ids " + ids + " --threads 2");
  ASSERT_EQ(r.code, 0) << r.err;
  auto logits = nlohmann::json::parse(r.out)["logits"].get<std::vector<std::vector<float>>>();
  ASSERT_EQ(logits.size(), prompt.size());
  EXPECT_LE(GoldenRelErr("v3_fp8", 1, logits), 1e-3);
}

TEST(Cli, GreedyGenerateMatchesGolden) {
  std::ifstream g(kFixtures + "v2_lite_bf16/golden.json");
  auto golden = nlohmann::json::parse(g);
  auto prompt = golden["prompts"][2].get<std::vector<int32_t>>();
  auto greedy = golden["greedy"][2].get<std::vector<int32_t>>();
  std::string ids;
  for (int32_t t : prompt) absl::StrAppend(&ids, ids.empty() ? "" : ",", t);
  Result r = RunCli(absl::StrCat("generate --model ", kFixtures, "v2_lite_bf16 --dtype f32 --ids ",
                              ids, " --max-tokens 12 --ignore-eos"));
  ASSERT_EQ(r.code, 0) << r.err;
  auto out = nlohmann::json::parse(r.out);
  greedy.resize(12);
  EXPECT_EQ(out["ids"].get<std::vector<int32_t>>(), greedy);
  EXPECT_FALSE(out.contains("text"));  // no tokenizer in the fixture directory
}

// DeepSeek-V3.2 (sparse attention) through the CLI: logits of the 70-token prompt (longer than
// index_topk, so the indexer selects) and greedy generation against the fixture's golden.
TEST(Cli, SparseAttentionModelMatchesGolden) {
  std::ifstream g(kFixtures + "v32_fp8/golden.json");
  auto golden = nlohmann::json::parse(g);
  auto prompt = golden["prompts"][2].get<std::vector<int32_t>>();
  auto greedy = golden["greedy"][2].get<std::vector<int32_t>>();
  std::string ids;
  for (int32_t t : prompt) absl::StrAppend(&ids, ids.empty() ? "" : ",", t);
  Result r = RunCli("logits --model " + kFixtures + "v32_fp8 --ids " + ids + " --threads 2");
  ASSERT_EQ(r.code, 0) << r.err;
  auto logits = nlohmann::json::parse(r.out)["logits"].get<std::vector<std::vector<float>>>();
  ASSERT_EQ(logits.size(), prompt.size());
  EXPECT_LE(GoldenRelErr("v32_fp8", 2, logits), 1e-3);
  Result gen = RunCli(absl::StrCat("generate --model ", kFixtures, "v32_fp8 --dtype f32 --ids ",
                                   ids, " --max-tokens 12 --ignore-eos --threads 2"));
  ASSERT_EQ(gen.code, 0) << gen.err;
  greedy.resize(12);
  EXPECT_EQ(nlohmann::json::parse(gen.out)["ids"].get<std::vector<int32_t>>(), greedy);
}

TEST(Cli, TokenizeDetokenizeRoundTrip) {
  Result r = RunCli("tokenize --tokenizer " + kTokenizer + " --text '12345热线 hello'");
  ASSERT_EQ(r.code, 0) << r.err;
  auto ids = nlohmann::json::parse(r.out)["ids"].get<std::vector<int32_t>>();
  ASSERT_FALSE(ids.empty());
  std::string list;
  for (int32_t t : ids) absl::StrAppend(&list, list.empty() ? "" : ",", t);
  Result d = RunCli("detokenize --tokenizer " + kTokenizer + " --ids " + list);
  ASSERT_EQ(d.code, 0) << d.err;
  EXPECT_EQ(nlohmann::json::parse(d.out)["text"], "12345热线 hello");
}

TEST(Cli, BundledModelChatGeneration) {
  fs::path dir = TempDir("tiny");
  {
    const std::string cmd = absl::StrCat(DSINFER_MAKE_TINY_MODEL, " --out ", dir.string(),
                                         " > /dev/null 2>&1");
    ASSERT_EQ(std::system(cmd.c_str()), 0);
  }
  Result r = RunCli("generate --model " + dir.string() +
                 " --chat --system 'hotline' --prompt '如何办理居住证？' --max-tokens 8"
                 " --temperature 0.8 --seed 3 --dtype bf16");
  ASSERT_EQ(r.code, 0) << r.err;
  auto out = nlohmann::json::parse(r.out);
  EXPECT_EQ(out["ids"].size(), 8u);
  EXPECT_TRUE(out["text"].is_string());
  // Same seed, same output.
  Result again = RunCli("generate --model " + dir.string() +
                     " --chat --system 'hotline' --prompt '如何办理居住证？' --max-tokens 8"
                     " --temperature 0.8 --seed 3 --dtype bf16");
  EXPECT_EQ(again.out, r.out);
  EXPECT_NE(r.err.find("loading weights"), std::string::npos);  // progress on stderr
  fs::remove_all(dir);
}

// Sampling never picks an id the tokenizer lacks (the tiny model's vocabulary is padded to
// 129,280; the tokenizer has 128,815), so the text of any generation can be decoded.
TEST(Cli, GeneratedIdsAlwaysDetokenize) {
  fs::path dir = TempDir("tinyvocab");
  {
    const std::string cmd =
        absl::StrCat(DSINFER_MAKE_TINY_MODEL, " --out ", dir.string(), " > /dev/null 2>&1");
    ASSERT_EQ(std::system(cmd.c_str()), 0);
  }
  Result r = RunCli("generate --model " + dir.string() +
                    " --ids 1,2,3 --max-tokens 20 --temperature 1.5 --seed 1 --ignore-eos");
  ASSERT_EQ(r.code, 0) << r.err;
  auto out = nlohmann::json::parse(r.out);
  ASSERT_EQ(out["ids"].size(), 20u);
  for (int32_t id : out["ids"].get<std::vector<int32_t>>()) EXPECT_LT(id, 128815);
  fs::remove_all(dir);
}

// A Kimi-K2 directory: config.json model_type kimi_k2, tiktoken.model + tokenizer_config.json (no
// tokenizer.json), generation_config.json naming <|im_end|>. The tiny model's weights with the Kimi
// fixture tokenizer: chat generation renders Kimi's template, samples only ids the tokenizer has
// and decodes them.
// The dense distill families through the command: greedy ids of the llama fixture equal HF's;
// the qwen2 fixture with the distills' tokenizer layout and R1 chat template generates text.
TEST(Cli, DenseDistillGreedyMatchesGolden) {
  std::ifstream g(kFixtures + "llama_gqa_bf16/golden.json");
  auto golden = nlohmann::json::parse(g);
  auto prompt = golden["prompts"][2].get<std::vector<int32_t>>();
  auto greedy = golden["greedy"][2].get<std::vector<int32_t>>();
  std::string ids;
  for (int32_t t : prompt) absl::StrAppend(&ids, ids.empty() ? "" : ",", t);
  Result r = RunCli(absl::StrCat("generate --model ", kFixtures,
                                 "llama_gqa_bf16 --dtype f32 --ids ", ids,
                                 " --max-tokens 12 --ignore-eos"));
  ASSERT_EQ(r.code, 0) << r.err;
  greedy.resize(12);
  EXPECT_EQ(nlohmann::json::parse(r.out)["ids"].get<std::vector<int32_t>>(), greedy);
}

TEST(Cli, DenseDistillChatGenerates) {
  fs::path dir = TempDir("qwen2");
  for (const char* f : {"config.json", "model.safetensors"})
    fs::copy_file(kFixtures + "qwen2_gqa_f32/" + f, dir / f);
  const std::string tok = kSrc + "/tests/fixtures/tokenizer/distill/qwen2/";
  for (const char* f : {"tokenizer.json", "tokenizer_config.json"})
    fs::copy_file(tok + f, dir / f);
  Result r = RunCli("generate --model " + dir.string() +
                    " --chat --prompt '请问如何办理居住证？' --max-tokens 12 --ignore-eos --seed 3"
                    " --temperature 0.8");
  ASSERT_EQ(r.code, 0) << r.err;
  auto out = nlohmann::json::parse(r.out);
  EXPECT_EQ(out["ids"].size(), 12u);
  EXPECT_TRUE(out["text"].is_string()) << r.out;
  r = RunCli("logits --model " + dir.string() + " --ids 5,6,7");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["logits"].size(), 3u);
  fs::remove_all(dir);
}

TEST(Cli, KimiK2DirectoryGeneratesWithItsTiktokenTokenizer) {
  fs::path dir = TempDir("kimi");
  {
    const std::string cmd =
        absl::StrCat(DSINFER_MAKE_TINY_MODEL, " --out ", dir.string(), " > /dev/null 2>&1");
    ASSERT_EQ(std::system(cmd.c_str()), 0);
  }
  const fs::path kimi = kSrc + "/tests/fixtures/tokenizer/kimi";
  fs::remove(dir / "tokenizer.json");
  fs::copy_file(kimi / "tiktoken.model", dir / "tiktoken.model");
  fs::copy_file(kimi / "tokenizer_config.json", dir / "tokenizer_config.json",
                fs::copy_options::overwrite_existing);
  nlohmann::json config = nlohmann::json::parse(std::ifstream(dir / "config.json"));
  config["model_type"] = "kimi_k2";
  std::ofstream(dir / "config.json") << config.dump(2);
  const int64_t tokenizer_vocab = 1743 + 256;  // ranks + reserved special ids
  std::ofstream(dir / "generation_config.json") << R"({"eos_token_id": 1745})";  // <|im_end|>

  Result r = RunCli("generate --model " + dir.string() +
                    " --chat --prompt '你好, Kimi' --max-tokens 12 --temperature 1.0 --seed 5"
                    " --ignore-eos");
  ASSERT_EQ(r.code, 0) << r.err;
  auto out = nlohmann::json::parse(r.out);
  ASSERT_EQ(out["ids"].size(), 12u);
  for (int32_t id : out["ids"].get<std::vector<int32_t>>()) EXPECT_LT(id, tokenizer_vocab);
  EXPECT_TRUE(out["text"].is_string());
  // A plain prompt without the chat template works too (no bos: Kimi's encode adds none).
  r = RunCli("generate --model " + dir.string() + " --prompt 'hello' --max-tokens 4 --seed 1");
  ASSERT_EQ(r.code, 0) << r.err;
  fs::remove_all(dir);
}

#ifdef DSINFER_CLI_HAS_SERVE
// A start-up error (a checkpoint whose header is not JSON) ends `serve` with that error and exit
// status 2, after JSON log lines only: the server and gRPC are torn down before the process
// exits, never an abort.
TEST(Cli, ServeStartupErrorExitsWithTheError) {
  fs::path dir = TempDir("badserve");
  fs::copy(kFixtures + "v2_lite_bf16/config.json", dir / "config.json");
  {
    const std::string header = R"({"a": nope)";
    std::ofstream f(dir / "model.safetensors", std::ios::binary);
    const uint64_t n = header.size();
    f.write(reinterpret_cast<const char*>(&n), 8);
    f << header << std::string(64, '\0');
  }
  std::ofstream(dir / "serve.yaml") << "model_path: " << dir.string() << R"(
dtype: f32
grpc_listen: 127.0.0.1:0
http_listen: 127.0.0.1:0
allow_unauthenticated: true
kv_cache: {num_blocks: 64}
log_level: debug
)";
  for (int i = 0; i < 5; ++i) {
    Result r = RunCli("serve --config " + (dir / "serve.yaml").string());
    EXPECT_EQ(r.code, 2) << r.err;
    std::vector<std::string> lines;
    std::istringstream in(r.err);
    for (std::string line; std::getline(in, line);) {
      if (!line.empty()) lines.push_back(line);
    }
    ASSERT_FALSE(lines.empty());
    EXPECT_NE(lines.back().find("header is not a valid JSON object"), std::string::npos)
        << lines.back();
    for (size_t k = 0; k + 1 < lines.size(); ++k) {
      EXPECT_TRUE(nlohmann::json::accept(lines[k])) << "not a JSON line: " << lines[k];
    }
  }
  fs::remove_all(dir);
}
#endif

TEST(Cli, BadInputGetsAClearError) {
  const std::string m = kFixtures + "v2_lite_bf16";
  Result r = RunCli("logits --model " + m + " --ids 1,2 --bogus 3");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("--bogus"), std::string::npos) << r.err;

  r = RunCli("logits --model " + m + " --ids 1,x");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("\"x\""), std::string::npos) << r.err;

  r = RunCli("logits --model " + m + " --ids 1,99999");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("99999"), std::string::npos) << r.err;

  r = RunCli("generate --model " + m + " --ids 1,2 --top-p 7");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("top_p"), std::string::npos) << r.err;

  r = RunCli("logits --model /nonexistent/dir --ids 1");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("/nonexistent/dir"), std::string::npos) << r.err;

  r = RunCli("generate --model " + m + " --prompt hi");  // no tokenizer in that directory
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("tokenizer.json"), std::string::npos) << r.err;

  // A config with an unsupported value names the field.
  fs::path bad = TempDir("badcfg");
  for (const auto& e : fs::directory_iterator(m)) fs::copy(e.path(), bad / e.path().filename());
  {
    std::ifstream in(bad / "config.json");
    auto cfg = nlohmann::json::parse(in);
    cfg["topk_method"] = "random_pick";
    std::ofstream(bad / "config.json") << cfg.dump();
  }
  r = RunCli("logits --model " + bad.string() + " --ids 1");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("topk_method"), std::string::npos) << r.err;

  // A truncated checkpoint is an error naming the file, never a crash.
  {
    std::ifstream in(m + "/config.json");
    std::ofstream(bad / "config.json") << in.rdbuf();
  }
  fs::resize_file(bad / "model.safetensors", fs::file_size(bad / "model.safetensors") / 2);
  r = RunCli("logits --model " + bad.string() + " --ids 1");
  EXPECT_NE(r.code, 0);
  EXPECT_LT(r.code, 128) << "crashed: " << r.err;
  EXPECT_NE(r.err.find("model.safetensors"), std::string::npos) << r.err;
  fs::remove_all(bad);
}

}  // namespace
}  // namespace dsinfer
