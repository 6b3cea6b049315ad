// ChatOutputParser: the split of generated text into reasoning, content and tool calls must not
// depend on how the text is chunked, must never hand out part of a control token, and must
// survive malformed model output.
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "src/chat/output_parser.h"

namespace dsinfer::chat {
namespace {

using ::testing::HasSubstr;

OutputParserOptions Opts(ToolCallSyntax syntax, bool reasoning = false) {
  OutputParserOptions o;
  o.syntax = syntax;
  o.starts_in_reasoning = reasoning;
  return o;
}

bool ValidUtf8(const std::string& s) {
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    const size_t n = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (size_t k = 1; k < n; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    }
    i += n;
  }
  return true;
}

// Everything the deltas said, rebuilt; checked against result() on every run.
struct Collected {
  std::string reasoning, content;
  std::vector<ParsedToolCall> calls;
  std::vector<ChatDelta> deltas;
  std::vector<size_t> content_cuts, reasoning_cuts;
  ChatResult result;
};

const char* const kMarkers[] = {"<think>",
                                "</think>",
                                "<｜tool▁calls▁begin｜>",
                                "<｜tool▁calls▁end｜>",
                                "<｜tool▁call▁begin｜>",
                                "<｜tool▁call▁end｜>",
                                "<｜tool▁sep｜>",
                                "<｜end▁of▁sentence｜>"};

// No delta boundary falls inside a control token's text that ends up in `text` (where
// `cuts` are the lengths of `text` after each delta).
void ExpectNoCutInsideControlTokens(const std::string& text, const std::vector<size_t>& cuts) {
  for (const std::string m : kMarkers) {
    for (size_t at = text.find(m); at != std::string::npos; at = text.find(m, at + 1)) {
      for (size_t cut : cuts) {
        EXPECT_FALSE(cut > at && cut < at + m.size()) << "cut at " << cut << " in " << text;
      }
    }
  }
}

void Absorb(const ChatDelta& d, Collected* c) {
  EXPECT_TRUE(ValidUtf8(d.content)) << d.content;
  EXPECT_TRUE(ValidUtf8(d.reasoning_content));
  if (!d.content.empty()) c->content_cuts.push_back(c->content.size() + d.content.size());
  if (!d.reasoning_content.empty()) {
    c->reasoning_cuts.push_back(c->reasoning.size() + d.reasoning_content.size());
  }
  c->reasoning += d.reasoning_content;
  c->content += d.content;
  for (const ToolCallDelta& t : d.tool_calls) {
    if (t.begins_call) {
      EXPECT_EQ(t.index, static_cast<int>(c->calls.size()));
      c->calls.push_back({t.name, ""});
    }
    ASSERT_FALSE(c->calls.empty());
    EXPECT_EQ(t.index, static_cast<int>(c->calls.size()) - 1);
    c->calls.back().arguments += t.arguments;
  }
  c->deltas.push_back(d);
}

// Feeds `text` in chunks of `chunk` bytes (0: whole).
Collected Parse(OutputParserOptions o, const std::string& text, size_t chunk = 0) {
  ChatOutputParser p(o);
  Collected c;
  if (chunk == 0) chunk = text.size() + 1;
  for (size_t i = 0; i < text.size(); i += chunk) Absorb(p.Push(text.substr(i, chunk)), &c);
  Absorb(p.Finish(), &c);
  ExpectNoCutInsideControlTokens(c.content, c.content_cuts);
  ExpectNoCutInsideControlTokens(c.reasoning, c.reasoning_cuts);
  c.result = p.result();
  EXPECT_EQ(c.reasoning, c.result.reasoning_content);
  if (!c.result.malformed_tool_call) {
    EXPECT_EQ(c.content, c.result.content);
    EXPECT_EQ(c.calls.size(), c.result.tool_calls.size());
    for (size_t i = 0; i < c.calls.size() && i < c.result.tool_calls.size(); ++i) {
      EXPECT_EQ(c.calls[i].name, c.result.tool_calls[i].name);
      EXPECT_EQ(c.calls[i].arguments, c.result.tool_calls[i].arguments);
    }
  }
  return c;
}

void ExpectSameResult(const ChatResult& a, const ChatResult& b, const std::string& what) {
  EXPECT_EQ(a.reasoning_content, b.reasoning_content) << what;
  EXPECT_EQ(a.content, b.content) << what;
  EXPECT_EQ(a.malformed_tool_call, b.malformed_tool_call) << what;
  ASSERT_EQ(a.tool_calls.size(), b.tool_calls.size()) << what;
  for (size_t i = 0; i < a.tool_calls.size(); ++i) {
    EXPECT_EQ(a.tool_calls[i].name, b.tool_calls[i].name) << what;
    EXPECT_EQ(a.tool_calls[i].arguments, b.tool_calls[i].arguments) << what;
  }
}

const char kV31Calls[] =
    "Checking.<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>get_weather<｜tool▁sep｜>"
    "{\"location\": \"San Francisco, CA\"}<｜tool▁call▁end｜><｜tool▁call▁begin｜>get_weather"
    "<｜tool▁sep｜>{\"location\": \"Seattle, WA\"}<｜tool▁call▁end｜><｜tool▁calls▁end｜>"
    "<｜end▁of▁sentence｜>";
const char kV3Calls[] =
    "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n```json\n"
    "{\"location\": \"San Francisco, CA\"}\n```<｜tool▁call▁end｜>\n<｜tool▁call▁begin｜>function"
    "<｜tool▁sep｜>get_time\n```json\n{\"tz\": "
    "\"PST\"}\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>";
const char kThinking[] = "Let me add: 2+2 = 4 — «é» 😀.\n</think>\n\nThe answer is **4**.";

TEST(OutputParser, ChunkingDoesNotChangeTheResult) {
  const std::pair<OutputParserOptions, std::string> cases[] = {
      {Opts(ToolCallSyntax::kV31), kV31Calls},
      {Opts(ToolCallSyntax::kV3), kV3Calls},
      {Opts(ToolCallSyntax::kV3, true), kThinking},
      {Opts(ToolCallSyntax::kV31, true), std::string(kThinking) + kV31Calls},
      {Opts(ToolCallSyntax::kV3), "x < y <｜ not a token <｜tool▁calls▁begin｜>oops"},
      {Opts(ToolCallSyntax::kV31),
       "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>f<｜tool▁sep｜>{\"a\""},
      {Opts(ToolCallSyntax::kV3),
       std::string(kV3Calls).insert(
           std::string(kV3Calls).size() - std::string("<｜tool▁calls▁end｜>").size(),
           "\n  stray \n")},
  };
  for (const auto& [opts, text] : cases) {
    const Collected whole = Parse(opts, text);
    for (size_t chunk : {1, 2, 3, 5, 7, 13}) {
      ExpectSameResult(Parse(opts, text, chunk).result, whole.result,
                       text + " / chunk " + std::to_string(chunk));
    }
  }
}

TEST(OutputParser, ThinkingSplit) {
  const Collected c = Parse(Opts(ToolCallSyntax::kV3, true), kThinking, 1);
  EXPECT_EQ(c.result.reasoning_content, "Let me add: 2+2 = 4 — «é» 😀.\n");
  EXPECT_EQ(c.result.content, "\n\nThe answer is **4**.");
  EXPECT_EQ(c.result.FinishReason("stop"), "stop");
  // Reasoning is streamed before the answer starts.
  bool reasoning_before_content = false;
  for (const ChatDelta& d : c.deltas) {
    if (!d.content.empty()) break;
    if (!d.reasoning_content.empty()) reasoning_before_content = true;
  }
  EXPECT_TRUE(reasoning_before_content);
  // Without </think> everything is reasoning (cut by max_tokens).
  EXPECT_EQ(Parse(Opts(ToolCallSyntax::kV3, true), "still thinking <").result.reasoning_content,
            "still thinking <");
}

TEST(OutputParser, ModelOpensItsOwnThinkBlock) {
  for (size_t chunk : {0, 1, 3}) {
    const Collected c = Parse(Opts(ToolCallSyntax::kV3), "<think>\nhmm\n</think>ok", chunk);
    EXPECT_EQ(c.result.reasoning_content, "\nhmm\n");
    EXPECT_EQ(c.result.content, "ok");
  }
  // R1 prompts already opened it; a repeated <think> at the start is dropped.
  EXPECT_EQ(Parse(Opts(ToolCallSyntax::kV3, true), "<think>a</think>b").result.reasoning_content,
            "a");
  // Only at the very start: later "<think>" and a stray "</think>" in an answer are text.
  EXPECT_EQ(Parse(Opts(ToolCallSyntax::kV31), "a <think> b </think> c").result.content,
            "a <think> b </think> c");
}

TEST(OutputParser, V31ToolCallsStreamNameThenArguments) {
  const Collected c = Parse(Opts(ToolCallSyntax::kV31), kV31Calls, 1);
  EXPECT_EQ(c.result.content, "Checking.");
  ASSERT_EQ(c.result.tool_calls.size(), 2u);
  EXPECT_EQ(c.result.tool_calls[0].name, "get_weather");
  EXPECT_EQ(c.result.tool_calls[0].arguments, "{\"location\": \"San Francisco, CA\"}");
  EXPECT_EQ(c.result.tool_calls[1].arguments, "{\"location\": \"Seattle, WA\"}");
  EXPECT_EQ(c.result.FinishReason("stop"), "tool_calls");
  EXPECT_EQ(c.result.FinishReason("length"), "length");
  // Byte by byte, arguments arrive in many deltas after the one naming the call.
  int arg_deltas = 0;
  for (const ChatDelta& d : c.deltas) {
    for (const ToolCallDelta& t : d.tool_calls)
      arg_deltas += !t.begins_call && !t.arguments.empty();
  }
  EXPECT_GT(arg_deltas, 20);
  // Whole: one delta holds both calls, each named once.
  const Collected whole = Parse(Opts(ToolCallSyntax::kV31), kV31Calls);
  ASSERT_EQ(whole.deltas[0].tool_calls.size(), 2u);
  EXPECT_TRUE(whole.deltas[0].tool_calls[1].begins_call);
  EXPECT_EQ(whole.deltas[0].tool_calls[1].index, 1);
}

TEST(OutputParser, ToolCallParsingOffLeavesMarkupAsContent) {
  // A request without tools (or tool_choice "none"): calls are not parsed, whatever the chunking.
  for (size_t chunk : {0, 1, 3}) {
    OutputParserOptions o = Opts(ToolCallSyntax::kV31);
    o.parse_tool_calls = false;
    const Collected c = Parse(o, kV31Calls, chunk);
    EXPECT_TRUE(c.result.tool_calls.empty());
    EXPECT_FALSE(c.result.malformed_tool_call);
    const std::string text = kV31Calls;
    EXPECT_EQ(c.result.content, text.substr(0, text.find("<｜end▁of▁sentence｜>")));
    EXPECT_EQ(c.result.FinishReason("stop"), "stop");
  }
  // Reasoning is still split.
  OutputParserOptions o = Opts(ToolCallSyntax::kV3, /*reasoning=*/true);
  o.parse_tool_calls = false;
  const Collected c = Parse(o, kThinking, 2);
  EXPECT_EQ(c.result.content, "\n\nThe answer is **4**.");
  EXPECT_FALSE(c.result.reasoning_content.empty());
}

TEST(OutputParser, V3ToolCallsDropTheFence) {
  for (size_t chunk : {0, 1, 4}) {
    const Collected c = Parse(Opts(ToolCallSyntax::kV3), kV3Calls, chunk);
    EXPECT_EQ(c.result.content, "");
    ASSERT_EQ(c.result.tool_calls.size(), 2u);
    EXPECT_EQ(c.result.tool_calls[0].name, "get_weather");
    EXPECT_EQ(c.result.tool_calls[0].arguments, "{\"location\": \"San Francisco, CA\"}");
    EXPECT_EQ(c.result.tool_calls[1].name, "get_time");
    EXPECT_EQ(c.result.tool_calls[1].arguments, "{\"tz\": \"PST\"}");
    EXPECT_FALSE(c.result.malformed_tool_call);
  }
  // A V3-format model writing V3.1's `name<｜tool▁sep｜>args` is still understood.
  const Collected c =
      Parse(Opts(ToolCallSyntax::kV3),
            "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>f<｜tool▁sep｜>{}<｜tool▁call▁end｜>");
  ASSERT_EQ(c.result.tool_calls.size(), 1u);
  EXPECT_EQ(c.result.tool_calls[0].name, "f");
  EXPECT_EQ(c.result.tool_calls[0].arguments, "{}");
}

TEST(OutputParser, ControlTokensSplitAcrossChunks) {
  ChatOutputParser p(Opts(ToolCallSyntax::kV31));
  ChatDelta d = p.Push("Sure<｜tool▁ca");
  EXPECT_EQ(d.content, "Sure");  // the possible marker start is held back
  d = p.Push("lls▁begin｜><｜tool▁call▁begin｜>f<｜tool");
  EXPECT_TRUE(d.content.empty());
  EXPECT_TRUE(d.tool_calls.empty());  // the name is not complete yet
  d = p.Push("▁sep｜>{\"a\": ");
  ASSERT_EQ(d.tool_calls.size(), 1u);
  EXPECT_TRUE(d.tool_calls[0].begins_call);
  EXPECT_EQ(d.tool_calls[0].name, "f");
  EXPECT_EQ(d.tool_calls[0].arguments, "{\"a\": ");
  d = p.Push("1}<｜tool▁call▁end｜><｜tool▁calls▁end｜>");
  ASSERT_EQ(d.tool_calls.size(), 1u);
  EXPECT_EQ(d.tool_calls[0].arguments, "1}");
  p.Finish();
  ASSERT_EQ(p.result().tool_calls.size(), 1u);
  EXPECT_EQ(p.result().tool_calls[0].arguments, "{\"a\": 1}");
  // A held "<" that turns out not to start a marker is released.
  ChatOutputParser q(Opts(ToolCallSyntax::kV31));
  EXPECT_EQ(q.Push("a <").content, "a ");
  EXPECT_EQ(q.Push("b").content, "<b");
  EXPECT_EQ(q.Push(" <").content, " ");
  EXPECT_EQ(q.Finish().content, "<");
}

TEST(OutputParser, MalformedOutputBecomesContent) {
  // Unterminated call: its text, markers included, is content; no tool calls.
  const std::string cut = "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>f<｜tool▁sep｜>{\"a\": 1";
  for (size_t chunk : {0, 1}) {
    const Collected c = Parse(Opts(ToolCallSyntax::kV31), "Hi " + cut, chunk);
    EXPECT_EQ(c.result.content, "Hi " + cut);
    EXPECT_TRUE(c.result.tool_calls.empty());
    EXPECT_TRUE(c.result.malformed_tool_call);
    EXPECT_EQ(c.result.FinishReason("length"), "length");
    EXPECT_EQ(c.result.FinishReason("stop"), "stop");
  }
  // A calls block with no call, a call without <｜tool▁sep｜>, stray text in a block.
  for (const std::string& text : {std::string("<｜tool▁calls▁begin｜>"),
                                 std::string("<｜tool▁calls▁begin｜><｜tool▁calls▁end｜>"),
                                 std::string("<｜tool▁call▁begin｜>f<｜tool▁call▁end｜>"),
                                 std::string("<｜tool▁calls▁begin｜>just text")}) {
    const Collected c = Parse(Opts(ToolCallSyntax::kV31), text);
    EXPECT_EQ(c.result.content, text);
    EXPECT_TRUE(c.result.tool_calls.empty()) << text;
    EXPECT_TRUE(c.result.malformed_tool_call) << text;
  }
  // A complete call followed by a cut one keeps the complete one.
  const Collected c = Parse(Opts(ToolCallSyntax::kV3),
                            "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>f\n"
                            "```json\n{}\n```<｜tool▁call▁end｜>\n<｜tool▁call▁begin｜>function"
                            "<｜tool▁sep｜>g\n```json\n{\"x\"");
  ASSERT_EQ(c.result.tool_calls.size(), 1u);
  EXPECT_EQ(c.result.tool_calls[0].name, "f");
  EXPECT_THAT(c.result.content, HasSubstr("<｜tool▁call▁begin｜>function<｜tool▁sep｜>g\n"));
  EXPECT_EQ(c.result.FinishReason("stop"), "tool_calls");
  // Whitespace around calls inside the block is not content.
  const Collected spaced = Parse(Opts(ToolCallSyntax::kV31),
                                 "<｜tool▁calls▁begin｜>\n <｜tool▁call▁begin｜>f<｜tool▁sep｜>{}"
                                 "<｜tool▁call▁end｜>\n<｜tool▁calls▁end｜>",
                                 1);
  ASSERT_EQ(spaced.result.tool_calls.size(), 1u);
  EXPECT_EQ(spaced.result.content, "");
  EXPECT_FALSE(spaced.result.malformed_tool_call);
  // Missing <｜tool▁call▁end｜> before <｜tool▁calls▁end｜> is tolerated.
  const Collected d =
      Parse(Opts(ToolCallSyntax::kV31),
            "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>f<｜tool▁sep｜>{}<｜tool▁calls▁end｜>");
  ASSERT_EQ(d.result.tool_calls.size(), 1u);
  EXPECT_FALSE(d.result.malformed_tool_call);
}

TEST(OutputParser, TextAfterEndOfSentenceIsIgnored) {
  const Collected c = Parse(Opts(ToolCallSyntax::kV31), "done<｜end▁of▁sentence｜>garbage", 2);
  EXPECT_EQ(c.result.content, "done");
}

// Random sequences of control tokens, their fragments and text (well-formed or not): the
// result never depends on the chunking, and nothing crashes.
TEST(OutputParser, RandomOutputsAreChunkingIndependent) {
  const std::vector<std::string> pieces = {
      "<think>",
      "</think>",
      "<｜tool▁calls▁begin｜>",
      "<｜tool▁calls▁end｜>",
      "<｜tool▁call▁begin｜>",
      "<｜tool▁call▁end｜>",
      "<｜tool▁sep｜>",
      "<｜end▁of▁sentence｜>",
      "function",
      "get_weather",
      "\n",
      "```json\n",
      "\n```",
      "{\"a\": 1}",
      " ",
      "`",
      "<",
      "<｜",
      "<｜tool▁",
      "é",
      "😀",
      "text",
      "<｜tool▁call▁begin｜>f<｜tool▁sep｜>{}<｜tool▁call▁end｜>",
      "<｜tool▁calls▁begin｜>\n"};
  uint64_t state = 0x9E3779B97F4A7C15ull;
  auto next = [&](uint64_t n) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state % n;
  };
  for (int trial = 0; trial < 2000; ++trial) {
    std::string text;
    const int len = static_cast<int>(next(16));
    for (int i = 0; i < len; ++i) text += pieces[next(pieces.size())];
    const OutputParserOptions o =
        Opts(next(2) ? ToolCallSyntax::kV3 : ToolCallSyntax::kV31, next(2) == 1);
    const ChatResult whole = Parse(o, text).result;
    ExpectSameResult(Parse(o, text, 1).result, whole, text + " / bytes");
    ExpectSameResult(Parse(o, text, 1 + next(9)).result, whole, text + " / chunks");
    if (HasFailure()) break;
  }
}

TEST(OutputParser, OptionsFollowTheFormatAndPrompt) {
  ChatPrompt prompt;
  prompt.starts_in_reasoning = true;
  OutputParserOptions o = OutputParserOptions::For({ChatFormatKind::kV31, ""}, prompt);
  EXPECT_EQ(o.syntax, ToolCallSyntax::kV31);
  EXPECT_TRUE(o.starts_in_reasoning);
  o = OutputParserOptions::For({ChatFormatKind::kR1, ""}, ChatPrompt{});
  EXPECT_EQ(o.syntax, ToolCallSyntax::kV3);
  EXPECT_FALSE(o.starts_in_reasoning);
}

}  // namespace
}  // namespace dsinfer::chat
