// Tokenizer robustness: loading errors name what is wrong, arbitrary bytes never crash and are
// kept byte-exact, huge inputs, the streaming detokenizer, and concurrent use.
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "src/tokenizer/stream_detokenizer.h"
#include "src/tokenizer/tokenizer.h"

namespace dsinfer {
namespace {

using ::testing::HasSubstr;
using Json = nlohmann::json;

const std::string kRoot = DSINFER_SOURCE_DIR;
const std::string kTokenizerJson = kRoot + "/models/tokenizers/deepseek-v3/tokenizer.json";

const Tokenizer& Tok() {
  static const Tokenizer* tok = [] {
    auto t = Tokenizer::FromFile(kTokenizerJson);
    if (!t.ok()) {
      ADD_FAILURE() << t.status();
      std::abort();
    }
    return t->release();
  }();
  return *tok;
}

Json LoadFixture(const std::string& name) {
  std::ifstream f(kRoot + "/tests/fixtures/tokenizer/" + name);
  return Json::parse(f);
}

std::string FromHex(const std::string& hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  }
  return out;
}

// ---- Loading: a tiny byte-level BPE written to a temp directory, then broken on purpose. ----

// The GPT-2 byte alphabet, computed independently of the module.
std::vector<std::string> ByteAlphabet() {
  std::vector<std::string> out(256);
  int next = 256;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
    const int cp = printable ? b : next++;
    std::string s;
    if (cp < 0x80) {
      s.push_back(static_cast<char>(cp));
    } else {
      s.push_back(static_cast<char>(0xC0 | (cp >> 6)));
      s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
    out[b] = s;
  }
  return out;
}

Json TinyTokenizer() {
  Json vocab = Json::object();
  const std::vector<std::string> alphabet = ByteAlphabet();
  for (int b = 0; b < 256; ++b) vocab[alphabet[b]] = b;
  vocab["he"] = 256;
  vocab["ll"] = 257;
  vocab["hell"] = 258;
  vocab["hello"] = 259;
  vocab["Ġw"] = 260;
  return Json{
      {"version", "1.0"},
      {"truncation", nullptr},
      {"padding", nullptr},
      {"added_tokens", Json::array({Json{{"id", 261},
                                         {"content", "<eos>"},
                                         {"single_word", false},
                                         {"lstrip", false},
                                         {"rstrip", false},
                                         {"normalized", false},
                                         {"special", true}}})},
      {"normalizer", nullptr},
      {"pre_tokenizer",
       Json{{"type", "Sequence"},
            {"pretokenizers",
             Json::array({Json{{"type", "Split"},
                               {"pattern", {{"Regex", " ?\\p{L}+|\\s+|[^\\s\\p{L}]+"}}},
                               {"behavior", "Isolated"},
                               {"invert", false}},
                          Json{{"type", "ByteLevel"},
                               {"add_prefix_space", false},
                               {"trim_offsets", true},
                               {"use_regex", false}}})}}},
      {"post_processor", nullptr},
      {"decoder", Json{{"type", "ByteLevel"}}},
      {"model",
       Json{{"type", "BPE"},
            {"dropout", nullptr},
            {"unk_token", nullptr},
            {"byte_fallback", false},
            {"vocab", vocab},
            {"merges", Json::array({"h e", "l l", "he ll", Json::array({"hell", "o"}), "Ġ w"})}}}};
}

class TokenizerLoadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(::testing::TempDir()) /
           ("tok_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string Write(const std::string& name, const std::string& text) {
    const std::string path = (dir_ / name).string();
    std::ofstream(path, std::ios::binary) << text;
    return path;
  }
  absl::StatusOr<std::unique_ptr<Tokenizer>> Load(const Json& j) {
    return Tokenizer::FromFile(Write("tokenizer.json", j.dump()));
  }
  void ExpectError(const Json& j, absl::StatusCode code, const std::string& substr) {
    auto t = Load(j);
    ASSERT_FALSE(t.ok()) << "expected an error containing: " << substr;
    EXPECT_EQ(t.status().code(), code) << t.status();
    EXPECT_THAT(std::string(t.status().message()), HasSubstr(substr));
  }

  std::filesystem::path dir_;
};

TEST_F(TokenizerLoadTest, TinyTokenizerWorks) {
  auto t = Load(TinyTokenizer());
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ((*t)->Encode("hello world<eos>"),
            (std::vector<int32_t>{259, 260, 'o', 'r', 'l', 'd', 261}));
  EXPECT_EQ((*t)->vocab_size(), 262);
  EXPECT_FALSE((*t)->bos_id().has_value());  // no tokenizer_config.json
  auto text = (*t)->Decode(std::vector<int32_t>{259, 260, 261}, /*skip_special=*/true);
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text, "hello w");
}

TEST_F(TokenizerLoadTest, ReadsBosEosFromConfig) {
  Write("tokenizer_config.json",
        R"({"bos_token": {"content": "<eos>"}, "eos_token": "<eos>", "unk_token": null})");
  auto t = Load(TinyTokenizer());
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ((*t)->bos_id(), 261);
  EXPECT_EQ((*t)->eos_id(), 261);
  EXPECT_EQ((*t)->prompt_bos_id(), 261);  // add_bos_token absent: HF's default, true
}

TEST_F(TokenizerLoadTest, AddBosTokenFromConfig) {
  Write("tokenizer_config.json", R"({"bos_token": "<eos>", "add_bos_token": false})");
  auto t = Load(TinyTokenizer());
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ((*t)->bos_id(), 261);
  EXPECT_EQ((*t)->prompt_bos_id(), std::nullopt);
  Write("tokenizer_config.json", R"({"bos_token": "<eos>", "add_bos_token": "yes"})");
  t = Load(TinyTokenizer());
  ASSERT_FALSE(t.ok());
  EXPECT_THAT(std::string(t.status().message()), HasSubstr("add_bos_token: must be true or false"));
}

TEST_F(TokenizerLoadTest, MissingFile) {
  auto t = Tokenizer::FromFile((dir_ / "nope" / "tokenizer.json").string());
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(t.status().message()), HasSubstr("nope/tokenizer.json"));
  EXPECT_FALSE(Tokenizer::FromFile(dir_.string()).ok());  // a directory
  EXPECT_FALSE(Tokenizer::FromFile("").ok());
}

TEST_F(TokenizerLoadTest, MalformedJson) {
  for (const char* text : {"", "{", "{\"model\": [1, 2,]}", "\xff\xfe", "null", "[1,2]", "42"}) {
    auto t = Tokenizer::FromFile(Write("tokenizer.json", text));
    ASSERT_FALSE(t.ok()) << text;
    EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument) << t.status();
  }
  auto t = Tokenizer::FromFile(Write("tokenizer.json", "{\"model\": "));
  EXPECT_THAT(std::string(t.status().message()), HasSubstr("malformed JSON"));
}

TEST_F(TokenizerLoadTest, MalformedConfig) {
  Write("tokenizer_config.json", "{bad json");
  auto t = Load(TinyTokenizer());
  ASSERT_FALSE(t.ok());
  EXPECT_THAT(std::string(t.status().message()), HasSubstr("tokenizer_config.json"));
  Write("tokenizer_config.json", R"({"bos_token": "<nope>"})");
  t = Load(TinyTokenizer());
  ASSERT_FALSE(t.ok());
  EXPECT_THAT(std::string(t.status().message()), HasSubstr("bos_token"));
  Write("tokenizer_config.json", R"({"eos_token": 5})");
  t = Load(TinyTokenizer());
  ASSERT_FALSE(t.ok());
  EXPECT_THAT(std::string(t.status().message()), HasSubstr("eos_token"));
}

TEST_F(TokenizerLoadTest, UnsupportedModelType) {
  Json j = TinyTokenizer();
  j["model"]["type"] = "WordPiece";
  ExpectError(j, absl::StatusCode::kUnimplemented, "model type \"WordPiece\"");
  j["model"].erase("type");
  ExpectError(j, absl::StatusCode::kInvalidArgument, "model.type");
  j = TinyTokenizer();
  j["model"] = "BPE";
  ExpectError(j, absl::StatusCode::kInvalidArgument, "model");
}

TEST_F(TokenizerLoadTest, MergesReferencingUnknownTokens) {
  Json j = TinyTokenizer();
  j["model"]["merges"].push_back("x qq");
  ExpectError(j, absl::StatusCode::kInvalidArgument, "token \"qq\" is not in the vocabulary");
  j = TinyTokenizer();
  j["model"]["merges"].push_back("o o");  // "oo" is not in the vocabulary
  ExpectError(j, absl::StatusCode::kInvalidArgument, "merged token \"oo\"");
  j = TinyTokenizer();
  j["model"]["merges"].push_back("a b c");
  ExpectError(j, absl::StatusCode::kInvalidArgument, "model.merges[5]");
  j = TinyTokenizer();
  j["model"]["merges"].push_back(Json::array({"a"}));
  ExpectError(j, absl::StatusCode::kInvalidArgument, "model.merges[5]");
}

TEST_F(TokenizerLoadTest, MalformedVocab) {
  Json j = TinyTokenizer();
  j["model"]["vocab"]["xyz"] = "7";
  ExpectError(j, absl::StatusCode::kInvalidArgument, "model.vocab.xyz");
  j = TinyTokenizer();
  j["model"]["vocab"]["xyz"] = -3;
  ExpectError(j, absl::StatusCode::kInvalidArgument, "out of range");
  j = TinyTokenizer();
  j["model"]["vocab"]["xyz"] = 5;  // id of another token
  ExpectError(j, absl::StatusCode::kInvalidArgument, "id 5 is used by");
  j = TinyTokenizer();
  j["model"]["vocab"]["xyz"] = 1ll << 40;
  ExpectError(j, absl::StatusCode::kInvalidArgument, "out of range");
  j = TinyTokenizer();
  j["model"]["vocab"] = Json::array();
  ExpectError(j, absl::StatusCode::kInvalidArgument, "model.vocab");
}

TEST_F(TokenizerLoadTest, UnsupportedParts) {
  struct Case {
    std::function<void(Json&)> edit;
    absl::StatusCode code;
    std::string message;
  };
  const std::vector<Case> cases = {
      {[](Json& j) {
         j["normalizer"] = Json{{"type", "NFKC"}};
       },
       absl::StatusCode::kUnimplemented, "normalizer type \"NFKC\""},
      {[](Json& j) { j["pre_tokenizer"] = nullptr; }, absl::StatusCode::kUnimplemented,
       "ByteLevel is required"},
      {[](Json& j) { j["pre_tokenizer"]["pretokenizers"].erase(1); },
       absl::StatusCode::kUnimplemented, "ByteLevel is required"},
      {[](Json& j) { j["pre_tokenizer"]["pretokenizers"][0]["behavior"] = "Removed"; },
       absl::StatusCode::kUnimplemented, "Split behavior \"Removed\""},
      {[](Json& j) { j["pre_tokenizer"]["pretokenizers"][0]["invert"] = true; },
       absl::StatusCode::kUnimplemented, "invert"},
      {[](Json& j) {
         j["pre_tokenizer"]["pretokenizers"][0]["pattern"] = {{"Regex", "(a"}};
       },
       absl::StatusCode::kInvalidArgument, "cannot compile regex"},
      {[](Json& j) {
         j["pre_tokenizer"]["pretokenizers"][0]["pattern"] = {{"Regex", "\\w+"}};
       },
       absl::StatusCode::kUnimplemented, "\\w"},
      {[](Json& j) { j["pre_tokenizer"]["pretokenizers"][0]["pattern"] = 3; },
       absl::StatusCode::kInvalidArgument, "pattern"},
      {[](Json& j) { j["pre_tokenizer"]["pretokenizers"][1]["use_regex"] = true; },
       absl::StatusCode::kUnimplemented, "use_regex"},
      {[](Json& j) { j["pre_tokenizer"]["pretokenizers"][1]["add_prefix_space"] = true; },
       absl::StatusCode::kUnimplemented, "add_prefix_space"},
      {[](Json& j) {
         j["pre_tokenizer"] = Json{{"type", "Whitespace"}};
       },
       absl::StatusCode::kUnimplemented, "pre-tokenizer type \"Whitespace\""},
      {[](Json& j) {
         j["decoder"] = Json{{"type", "WordPiece"}};
       },
       absl::StatusCode::kUnimplemented, "decoder type \"WordPiece\""},
      {[](Json& j) { j["decoder"] = nullptr; }, absl::StatusCode::kUnimplemented, "decoder"},
      {[](Json& j) { j["model"]["dropout"] = 0.1; }, absl::StatusCode::kUnimplemented, "dropout"},
      {[](Json& j) { j["model"]["unk_token"] = "<unk>"; }, absl::StatusCode::kUnimplemented,
       "unk_token"},
      {[](Json& j) { j["model"]["byte_fallback"] = true; }, absl::StatusCode::kUnimplemented,
       "byte_fallback"},
      {[](Json& j) {
         j["truncation"] = Json{{"max_length", 5}};
       },
       absl::StatusCode::kUnimplemented, "truncation"},
      {[](Json& j) { j["added_tokens"][0]["lstrip"] = true; }, absl::StatusCode::kUnimplemented,
       "added_tokens[0].lstrip"},
      {[](Json& j) { j["added_tokens"][0]["content"] = ""; }, absl::StatusCode::kInvalidArgument,
       "added_tokens[0].content"},
      {[](Json& j) { j["added_tokens"][0].erase("id"); }, absl::StatusCode::kInvalidArgument,
       "added_tokens[0].id"},
      {[](Json& j) { j["added_tokens"].push_back(j["added_tokens"][0]); },
       absl::StatusCode::kInvalidArgument, "duplicate added token"},
  };
  for (const Case& c : cases) {
    Json j = TinyTokenizer();
    c.edit(j);
    ExpectError(j, c.code, c.message);
  }
}

// ---- Arbitrary bytes. ----

// Ill-formed UTF-8 is not a crash: the bytes go through the byte-level BPE unchanged, so decoding
// gives the lossy (U+FFFD) form of the input, exactly as Python computes it.
TEST(TokenizerBytes, InvalidUtf8FixtureCases) {
  const Json fx = LoadFixture("decode_cases.json");
  ASSERT_FALSE(fx["invalid_utf8"].empty());
  for (const Json& c : fx["invalid_utf8"]) {
    const std::string bytes = FromHex(c["hex"].get<std::string>());
    for (bool plain : {false, true}) {
      const std::vector<int32_t> ids = plain ? Tok().EncodePlain(bytes) : Tok().Encode(bytes);
      auto text = Tok().Decode(ids);
      ASSERT_TRUE(text.ok());
      EXPECT_EQ(*text, c["lossy"].get<std::string>()) << c["hex"];
    }
  }
  // The valid parts are tokenized as they would be on their own.
  EXPECT_EQ(Tok().Encode("abc\xff"
                         "def"),
            [] {
              std::vector<int32_t> v = Tok().Encode("abc");
              v.push_back(*Tok().TokenId("ÿ"));  // byte 0xFF's alphabet character
              for (int32_t id : Tok().Encode("def")) v.push_back(id);
              return v;
            }());
}

// Every byte survives: decoding token by token through the stream (which holds incomplete
// sequences) and Decode agree, and valid inputs round-trip exactly.
TEST(TokenizerBytes, RandomBytesNeverCrash) {
  std::mt19937 rng(12345);
  const std::string pieces[] = {"<｜User｜>", "<|EOT|>", "中",  "\xe4\xb8", "\xf0\x9f\x98",
                                " ",          "\r\n",    "123", "a",        "\u0301",
                                "\xff",       "\x80",    "ᠠ",   "\t"};
  for (int i = 0; i < 3000; ++i) {
    std::string s;
    const int n = rng() % 64;
    for (int k = 0; k < n; ++k) {
      if (rng() % 3 == 0) {
        s += pieces[rng() % std::size(pieces)];
      } else {
        s.push_back(static_cast<char>(rng() & 0xFF));
      }
    }
    const std::vector<int32_t> ids = Tok().Encode(s);
    const std::vector<int32_t> plain = Tok().EncodePlain(s);
    auto text = Tok().Decode(ids);
    auto text_plain = Tok().Decode(plain);
    ASSERT_TRUE(text.ok() && text_plain.ok());
    EXPECT_EQ(*text, *text_plain);
    StreamDetokenizer stream(Tok());
    std::string streamed;
    for (int32_t id : ids) streamed += stream.Push(id);
    streamed += stream.Finish();
    EXPECT_EQ(streamed, *text);
  }
}

TEST(TokenizerBytes, RandomValidTextRoundTrips) {
  std::mt19937 rng(777);
  std::uniform_int_distribution<uint32_t> cp_dist(1, 0x10FFFF);
  for (int i = 0; i < 2000; ++i) {
    std::string s;
    const int n = rng() % 40;
    for (int k = 0; k < n; ++k) {
      uint32_t cp = rng() % 4 == 0 ? cp_dist(rng) : (rng() % 2 ? rng() % 0x80 : rng() % 0x3000);
      if (cp >= 0xD800 && cp <= 0xDFFF) cp = 0x20;
      if (cp == 0) cp = 0x41;
      if (cp < 0x80) {
        s.push_back(static_cast<char>(cp));
      } else if (cp < 0x800) {
        s.push_back(static_cast<char>(0xC0 | (cp >> 6)));
        s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
      } else if (cp < 0x10000) {
        s.push_back(static_cast<char>(0xE0 | (cp >> 12)));
        s.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
      } else {
        s.push_back(static_cast<char>(0xF0 | (cp >> 18)));
        s.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
        s.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
      }
    }
    auto text = Tok().Decode(Tok().Encode(s));
    ASSERT_TRUE(text.ok());
    ASSERT_EQ(*text, s);
  }
}

TEST(TokenizerBytes, HugeInputs) {
  const std::vector<std::string> inputs = {std::string(1 << 20, ' '),
                                           std::string(1 << 20, 'a'),
                                           std::string(1 << 20, '7'),
                                           std::string(1 << 19, '\n'),
                                           [] {
                                             std::string s;
                                             for (int i = 0; i < 200000; ++i) s += "中";
                                             return s;
                                           }(),
                                           [] {
                                             std::string s;
                                             for (int i = 0; i < 100000; ++i) s += " \r\n\t";
                                             return s;
                                           }(),
                                           std::string(1 << 20, '\xff'),
                                           std::string(1 << 20, '!')};
  for (const std::string& s : inputs) {
    const std::vector<int32_t> ids = Tok().Encode(s);
    EXPECT_FALSE(ids.empty());
    auto text = Tok().Decode(ids);
    ASSERT_TRUE(text.ok());
    if (s[0] != '\xff') {
      EXPECT_EQ(*text, s);
    }
  }
}

// ---- Streaming detokenizer. ----

TEST(StreamDetokenizer, HoldsBackCharactersSplitAcrossTokens) {
  // Tibetan stacks and ZWJ emoji are several tokens per character.
  for (const std::string& text :
       {std::string("བཀྲ་ཤིས་བདེ་ལེགས། སྤྱི་ཚོགས་ཞབས་ཞུའི་ལྟེ་གནས"),
        std::string("👨‍👩‍👧‍👦 🏳️‍🌈 🧑🏻‍💻 ᠮᠣᠩᠭᠣᠯ "
                    "𝐀𝟘")}) {
    const std::vector<int32_t> ids = Tok().Encode(text);
    StreamDetokenizer stream(Tok());
    std::string out;
    int held = 0;
    for (int32_t id : ids) {
      const std::string piece = stream.Push(id);
      if (piece.empty()) ++held;
      EXPECT_EQ(piece.find("\xEF\xBF\xBD"), std::string::npos) << "no U+FFFD mid-stream";
      out += piece;
      // Everything handed out so far is a prefix of the text.
      ASSERT_EQ(text.compare(0, out.size(), out), 0);
    }
    out += stream.Finish();
    EXPECT_EQ(out, text);
    EXPECT_GT(held, 0) << "expected some token to end inside a character";
  }
}

TEST(StreamDetokenizer, MatchesDecodeOnFixtures) {
  const Json fx = LoadFixture("encode_cases.json");
  for (bool skip : {false, true}) {
    for (const Json& c : fx["cases"]) {
      const std::vector<int32_t> ids = c["ids"].get<std::vector<int32_t>>();
      StreamDetokenizer stream(Tok(), skip);
      std::string out;
      for (int32_t id : ids) out += stream.Push(id);
      out += stream.Finish();
      auto want = Tok().Decode(ids, skip);
      ASSERT_TRUE(want.ok());
      EXPECT_EQ(out, *want);
    }
  }
}

TEST(StreamDetokenizer, TruncatedTailAndUnknownIds) {
  const int32_t e4 = *Tok().TokenId("ä");  // byte 0xE4: lead byte of a 3-byte character
  const int32_t b8 = *Tok().TokenId("¸");  // byte 0xB8
  StreamDetokenizer stream(Tok());
  EXPECT_EQ(stream.Push(e4), "");
  EXPECT_EQ(stream.Push(b8), "");
  EXPECT_EQ(stream.Push(-5), "");  // unknown ids are skipped
  EXPECT_EQ(stream.Push(1 << 29), "");
  EXPECT_EQ(stream.Finish(), "\xEF\xBF\xBD");
  // Reusable after Finish; an invalid byte is replaced right away.
  EXPECT_EQ(stream.Push(b8), "\xEF\xBF\xBD");
  EXPECT_EQ(stream.Push(e4), "");
  EXPECT_EQ(stream.Push(*Tok().TokenId("Ĳ")), "");  // ... wait for the third byte
  EXPECT_EQ(stream.Finish(), "\xEF\xBF\xBD");
}

TEST(StreamDetokenizer, SkipSpecial) {
  StreamDetokenizer stream(Tok(), /*skip_special=*/true);
  EXPECT_EQ(stream.Push(0), "");
  EXPECT_EQ(stream.Push(128803), "<｜User｜>");  // added but not special
  EXPECT_EQ(stream.Push(1), "");
  StreamDetokenizer keep(Tok());
  EXPECT_EQ(keep.Push(1), "<｜end▁of▁sentence｜>");
}

// ---- Concurrency: const methods share the BPE cache. ----

TEST(TokenizerThreads, ConcurrentEncodeMatchesSerial) {
  const Json fx = LoadFixture("encode_cases.json");
  std::vector<std::string> texts;
  std::vector<std::vector<int32_t>> want;
  for (const Json& c : fx["cases"]) {
    texts.push_back(c["text"].get<std::string>());
    want.push_back(c["ids"].get<std::vector<int32_t>>());
  }
  std::vector<std::thread> threads;
  std::vector<int> mismatches(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 5; ++round) {
        for (size_t i = t; i < texts.size() + t; ++i) {
          const size_t k = i % texts.size();
          if (Tok().Encode(texts[k]) != want[k]) ++mismatches[t];
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int m : mismatches) EXPECT_EQ(m, 0);
}

}  // namespace
}  // namespace dsinfer
