// Plain chat structs shared by the renderer, the JSON helpers and the output parser. No protocol
// types: the HTTP and gRPC layers fill these from their own requests.
#pragma once

#include <string>
#include <vector>

#include "nlohmann/json.hpp"

namespace dsinfer::chat {

// An assistant's earlier call, as sent back in the conversation history.
struct ToolCall {
  std::string id;  // client bookkeeping only: DeepSeek's formats carry no ids
  std::string type = "function";
  std::string name;
  std::string arguments;  // a JSON text, rendered verbatim (OpenAI sends a string)
};

struct Message {
  std::string role;                  // "system", "user", "assistant" or "tool"
  std::string content;               // empty == none (the templates treat both alike)
  std::vector<ToolCall> tool_calls;  // assistant only
  std::string tool_call_id;          // tool only (required; the prompt matches by position)
};

// One entry of the request's `tools` (OpenAI function schema). `parameters` keeps the client's
// key order because it is printed into the prompt (json.dumps order in DeepSeek's docs).
struct Tool {
  std::string name;
  std::string description;
  nlohmann::ordered_json parameters = nlohmann::ordered_json::object();
};

struct RenderOptions {
  bool add_generation_prompt = true;
  // V3.1's `chat_template_kwargs: {"thinking": ...}`; false when absent (as its template). R1
  // always thinks and V3 never does: both ignore it.
  bool thinking = false;
};

}  // namespace dsinfer::chat
