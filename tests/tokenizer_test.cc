// Parity of dsinfer's tokenizer with HF tokenizers / transformers on the committed fixtures
// (tests/fixtures/tokenizer, written by tools/gen_tokenizer_fixtures.py), plus the public API.
#include "src/tokenizer/tokenizer.h"

#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "src/tokenizer/stream_detokenizer.h"

namespace dsinfer {
namespace {

using ::testing::HasSubstr;
using Json = nlohmann::json;

const std::string kRoot = DSINFER_SOURCE_DIR;
const std::string kTokenizerJson = kRoot + "/models/tokenizers/deepseek-v3/tokenizer.json";

Json LoadFixture(const std::string& name) {
  std::ifstream f(kRoot + "/tests/fixtures/tokenizer/" + name);
  EXPECT_TRUE(f.good()) << "missing fixture " << name;
  return Json::parse(f);
}

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

std::string Describe(const Json& c) {
  std::string text = c["text"].get<std::string>();
  if (text.size() > 80) text = text.substr(0, 80) + "...";
  return c.value("section", std::string()) + ": \"" + text + "\"";
}

std::string Hex64(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

uint64_t Fnv1a64(std::string_view s) {
  uint64_t h = 0xCBF29CE484222325ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001B3ull;
  }
  return h;
}

TEST(TokenizerParity, EncodeMatchesHf) {
  const Json fx = LoadFixture("encode_cases.json");
  ASSERT_GT(fx["cases"].size(), 100u);
  int failures = 0;
  for (const Json& c : fx["cases"]) {
    const std::vector<int32_t> want = c["ids"].get<std::vector<int32_t>>();
    const std::vector<int32_t> got = Tok().Encode(c["text"].get<std::string>());
    EXPECT_EQ(got, want) << Describe(c);
    if (got != want && ++failures > 5) break;
  }
}

TEST(TokenizerParity, DecodeOfEncodeMatchesHf) {
  const Json fx = LoadFixture("encode_cases.json");
  for (const Json& c : fx["cases"]) {
    const std::vector<int32_t> ids = c["ids"].get<std::vector<int32_t>>();
    const std::string text = c["text"].get<std::string>();
    const std::string want = c.value("decode", text);
    const std::string want_skip = c.value("decode_skip_special", want);
    auto got = Tok().Decode(ids);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(*got, want) << Describe(c);
    auto got_skip = Tok().Decode(ids, /*skip_special=*/true);
    ASSERT_TRUE(got_skip.ok()) << got_skip.status();
    EXPECT_EQ(*got_skip, want_skip) << Describe(c);
  }
}

TEST(TokenizerParity, DecodeCasesMatchHf) {
  const Json fx = LoadFixture("decode_cases.json");
  for (const Json& c : fx["cases"]) {
    const std::vector<int32_t> ids = c["ids"].get<std::vector<int32_t>>();
    auto got = Tok().Decode(ids);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(*got, c["decode"].get<std::string>()) << c["ids"].dump();
    auto got_skip = Tok().Decode(ids, true);
    ASSERT_TRUE(got_skip.ok()) << got_skip.status();
    EXPECT_EQ(*got_skip, c["decode_skip_special"].get<std::string>()) << c["ids"].dump();
  }
}

// Every id of the vocabulary decoded (in chunks, compared by hash) with and without specials.
TEST(TokenizerParity, WholeVocabularyDecodeMatchesHf) {
  const Json fx = LoadFixture("vocab_decode.json");
  std::vector<int32_t> ids;
  for (const Json& r : fx["ids"]) {
    for (int32_t i = r[0].get<int32_t>(); i <= r[1].get<int32_t>(); ++i) ids.push_back(i);
  }
  const size_t chunk = fx["chunk"].get<size_t>();
  const Json& hashes = fx["chunks"];
  ASSERT_EQ(hashes.size(), (ids.size() + chunk - 1) / chunk);
  for (size_t k = 0; k < hashes.size(); ++k) {
    absl::Span<const int32_t> part =
        absl::MakeConstSpan(ids).subspan(k * chunk, std::min(chunk, ids.size() - k * chunk));
    auto text = Tok().Decode(part);
    auto text_skip = Tok().Decode(part, true);
    ASSERT_TRUE(text.ok() && text_skip.ok());
    EXPECT_EQ(Hex64(Fnv1a64(*text)), hashes[k][0].get<std::string>())
        << "chunk from id " << part[0];
    EXPECT_EQ(Hex64(Fnv1a64(*text_skip)), hashes[k][1].get<std::string>())
        << "chunk from id " << part[0];
  }
}

TEST(Tokenizer, Accessors) {
  const Tokenizer& t = Tok();
  EXPECT_EQ(t.vocab_size(), 128815);
  EXPECT_EQ(t.bos_id(), 0);
  EXPECT_EQ(t.eos_id(), 1);
  EXPECT_EQ(t.prompt_bos_id(), 0);  // add_bos_token: true
  EXPECT_EQ(t.TokenId("<｜begin▁of▁sentence｜>"), 0);
  EXPECT_EQ(t.TokenId("<｜User｜>"), 128803);
  EXPECT_EQ(t.TokenId("<｜Assistant｜>"), 128804);
  EXPECT_EQ(t.TokenId("<|EOT|>"), 128805);
  EXPECT_TRUE(t.TokenId("Ġthe").has_value());
  EXPECT_FALSE(t.TokenId("no such token at all").has_value());
  EXPECT_TRUE(t.IsSpecial(0));
  EXPECT_TRUE(t.IsSpecial(1));
  EXPECT_TRUE(t.IsSpecial(128805));   // special, normalized=true
  EXPECT_FALSE(t.IsSpecial(128803));  // <｜User｜> is an added token but not special
  EXPECT_FALSE(t.IsSpecial(*t.TokenId("Ġthe")));
  EXPECT_FALSE(t.IsSpecial(-1));
  EXPECT_FALSE(t.IsSpecial(t.vocab_size()));
}

TEST(Tokenizer, DecodeRejectsUnknownIds) {
  for (int32_t bad : {-1, 128815, 1 << 30}) {
    auto r = Tok().Decode(std::vector<int32_t>{33310, bad});
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(r.status().message(), HasSubstr("unknown token id"));
  }
}

TEST(Tokenizer, EncodePlainNeverProducesAddedTokens) {
  const Json fx = LoadFixture("encode_cases.json");
  for (const Json& c : fx["cases"]) {
    const std::string text = c["text"].get<std::string>();
    const std::vector<int32_t> plain = Tok().EncodePlain(text);
    for (int32_t id : plain) {
      ASSERT_LT(id, 128000) << Describe(c);
      ASSERT_GT(id, 2) << Describe(c);  // 0..2 are the special tokens
    }
    auto back = Tok().Decode(plain);
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(*back, text) << Describe(c);
    if (c["section"] != "added_tokens" && c["section"] != "random") {
      EXPECT_EQ(plain, c["ids"].get<std::vector<int32_t>>()) << Describe(c);
    }
  }
}

TEST(Tokenizer, EncodeRecognisesAddedTokens) {
  const Tokenizer& t = Tok();
  EXPECT_EQ(t.Encode("<｜User｜>"), std::vector<int32_t>{128803});
  EXPECT_EQ(t.Encode("<｜end▁of▁sentence｜>"), std::vector<int32_t>{1});
  EXPECT_EQ(t.Encode("<|EOT|>"), std::vector<int32_t>{128805});
  EXPECT_NE(t.EncodePlain("<｜User｜>"), std::vector<int32_t>{128803});
  EXPECT_TRUE(t.Encode("").empty());
  EXPECT_TRUE(t.EncodePlain("").empty());
}

}  // namespace
}  // namespace dsinfer
