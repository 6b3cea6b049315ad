// The DeepSeek-R1 distills' tokenizer.json layouts (tests/fixtures/tokenizer/distill, written by
// tools/gen_distill_tokenizer_fixtures.py with HF `tokenizers`): Qwen2's (NFC normalizer, its
// Split regex) and Llama-3's (its Split regex with \p{N}{1,3}, BPE ignore_merges). Encode and
// decode must equal HF's on multilingual text; the chat template is DeepSeek-R1's (thinking).
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

#include "nlohmann/json.hpp"
#include "src/chat/chat_format.h"
#include "src/tokenizer/tokenizer.h"

namespace dsinfer {
namespace {

const std::string kDir = std::string(DSINFER_SOURCE_DIR) + "/tests/fixtures/tokenizer/distill/";

nlohmann::json Cases(const std::string& name) {
  std::ifstream in(kDir + name + "/cases.json");
  std::stringstream text;
  text << in.rdbuf();
  return nlohmann::json::parse(text.str());
}

class DistillTokenizerTest : public ::testing::TestWithParam<std::string> {};

TEST_P(DistillTokenizerTest, EncodeMatchesHf) {
  auto tok = Tokenizer::FromFile(kDir + GetParam() + "/tokenizer.json");
  ASSERT_TRUE(tok.ok()) << tok.status();
  const nlohmann::json cases = Cases(GetParam());
  ASSERT_GT(cases["encode"].size(), 10u);
  for (const auto& c : cases["encode"]) {
    const std::string text = c["text"];
    EXPECT_EQ((*tok)->Encode(text), c["ids"].get<std::vector<int32_t>>()) << text;
  }
}

TEST_P(DistillTokenizerTest, DecodeMatchesHf) {
  auto tok = Tokenizer::FromFile(kDir + GetParam() + "/tokenizer.json");
  ASSERT_TRUE(tok.ok()) << tok.status();
  for (const auto& c : Cases(GetParam())["decode"]) {
    const auto ids = c["ids"].get<std::vector<int32_t>>();
    auto text = (*tok)->Decode(ids, /*skip_special=*/false);
    ASSERT_TRUE(text.ok()) << text.status();
    EXPECT_EQ(*text, c["text"].get<std::string>());
    auto skipped = (*tok)->Decode(ids, /*skip_special=*/true);
    ASSERT_TRUE(skipped.ok()) << skipped.status();
    EXPECT_EQ(*skipped, c["text_skip_special"].get<std::string>());
  }
}

// The distills ship DeepSeek-R1's chat template: recognised as R1 (the prompt opens <think>, the
// thought comes back as reasoning_content).
TEST_P(DistillTokenizerTest, ChatTemplateIsR1) {
  auto format = chat::LoadChatFormat(kDir + GetParam() + "/tokenizer_config.json");
  ASSERT_TRUE(format.ok()) << format.status();
  EXPECT_EQ(format->kind, chat::ChatFormatKind::kR1);
  EXPECT_EQ(format->note, "");
}

INSTANTIATE_TEST_SUITE_P(Layouts, DistillTokenizerTest, ::testing::Values("qwen2", "llama3"));

// Qwen2's NFC normalizer: a decomposed accent encodes as the composed one.
TEST(DistillTokenizer, QwenNormalizesToNfc) {
  auto tok = Tokenizer::FromFile(kDir + "qwen2/tokenizer.json");
  ASSERT_TRUE(tok.ok()) << tok.status();
  EXPECT_EQ((*tok)->Encode("Cafe\xCC\x81"), (*tok)->Encode("Caf\xC3\xA9"));
}

// Llama-3's ignore_merges: a piece that is a vocabulary token is emitted whole, even where no
// merge sequence builds it.
TEST(DistillTokenizer, LlamaIgnoreMergesEmitsWholeWords) {
  auto tok = Tokenizer::FromFile(kDir + "llama3/tokenizer.json");
  ASSERT_TRUE(tok.ok()) << tok.status();
  const std::vector<int32_t> ids = (*tok)->Encode(" hotline");
  ASSERT_EQ(ids.size(), 1u);
  EXPECT_EQ((*tok)->TokenId("\xC4\xA0hotline"), ids[0]);  // "Ġhotline"
}

}  // namespace
}  // namespace dsinfer
