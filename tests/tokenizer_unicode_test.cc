// The Oniguruma -> PCRE2 translation, checked on every Unicode code point against the classes
// HF tokenizers' Oniguruma reports (fixture), plus the UTF-8 helpers.
#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "src/tokenizer/onig_pattern.h"
#include "src/tokenizer/pcre2_regex.h"
#include "src/tokenizer/utf8.h"

namespace dsinfer {
namespace {

using ::testing::HasSubstr;
using Json = nlohmann::json;

const std::string kRoot = DSINFER_SOURCE_DIR;

std::unique_ptr<Pcre2Regex> CompileOnig(const std::string& onig) {
  auto pattern = OnigToPcre2Pattern(onig);
  EXPECT_TRUE(pattern.ok()) << pattern.status();
  auto re = Pcre2Regex::Compile(*pattern, /*any_bytes=*/true);
  EXPECT_TRUE(re.ok()) << re.status();
  return std::move(re).value();
}

TEST(UnicodeClasses, SameMembersAsOniguruma) {
  std::ifstream f(kRoot + "/tests/fixtures/tokenizer/unicode_classes.json");
  const Json fx = Json::parse(f);
  // All scalar values but U+0000, in order, and where each starts.
  std::string all;
  std::vector<char32_t> cps;
  std::vector<size_t> offsets;
  for (char32_t cp = 1; cp < 0x110000; ++cp) {
    if (cp >= 0xD800 && cp <= 0xDFFF) continue;
    cps.push_back(cp);
    offsets.push_back(all.size());
    utf8::AppendCodePoint(cp, &all);
  }
  for (const Json& cls : fx["classes"]) {
    const std::string name = cls["name"].get<std::string>();
    std::vector<bool> want(0x110000, false);
    for (const Json& r : cls["ranges"]) {
      for (uint32_t cp = r[0].get<uint32_t>(); cp <= r[1].get<uint32_t>(); ++cp) want[cp] = true;
    }
    std::unique_ptr<Pcre2Regex> re = CompileOnig(cls["pattern"].get<std::string>());
    ASSERT_NE(re, nullptr);
    std::vector<bool> got(0x110000, false);
    size_t start = 0, b, e;
    while (start < all.size() && re->Find(all, start, &b, &e)) {
      ASSERT_GT(e, b);
      const size_t i = std::lower_bound(offsets.begin(), offsets.end(), b) - offsets.begin();
      ASSERT_EQ(offsets[i], b);
      got[cps[i]] = true;
      start = e;
    }
    int shown = 0, differ = 0;
    for (char32_t cp : cps) {
      if (got[cp] == want[cp]) continue;
      ++differ;
      if (shown++ < 10) {
        ADD_FAILURE() << "class " << name << ": U+" << std::hex << static_cast<uint32_t>(cp)
                      << (want[cp] ? " missing" : " extra");
      }
    }
    EXPECT_EQ(differ, 0) << "class " << name;
  }
}

TEST(OnigPattern, Translations) {
  struct Case {
    const char* onig;
    const char* pcre2;
  };
  for (const Case& c : std::vector<Case>{
           {"[\\s\\r]",
            "[\\t-\\r \\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}"
            "\\x{202F}\\x{205F}\\x{3000}\\r]"},
           {"a{,3}", "a{0,3}"},
           {"\\u00e9.", "\\x{00e9}[^\\n]"},
           {"^x$", "(?m:^)x(?m:$)"},
           {"\\p{Lu}\\P{Han}", "\\p{Lu}\\P{Han}"},
           {"[\\-\\]\\\\]", "[\\-\\]\\\\]"},
           {"(?i:ab)", "(?i:ab)"},
           {"\\v", "\\x{0B}"},
       }) {
    auto got = OnigToPcre2Pattern(c.onig);
    ASSERT_TRUE(got.ok()) << c.onig << ": " << got.status();
    EXPECT_EQ(*got, c.pcre2) << c.onig;
  }
  auto n = OnigToPcre2Pattern("\\p{N}");
  ASSERT_TRUE(n.ok());
  EXPECT_THAT(*n, HasSubstr("[\\p{N}\\x{"));  // Unicode 15/16 digits added
  auto neg = OnigToPcre2Pattern("\\P{L}");
  ASSERT_TRUE(neg.ok());
  EXPECT_THAT(*neg, HasSubstr("[^\\p{L}\\x{"));
}

TEST(OnigPattern, RefusesWhatItCannotKeepExact) {
  for (const char* p : {"\\w", "\\bx", "\\h", "[a[b]]", "[a&&b]", "(?m)x", "(?<n>x)\\k<n>", "\\1",
                        "[\\S]", "[\\P{L}]"}) {
    auto got = OnigToPcre2Pattern(p);
    ASSERT_FALSE(got.ok()) << p;
    EXPECT_EQ(got.status().code(), absl::StatusCode::kUnimplemented) << p;
  }
  for (const char* p : {"[abc", "\\", "\\u12", "\\p{"}) {
    auto got = OnigToPcre2Pattern(p);
    ASSERT_FALSE(got.ok()) << p;
    EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument) << p;
  }
}

TEST(Pcre2Regex, SplitIsolatedKeepsGapsAndHandlesEmptyMatches) {
  auto split = [](const char* onig, const std::string& text) {
    std::vector<std::string> out;
    CompileOnig(onig)->SplitIsolated(text, [&](std::string_view p) { out.emplace_back(p); });
    return out;
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(split("\\p{N}{1,3}", "ab12345cd6"), (V{"ab", "123", "45", "cd", "6"}));
  EXPECT_EQ(split("x*", "abc"), (V{"a", "b", "c"}));  // empty matches cut, never emitted
  EXPECT_EQ(split("\\s+(?!\\S)|\\s+", "a   b"), (V{"a", "  ", " ", "b"}));
  EXPECT_EQ(split("\\p{L}+",
                  "ab\xff\xfe"
                  "cd"),
            (V{"ab", "\xff\xfe", "cd"}));  // ill-formed bytes never match
  EXPECT_TRUE(split("a", "").empty());
}

TEST(Utf8, LossyMatchesMaximalSubpartRule) {
  struct Case {
    std::string in, out;
  };
  const std::string r = "\xEF\xBF\xBD";
  for (const Case& c : std::vector<Case>{
           {"abc", "abc"},
           {"\xe4\xb8\xad", "\xe4\xb8\xad"},
           {"\xe4\xb8", r},
           {"\xe4\xb8x", r + "x"},
           {"\xc0\xaf", r + r},
           {"\xe0\x80\xaf", r + r + r},
           {"\xed\xa0\x80", r + r + r},
           {"\xf4\x90\x80\x80", r + r + r + r},
           {"\xf0\x9f\x98\x80\xf0\x9f", "\xf0\x9f\x98\x80" + r},
           {"\xff\xfe", r + r},
       }) {
    std::string out;
    EXPECT_EQ(utf8::AppendLossy(c.in, &out), c.in.size());
    EXPECT_EQ(out, c.out);
    EXPECT_EQ(utf8::IsValid(c.in), c.in == c.out);
  }
  std::string out;
  EXPECT_EQ(utf8::AppendLossy("ab\xf0\x9f\x98", &out, /*hold_incomplete_tail=*/true), 2u);
  EXPECT_EQ(out, "ab");
  out.clear();
  EXPECT_EQ(utf8::AppendLossy("ab\xff\xf0\x9f", &out, true), 3u);
  EXPECT_EQ(out, "ab" + r);
}

}  // namespace
}  // namespace dsinfer
