#include "src/serving/chat_output.h"

#include <cstdint>
#include <random>

#include "absl/strings/str_format.h"

namespace dsinfer {

std::string NewToolCallId() {
  thread_local std::mt19937_64 gen{std::random_device{}()};
  return absl::StrFormat("call_%016x%08x", gen(), static_cast<uint32_t>(gen()));
}

ChatOutput::ChatOutput(const chat::OutputParserOptions& options) : parser_(options) {}

const std::string& ChatOutput::IdOf(int index) {
  while (static_cast<int>(ids_.size()) <= index) ids_.push_back(NewToolCallId());
  return ids_[index];
}

ChatOutputDelta ChatOutput::Convert(chat::ChatDelta d) {
  ChatOutputDelta out;
  out.reasoning_content = std::move(d.reasoning_content);
  out.content = std::move(d.content);
  for (chat::ToolCallDelta& t : d.tool_calls) {
    ToolCallChunk c;
    c.index = t.index;
    c.begins_call = t.begins_call;
    if (t.begins_call) c.id = IdOf(t.index);
    c.name = std::move(t.name);
    c.arguments = std::move(t.arguments);
    out.tool_calls.push_back(std::move(c));
  }
  return out;
}

ChatOutputDelta ChatOutput::Push(std::string_view text) { return Convert(parser_.Push(text)); }

ChatOutputDelta ChatOutput::Finish() { return Convert(parser_.Finish()); }

std::vector<ChatToolCall> ChatOutput::tool_calls() const {
  // Complete calls are the first ones by index (a malformed call ends the parsing of calls).
  const std::vector<chat::ParsedToolCall>& calls = parser_.result().tool_calls;
  std::vector<ChatToolCall> out;
  for (size_t i = 0; i < calls.size(); ++i) {
    out.push_back({i < ids_.size() ? ids_[i] : NewToolCallId(), calls[i].name, calls[i].arguments});
  }
  return out;
}

}  // namespace dsinfer
