// OpenAI chat request pieces (JSON) -> plain chat structs, validated once with errors naming the
// field (`messages[1].content[0].type: ...`). The HTTP layer calls these; the gRPC layer builds
// Message/Tool directly. Both overloads exist because key order matters only for tool schemas:
// parse the body as ordered_json to keep the client's order in the prompt (nlohmann::json sorts).
#pragma once

#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "src/chat/chat_types.h"

namespace dsinfer::chat {

// `messages`: role; content as a string, null, or an array of {"type": "text", "text": ...}
// parts (joined); assistant `tool_calls` [{id, type, function: {name, arguments}}] with arguments
// a string (an object is accepted and printed compactly); tool `tool_call_id`. Other fields
// (name, reasoning_content, ...) are ignored: DeepSeek's templates do not render them.
absl::StatusOr<std::vector<Message>> ParseMessages(const nlohmann::ordered_json& messages);
absl::StatusOr<std::vector<Message>> ParseMessages(const nlohmann::json& messages);

// `tools`: [{"type": "function", "function": {"name", "description"?, "parameters"?}}].
absl::StatusOr<std::vector<Tool>> ParseTools(const nlohmann::ordered_json& tools);
absl::StatusOr<std::vector<Tool>> ParseTools(const nlohmann::json& tools);

// `chat_template_kwargs` -> the thinking switch: "thinking" (V3.1's name) or "enable_thinking"
// (another common spelling), a boolean; absent or null kwargs -> false.
absl::StatusOr<bool> ThinkingFromTemplateKwargs(const nlohmann::ordered_json& kwargs);
absl::StatusOr<bool> ThinkingFromTemplateKwargs(const nlohmann::json& kwargs);

}  // namespace dsinfer::chat
