// One choice's generated text read back as a DeepSeek chat answer, protocol-neutral: the output
// parser of src/chat (reasoning / content / tool calls) plus the tool-call ids DeepSeek's formats
// do not carry. The embedding API's Model (src/api) runs one per chat request on the engine's
// text (after stop strings) and hands its pieces out in api::Delta; the server's front ends
// (OpenAI API, gRPC Generate) map those onto their own messages.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "src/chat/output_parser.h"

namespace dsinfer {

// A piece of one tool call: the first carries id and name (`begins_call`), later ones only
// arguments text. A call's arguments are the concatenation of its pieces' arguments.
struct ToolCallChunk {
  int index = 0;
  bool begins_call = false;
  std::string id;
  std::string name;
  std::string arguments;
};

struct ChatOutputDelta {
  std::string reasoning_content;
  std::string content;
  std::vector<ToolCallChunk> tool_calls;
  bool empty() const { return reasoning_content.empty() && content.empty() && tool_calls.empty(); }
};

struct ChatToolCall {
  std::string id;
  std::string name;
  std::string arguments;  // the model's JSON text, as generated
};

// Not thread-safe: its owner serialises calls (the choice's mutex).
class ChatOutput {
 public:
  explicit ChatOutput(const chat::OutputParserOptions& options);

  ChatOutputDelta Push(std::string_view text);  // the engine's next text delta
  ChatOutputDelta Finish();                     // at the request's end (releases held text)

  // Complete after Finish.
  const std::string& reasoning_content() const { return parser_.result().reasoning_content; }
  const std::string& content() const { return parser_.result().content; }
  std::vector<ChatToolCall> tool_calls() const;
  // "tool_calls" when the model made calls and stopped by itself, else `engine_reason`.
  std::string FinishReason(std::string_view engine_reason) const {
    return parser_.result().FinishReason(engine_reason);
  }

 private:
  ChatOutputDelta Convert(chat::ChatDelta d);
  const std::string& IdOf(int index);

  chat::ChatOutputParser parser_;
  std::vector<std::string> ids_;  // by call index, made when the call begins
};

// "call_" and 24 random hex digits.
std::string NewToolCallId();

}  // namespace dsinfer
