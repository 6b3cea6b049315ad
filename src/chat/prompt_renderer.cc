#include "src/chat/prompt_renderer.h"

#include <string_view>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "src/chat/kimi_renderer.h"
#include "src/chat/python_json.h"

namespace dsinfer::chat {
namespace {

constexpr absl::string_view kBos = "<｜begin▁of▁sentence｜>";
constexpr absl::string_view kEos = "<｜end▁of▁sentence｜>";
constexpr absl::string_view kUser = "<｜User｜>";
constexpr absl::string_view kAssistant = "<｜Assistant｜>";
constexpr absl::string_view kThink = "<think>";
constexpr absl::string_view kEndThink = "</think>";
constexpr absl::string_view kCallsBegin = "<｜tool▁calls▁begin｜>";
constexpr absl::string_view kCallsEnd = "<｜tool▁calls▁end｜>";
constexpr absl::string_view kCallBegin = "<｜tool▁call▁begin｜>";
constexpr absl::string_view kCallEnd = "<｜tool▁call▁end｜>";
constexpr absl::string_view kSep = "<｜tool▁sep｜>";
constexpr absl::string_view kOutputsBegin = "<｜tool▁outputs▁begin｜>";
constexpr absl::string_view kOutputsEnd = "<｜tool▁outputs▁end｜>";
constexpr absl::string_view kOutputBegin = "<｜tool▁output▁begin｜>";
constexpr absl::string_view kOutputEnd = "<｜tool▁output▁end｜>";

// A prompt under construction: control tokens and text, in order. Adjacent text pieces are
// tokenized together, so a conversation without tool-call fences tokenizes exactly as HF's
// string template would (control tokens are split out by HF too).
class PromptBuilder {
 public:
  void Control(absl::string_view token) { pieces_.push_back({std::string(token), true}); }
  void Text(absl::string_view text) {
    if (!text.empty()) pieces_.push_back({std::string(text), false});
  }

  absl::StatusOr<ChatPrompt> Encode(const Tokenizer& tok) const {
    ChatPrompt out;
    std::string run;  // pending text, tokenized at the next control token
    auto flush = [&] {
      const std::vector<int32_t> ids = tok.EncodePlain(run);
      out.ids.insert(out.ids.end(), ids.begin(), ids.end());
      run.clear();
    };
    for (const Piece& p : pieces_) {
      out.text.append(p.text);
      if (!p.control) {
        run.append(p.text);
        continue;
      }
      const std::optional<int32_t> id = AddedTokenId(tok, p.text);
      if (!id) {
        // R1/V3.1 tokenizers have <think> and </think> as added tokens; V3's has not, where HF
        // tokenizes them as ordinary text and so do we.
        if (p.text == kThink || p.text == kEndThink) {
          run.append(p.text);
          continue;
        }
        return absl::FailedPreconditionError(absl::StrCat("the tokenizer has no added token ",
                                                          p.text, " needed by the chat format"));
      }
      flush();
      out.ids.push_back(*id);
    }
    flush();
    return out;
  }

 private:
  // Only added tokens count: a vocabulary string would be merged with its neighbours by HF.
  static std::optional<int32_t> AddedTokenId(const Tokenizer& tok, const std::string& s) {
    const std::vector<int32_t> ids = tok.Encode(s);
    if (ids.size() != 1 || tok.EncodePlain(s) == ids) return std::nullopt;
    return ids[0];
  }

  struct Piece {
    std::string text;
    bool control;
  };
  std::vector<Piece> pieces_;
};

absl::Status Invalid(absl::string_view field, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", what));
}

absl::Status Validate(absl::Span<const Message> messages, absl::Span<const Tool> tools) {
  for (size_t i = 0; i < messages.size(); ++i) {
    const Message& m = messages[i];
    const std::string at = absl::StrCat("messages[", i, "]");
    if (m.role != "system" && m.role != "user" && m.role != "assistant" && m.role != "tool") {
      return Invalid(
          absl::StrCat(at, ".role"),
          absl::StrCat("unknown role \"", m.role, "\" (expected system, user, assistant or tool)"));
    }
    if (!m.tool_calls.empty() && m.role != "assistant") {
      return Invalid(absl::StrCat(at, ".tool_calls"), "only assistant messages carry tool calls");
    }
    if (m.role == "tool" && m.tool_call_id.empty()) {
      return Invalid(absl::StrCat(at, ".tool_call_id"), "required for a tool message");
    }
    for (size_t j = 0; j < m.tool_calls.size(); ++j) {
      const ToolCall& c = m.tool_calls[j];
      const std::string call = absl::StrCat(at, ".tool_calls[", j, "]");
      if (c.type != "function") {
        return Invalid(absl::StrCat(call, ".type"),
                       absl::StrCat("unsupported type \"", c.type, "\" (expected \"function\")"));
      }
      if (c.name.empty()) return Invalid(absl::StrCat(call, ".function.name"), "empty");
    }
  }
  absl::flat_hash_set<absl::string_view> names;
  for (size_t k = 0; k < tools.size(); ++k) {
    const std::string at = absl::StrCat("tools[", k, "].function.name");
    if (tools[k].name.empty()) return Invalid(at, "empty");
    if (!names.insert(tools[k].name).second) {
      return Invalid(at, absl::StrCat("duplicate tool name \"", tools[k].name, "\""));
    }
  }
  return absl::OkStatus();
}

std::string SystemPrompt(absl::Span<const Message> messages) {
  std::string system;
  bool first = true;
  for (const Message& m : messages) {
    if (m.role != "system") continue;
    if (!first) system.append("\n\n");
    system.append(m.content);
    first = false;
  }
  return system;
}

// The tool description DeepSeek-V3.1's model card documents (appended to the system prompt
// after "\n\n"). The V3/R1 variant only swaps in their call syntax: DeepSeek documents no tool
// prompt for those, and the format line is what tells the model the syntax.
void RenderToolsBlock(ChatFormatKind kind, absl::Span<const Tool> tools, PromptBuilder* b) {
  b->Text("\n\n## Tools\nYou have access to the following tools:\n\n");
  for (const Tool& t : tools) {
    b->Text(absl::StrCat("### ", t.name, "\nDescription: ", t.description,
                         "\n\nParameters: ", PythonJsonDumps(t.parameters), "\n\n"));
  }
  b->Text("IMPORTANT: ALWAYS adhere to this exact format for tool use:\n");
  b->Control(kCallsBegin);
  b->Control(kCallBegin);
  if (kind == ChatFormatKind::kV31) {
    b->Text("tool_call_name");
    b->Control(kSep);
    b->Text("tool_call_arguments");
  } else {
    b->Text("function");
    b->Control(kSep);
    b->Text("tool_call_name\n```json\ntool_call_arguments\n```");
  }
  b->Control(kCallEnd);
  b->Text("{additional_tool_calls}");
  b->Control(kCallsEnd);
  b->Text(absl::StrCat(
      "\n\nWhere:\n- `tool_call_name` must be an exact match to one of the available tools\n"
      "- `tool_call_arguments` must be valid JSON that strictly follows the tool's Parameters "
      "Schema\n",
      kind == ChatFormatKind::kV31
          ? "- For multiple tool calls, chain them directly without separators or spaces"
          : "- For multiple tool calls, chain them with a newline as separator"));
}

// R1 drops history reasoning up to the last </think>, V3.1 up to the first (as their templates).
absl::string_view AfterLastEndThink(absl::string_view s) {
  const size_t p = s.rfind(kEndThink);
  return p == absl::string_view::npos ? s : s.substr(p + kEndThink.size());
}
absl::string_view AfterFirstEndThink(absl::string_view s) {
  const size_t p = s.find(kEndThink);
  return p == absl::string_view::npos ? s : s.substr(p + kEndThink.size());
}

// V3 and R1 (their templates' structure, with two template bugs fixed: the first call of every
// assistant message opens its own <｜tool▁calls▁begin｜>, and a tool-output run is closed before
// the next turn whatever it is).
void RenderV3Turns(ChatFormatKind kind, absl::Span<const Message> messages,
                   const RenderOptions& options, PromptBuilder* b, ChatPrompt* prompt_flags) {
  bool in_outputs = false;  // inside <｜tool▁outputs▁begin｜>...
  for (const Message& m : messages) {
    if (m.role == "system") continue;
    if (m.role == "tool") {
      if (!in_outputs) {
        b->Control(kOutputsBegin);
        in_outputs = true;
      } else if (kind == ChatFormatKind::kV3) {
        b->Text("\n");  // V3 separates outputs by a newline, R1 does not
      }
      b->Control(kOutputBegin);
      b->Text(m.content);
      b->Control(kOutputEnd);
      continue;
    }
    // After tool outputs the assistant continues straight after <｜tool▁outputs▁end｜>.
    const bool after_outputs = in_outputs;
    if (in_outputs) {
      b->Control(kOutputsEnd);
      in_outputs = false;
    }
    if (m.role == "user") {
      b->Control(kUser);
      b->Text(m.content);
      continue;
    }
    if (!after_outputs) b->Control(kAssistant);
    if (m.tool_calls.empty()) {
      b->Text(kind == ChatFormatKind::kR1 && !after_outputs ? AfterLastEndThink(m.content)
                                                            : absl::string_view(m.content));
      b->Control(kEos);
      continue;
    }
    b->Text(m.content);
    b->Control(kCallsBegin);
    for (size_t j = 0; j < m.tool_calls.size(); ++j) {
      const ToolCall& c = m.tool_calls[j];
      if (j > 0) b->Text("\n");
      b->Control(kCallBegin);
      b->Text(c.type);
      b->Control(kSep);
      b->Text(absl::StrCat(c.name, "\n```json\n", c.arguments, "\n```"));
      b->Control(kCallEnd);
    }
    b->Control(kCallsEnd);
    b->Control(kEos);
  }
  if (in_outputs) {
    b->Control(kOutputsEnd);
    return;  // the model answers right after the outputs: no generation prompt (as the template)
  }
  if (!options.add_generation_prompt) return;
  b->Control(kAssistant);
  if (kind == ChatFormatKind::kR1) {
    b->Control(kThink);
    b->Text("\n");
    prompt_flags->starts_in_reasoning = true;
  }
}

// V3.1, as its template: "<｜Assistant｜></think>" opens an assistant turn only after a user turn;
// tool outputs are not wrapped in a block, and the answer follows them directly.
void RenderV31Turns(absl::Span<const Message> messages, const RenderOptions& options,
                    PromptBuilder* b, ChatPrompt* prompt_flags) {
  bool last_user = false;
  bool is_tool = false;
  for (const Message& m : messages) {
    if (m.role == "system") continue;
    if (m.role == "user") {
      is_tool = false;
      last_user = true;
      b->Control(kUser);
      b->Text(m.content);
      continue;
    }
    if (m.role == "tool") {
      last_user = false;
      is_tool = true;
      b->Control(kOutputBegin);
      b->Text(m.content);
      b->Control(kOutputEnd);
      continue;
    }
    if (last_user) {
      b->Control(kAssistant);
      b->Control(kEndThink);  // history turns are always rendered non-thinking
    }
    last_user = false;
    if (m.tool_calls.empty()) {
      b->Text(is_tool ? absl::string_view(m.content) : AfterFirstEndThink(m.content));
      b->Control(kEos);
      is_tool = false;
      continue;
    }
    is_tool = false;
    b->Text(m.content);
    b->Control(kCallsBegin);
    for (const ToolCall& c : m.tool_calls) {
      b->Control(kCallBegin);
      b->Text(c.name);
      b->Control(kSep);
      b->Text(c.arguments);
      b->Control(kCallEnd);
    }
    b->Control(kCallsEnd);
    b->Control(kEos);
  }
  if (!options.add_generation_prompt || !last_user || is_tool) return;
  b->Control(kAssistant);
  b->Control(options.thinking ? kThink : kEndThink);
  prompt_flags->starts_in_reasoning = options.thinking;
}

}  // namespace

absl::StatusOr<ChatPrompt> RenderChat(const Tokenizer& tokenizer, const ChatFormat& format,
                                      absl::Span<const Message> messages,
                                      absl::Span<const Tool> tools, const RenderOptions& options) {
  if (format.kind == ChatFormatKind::kKimiK2) {
    return RenderKimiChat(tokenizer, messages, tools, options);
  }
  if (absl::Status s = Validate(messages, tools); !s.ok()) return s;
  PromptBuilder b;
  ChatPrompt flags;
  b.Control(kBos);
  b.Text(SystemPrompt(messages));
  if (!tools.empty()) RenderToolsBlock(format.kind, tools, &b);
  if (format.kind == ChatFormatKind::kV31) {
    RenderV31Turns(messages, options, &b, &flags);
  } else {
    RenderV3Turns(format.kind, messages, options, &b, &flags);
  }
  absl::StatusOr<ChatPrompt> prompt = b.Encode(tokenizer);
  if (prompt.ok()) prompt->starts_in_reasoning = flags.starts_in_reasoning;
  return prompt;
}

}  // namespace dsinfer::chat
