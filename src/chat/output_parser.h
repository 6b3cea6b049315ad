// Streaming parser of a DeepSeek model's generated text into reasoning, content and tool calls.
// Fed detokenized text (control tokens appear as their text, e.g. "<｜tool▁sep｜>", whole or split
// across chunks); hands back deltas as soon as they are certain and a summary at the end.
// Protocol-neutral: the HTTP/gRPC layers map ChatDelta/ChatResult onto their own messages.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "src/chat/chat_format.h"
#include "src/chat/prompt_renderer.h"

namespace dsinfer::chat {

enum class ToolCallSyntax {
  kV3,  // <｜tool▁call▁begin｜>function<｜tool▁sep｜>name\n```json\n{args}\n```<｜tool▁call▁end｜>
  kV31,  // <｜tool▁call▁begin｜>name<｜tool▁sep｜>{args}<｜tool▁call▁end｜>
};

struct OutputParserOptions {
  ToolCallSyntax syntax = ToolCallSyntax::kV3;
  bool starts_in_reasoning = false;  // the prompt ended inside <think> (ChatPrompt says so)
  // Off (a request without tools, or tool_choice "none"): tool-call markup the model still
  // writes stays content text, and FinishReason never says "tool_calls".
  bool parse_tool_calls = true;

  static OutputParserOptions For(const ChatFormat& format, const ChatPrompt& prompt);
};

// A piece of one tool call. The first delta of a call carries `name` (complete) and
// `begins_call`; later ones carry arguments text only. Concatenating a call's `arguments` gives
// its final arguments.
struct ToolCallDelta {
  int index = 0;  // 0, 1, ... in order of appearance
  bool begins_call = false;
  std::string name;
  std::string arguments;
};

struct ChatDelta {
  std::string reasoning_content;
  std::string content;
  std::vector<ToolCallDelta> tool_calls;
  bool empty() const { return reasoning_content.empty() && content.empty() && tool_calls.empty(); }
};

struct ParsedToolCall {
  std::string name;
  std::string arguments;  // the model's JSON text, as generated (not validated)
};

struct ChatResult {
  std::string reasoning_content;
  std::string content;
  std::vector<ParsedToolCall> tool_calls;  // complete calls only
  // A malformed tool-call structure (unterminated call, call without <｜tool▁sep｜>, calls block
  // without a call) was given back as content, markers included. ToolCallDeltas of that call
  // handed out before the delta that gave it back stand; a consumer that already forwarded
  // them sees the call's text again as content.
  bool malformed_tool_call = false;

  // "tool_calls" when the model made calls and stopped by itself; otherwise `engine_reason`
  // ("stop", "length", ...) unchanged.
  std::string FinishReason(std::string_view engine_reason) const;
};

// Not thread-safe; one per generated sequence.
class ChatOutputParser {
 public:
  explicit ChatOutputParser(OutputParserOptions options);

  // Text that follows what was pushed before. Holds back a suffix that may be the start of a
  // control token (or of a UTF-8 character), so no delta ever holds part of one.
  ChatDelta Push(std::string_view text);
  // End of generation: releases what was held back and closes malformed structures.
  ChatDelta Finish();
  // Everything so far (complete after Finish): the concatenation of all deltas.
  const ChatResult& result() const { return result_; }

 private:
  enum class State {
    kReasoning,   // inside <think>
    kContent,     // answer text
    kCallsOpen,   // inside <｜tool▁calls▁begin｜>, between calls
    kCallHeader,  // after <｜tool▁call▁begin｜>: V3.1 name / V3 type, up to <｜tool▁sep｜>
    kV3Name,      // V3: function name, up to the newline
    kV3Fence,     // V3: the opening ```json line
    kArguments,   // arguments, up to <｜tool▁call▁end｜>
    kDone,        // after <｜end▁of▁sentence｜>: everything else is ignored
  };

  std::vector<std::string_view> Markers() const;
  void Drain(bool final, ChatDelta* delta);
  // Returns the bytes consumed: fewer than given when the state changed inside `text` and the
  // rest must be rescanned with the new state's markers.
  size_t HandleText(std::string_view text, ChatDelta* delta);
  void HandleMarker(std::string_view marker, ChatDelta* delta);
  void EmitReasoning(std::string_view text, ChatDelta* delta);
  void EmitContent(std::string_view text, ChatDelta* delta);
  void EmitArguments(std::string_view text, ChatDelta* delta);
  void BeginCall(std::string name, ChatDelta* delta);
  void EndCall(ChatDelta* delta);
  void AbandonCall(ChatDelta* delta);
  bool InCall() const;

  OutputParserOptions options_;
  State state_;
  bool at_start_ = true;         // nothing consumed yet: a leading "<think>" opens reasoning
  std::string pending_;          // text not yet consumed (a possible marker prefix)
  std::string call_text_;        // raw text of the open call block, for a malformed end
  std::string field_;            // header / V3 name / V3 fence being collected
  std::string args_held_;        // V3: trailing whitespace and backticks (the closing fence)
  bool block_has_call_ = false;  // a call completed in the open <｜tool▁calls▁begin｜> block
  bool call_begun_ = false;      // the open call's name was handed out
  int next_index_ = 0;
  ChatResult result_;
};

}  // namespace dsinfer::chat
