#include "src/chat/output_parser.h"

#include <algorithm>
#include <array>

namespace dsinfer::chat {
namespace {

constexpr std::string_view kEos = "<｜end▁of▁sentence｜>";
constexpr std::string_view kThink = "<think>";
constexpr std::string_view kEndThink = "</think>";
constexpr std::string_view kCallsBegin = "<｜tool▁calls▁begin｜>";
constexpr std::string_view kCallsEnd = "<｜tool▁calls▁end｜>";
constexpr std::string_view kCallBegin = "<｜tool▁call▁begin｜>";
constexpr std::string_view kCallEnd = "<｜tool▁call▁end｜>";
constexpr std::string_view kSep = "<｜tool▁sep｜>";

// std::string_view helpers (this absl's string_view is not std's).
bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}
bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}
std::string_view StripLeading(std::string_view s) {
  while (!s.empty() && IsSpace(s.front())) s.remove_prefix(1);
  return s;
}
std::string_view Strip(std::string_view s) {
  s = StripLeading(s);
  while (!s.empty() && IsSpace(s.back())) s.remove_suffix(1);
  return s;
}

// Bytes at the end of `s` that might continue into a marker or a UTF-8 character: they are held
// until the next chunk decides.
size_t HoldBack(std::string_view s, const std::vector<std::string_view>& markers) {
  size_t hold = 0;
  for (std::string_view m : markers) {
    for (size_t n = std::min(s.size(), m.size() - 1); n > hold; --n) {
      if (StartsWith(m, s.substr(s.size() - n))) {
        hold = n;
        break;
      }
    }
  }
  // An incomplete trailing UTF-8 sequence (its lead byte is within the last 3 bytes).
  for (size_t back = 1; back <= 3 && back <= s.size(); ++back) {
    const unsigned char c = static_cast<unsigned char>(s[s.size() - back]);
    if ((c & 0xC0) == 0x80) continue;  // continuation byte
    const size_t need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
    if (need > back) hold = std::max(hold, back);
    break;
  }
  return hold;
}

bool IsArgsTail(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '`'; }

}  // namespace

// Markers that change the current state; anything else is text of that state (so a stray
// "</think>" in an answer stays text).
std::vector<std::string_view> ChatOutputParser::Markers() const {
  switch (state_) {
    case State::kReasoning:
      return {kEndThink, kEos};
    case State::kContent:
      if (!options_.parse_tool_calls) return {kEos};
      return {kCallsBegin, kCallBegin, kEos};
    case State::kCallsOpen:
      return {kCallBegin, kCallsEnd, kEos};
    case State::kCallHeader:
      return {kSep, kCallBegin, kCallEnd, kCallsEnd, kEos};
    case State::kV3Name:
    case State::kV3Fence:
    case State::kArguments:
      return {kCallBegin, kCallEnd, kCallsEnd, kEos};
    case State::kDone:
      break;
  }
  return {};
}

OutputParserOptions OutputParserOptions::For(const ChatFormat& format, const ChatPrompt& prompt) {
  OutputParserOptions o;
  o.syntax = format.kind == ChatFormatKind::kV31 ? ToolCallSyntax::kV31 : ToolCallSyntax::kV3;
  o.starts_in_reasoning = prompt.starts_in_reasoning;
  return o;
}

std::string ChatResult::FinishReason(std::string_view engine_reason) const {
  if (!tool_calls.empty() && engine_reason == "stop") return "tool_calls";
  return std::string(engine_reason);
}

ChatOutputParser::ChatOutputParser(OutputParserOptions options)
    : options_(options),
      state_(options.starts_in_reasoning ? State::kReasoning : State::kContent) {}

ChatDelta ChatOutputParser::Push(std::string_view text) {
  ChatDelta delta;
  pending_.append(text.data(), text.size());
  Drain(/*final=*/false, &delta);
  return delta;
}

ChatDelta ChatOutputParser::Finish() {
  ChatDelta delta;
  Drain(/*final=*/true, &delta);
  // An open call (or a calls block with no complete call) was cut off: give its text back.
  if (InCall() || (state_ == State::kCallsOpen && !block_has_call_)) AbandonCall(&delta);
  state_ = State::kDone;
  return delta;
}

bool ChatOutputParser::InCall() const {
  return state_ == State::kCallHeader || state_ == State::kV3Name || state_ == State::kV3Fence ||
         state_ == State::kArguments;
}

void ChatOutputParser::Drain(bool final, ChatDelta* delta) {
  while (state_ != State::kDone) {
    if (at_start_ && (state_ == State::kContent || state_ == State::kReasoning)) {
      // A model may open its own <think> (R1 with an older template, V3.1 deciding to think).
      if (pending_.empty()) return;
      if (!final && pending_.size() < kThink.size() && StartsWith(kThink, pending_)) return;
      if (StartsWith(pending_, kThink)) {
        pending_.erase(0, kThink.size());
        state_ = State::kReasoning;
      }
      at_start_ = false;
    }
    const std::vector<std::string_view> markers = Markers();
    size_t best = std::string::npos;
    std::string_view marker;
    for (std::string_view m : markers) {
      const size_t p = pending_.find(m.data(), 0, m.size());
      if (p < best) {
        best = p;
        marker = m;
      }
    }
    if (best != std::string::npos) {
      const std::string text = pending_.substr(0, best);
      const size_t used = HandleText(text, delta);
      if (used < text.size()) {  // the state changed inside the text: rescan the rest
        pending_.erase(0, used);
        continue;
      }
      pending_.erase(0, best + marker.size());
      HandleMarker(marker, delta);
      continue;
    }
    // Hold back a prefix of any control token, not only of this state's markers: a control
    // token that is mere text here (a tool-call token inside reasoning) still reaches the
    // client whole, in one delta.
    static const std::vector<std::string_view> kAllMarkers = {
        kThink, kEndThink, kCallsBegin, kCallsEnd, kCallBegin, kCallEnd, kSep, kEos};
    const size_t keep = final ? 0 : HoldBack(pending_, kAllMarkers);
    const std::string text = pending_.substr(0, pending_.size() - keep);
    const size_t used = HandleText(text, delta);
    pending_.erase(0, used);
    if (used == text.size()) return;
  }
  pending_.clear();  // after <｜end▁of▁sentence｜>
}

size_t ChatOutputParser::HandleText(std::string_view text, ChatDelta* delta) {
  if (text.empty()) return 0;
  at_start_ = false;
  switch (state_) {
    case State::kReasoning:
      EmitReasoning(text, delta);
      return text.size();
    case State::kContent:
      EmitContent(text, delta);
      return text.size();
    case State::kDone:
      return text.size();
    case State::kCallsOpen: {
      // Whitespace between calls (V3 puts a newline there) is held in call_text_; other text
      // is not a call: before any complete call the block was no block (it becomes content
      // and the text from there on is rescanned as content), after one it is stray content, up
      // to its last non-space character, so that chunk boundaries do not matter.
      if (!block_has_call_) {
        const size_t first = text.find_first_not_of(" \t\r\n\f\v");
        call_text_.append(text.substr(0, first));
        if (first == std::string_view::npos) return text.size();
        AbandonCall(delta);
        return first;
      }
      call_text_.append(text);
      if (Strip(text).empty()) return text.size();
      const size_t end = call_text_.find_last_not_of(" \t\r\n\f\v");  // call_text_: spaces + text
      EmitContent(std::string_view(call_text_).substr(0, end + 1), delta);
      call_text_.erase(0, end + 1);
      return text.size();
    }
    default:
      break;
  }
  call_text_.append(text);
  switch (state_) {
    case State::kCallHeader:
      field_.append(text);
      return text.size();
    case State::kV3Name: {
      field_.append(text);
      const size_t nl = field_.find('\n');
      if (nl == std::string::npos) return text.size();
      const std::string rest = field_.substr(nl + 1);
      BeginCall(std::string(Strip(field_.substr(0, nl))), delta);
      field_.clear();
      state_ = State::kV3Fence;
      field_ = rest;
      break;  // fall into the fence check below with what followed the newline
    }
    case State::kV3Fence:
      field_.append(text);
      break;
    case State::kArguments:
      EmitArguments(text, delta);
      return text.size();
    default:
      return text.size();
  }
  // kV3Fence: skip an opening "```json" (or "```") line once it is complete.
  const std::string_view s = StripLeading(field_);
  if (s.empty()) return text.size();
  std::string args;
  if (StartsWith(s, "```")) {
    const size_t nl = s.find('\n');
    if (nl == std::string_view::npos) return text.size();
    args = std::string(s.substr(nl + 1));
  } else if (StartsWith("```", s)) {
    return text.size();  // "`" or "``": wait
  } else {
    args = std::string(s);  // no fence
  }
  field_.clear();
  state_ = State::kArguments;
  EmitArguments(args, delta);
  return text.size();
}

void ChatOutputParser::HandleMarker(std::string_view marker, ChatDelta* delta) {
  at_start_ = false;
  if (marker == kEos) {
    if (InCall() || (state_ == State::kCallsOpen && !block_has_call_)) AbandonCall(delta);
    state_ = State::kDone;
    return;
  }
  if (marker == kEndThink) {  // only a marker in kReasoning
    state_ = State::kContent;
    return;
  }
  if (marker == kCallsBegin) {  // only a marker in kContent
    call_text_ = std::string(marker);
    block_has_call_ = false;
    state_ = State::kCallsOpen;
    return;
  }
  if (marker == kCallBegin) {
    if (state_ == State::kArguments) {
      EndCall(delta);  // the previous call lacked <｜tool▁call▁end｜>: its arguments are done
    } else if (InCall()) {
      AbandonCall(delta);
    }
    if (state_ == State::kContent) {  // a call without <｜tool▁calls▁begin｜>
      call_text_.clear();
      block_has_call_ = false;
    }
    call_text_.append(marker);
    field_.clear();
    state_ = State::kCallHeader;
    return;
  }
  call_text_.append(marker);
  if (marker == kSep) {  // only a marker in kCallHeader
    std::string header(Strip(field_));
    field_.clear();
    // V3's header is the type ("function"); a header naming anything else is read as V3.1's
    // `name<｜tool▁sep｜>args`, which V3-format models also produce at times.
    if (options_.syntax == ToolCallSyntax::kV3 && header == "function") {
      state_ = State::kV3Name;
    } else {
      BeginCall(std::move(header), delta);
      state_ = State::kArguments;
    }
    return;
  }
  if (marker == kCallEnd) {
    if (state_ == State::kCallHeader) {
      AbandonCall(delta);  // no <｜tool▁sep｜>: not a call
      return;
    }
    if (state_ == State::kV3Name) {
      BeginCall(std::string(Strip(field_)), delta);
    }
    EndCall(delta);
    return;
  }
  if (marker == kCallsEnd) {
    if (state_ == State::kArguments || state_ == State::kV3Fence) {
      EndCall(delta);
    } else if (InCall() || !block_has_call_) {
      AbandonCall(delta);
      return;
    }
    call_text_.clear();
    state_ = State::kContent;
  }
}

void ChatOutputParser::EmitReasoning(std::string_view text, ChatDelta* delta) {
  result_.reasoning_content.append(text);
  delta->reasoning_content.append(text);
}

void ChatOutputParser::EmitContent(std::string_view text, ChatDelta* delta) {
  result_.content.append(text);
  delta->content.append(text);
}

void ChatOutputParser::EmitArguments(std::string_view text, ChatDelta* delta) {
  std::string out;
  if (options_.syntax == ToolCallSyntax::kV3) {
    // Hold trailing whitespace and backticks: they may be the closing "\n```", never part of
    // the JSON arguments' end.
    args_held_.append(text);
    size_t last = args_held_.size();
    while (last > 0 && IsArgsTail(args_held_[last - 1])) --last;
    out = args_held_.substr(0, last);
    args_held_.erase(0, last);
  } else {
    out = std::string(text);
  }
  if (out.empty()) return;
  result_.tool_calls.back().arguments.append(out);
  if (!delta->tool_calls.empty() && delta->tool_calls.back().index == next_index_) {
    delta->tool_calls.back().arguments.append(out);
  } else {
    delta->tool_calls.push_back({next_index_, false, "", out});
  }
}

void ChatOutputParser::BeginCall(std::string name, ChatDelta* delta) {
  result_.tool_calls.push_back({name, ""});
  delta->tool_calls.push_back({next_index_, true, std::move(name), ""});
  call_begun_ = true;
}

void ChatOutputParser::EndCall(ChatDelta* delta) {
  if (!call_begun_) BeginCall("", delta);  // V3 "function<｜tool▁sep｜>" cut right there
  args_held_.clear();
  field_.clear();
  call_text_.clear();
  call_begun_ = false;
  block_has_call_ = true;
  ++next_index_;
  state_ = State::kCallsOpen;
}

void ChatOutputParser::AbandonCall(ChatDelta* delta) {
  result_.malformed_tool_call = true;
  if (call_begun_) {
    result_.tool_calls.pop_back();
    auto& calls = delta->tool_calls;
    const bool begun_in_this_delta = std::any_of(
        calls.begin(), calls.end(),
        [&](const ToolCallDelta& d) { return d.index == next_index_ && d.begins_call; });
    calls.erase(std::remove_if(calls.begin(), calls.end(),
                               [&](const ToolCallDelta& d) { return d.index == next_index_; }),
                calls.end());
    if (!begun_in_this_delta) ++next_index_;  // already handed out: never reuse the index
    call_begun_ = false;
  }
  const std::string text = std::move(call_text_);
  call_text_.clear();
  field_.clear();
  args_held_.clear();
  state_ = State::kContent;
  EmitContent(text, delta);
}

}  // namespace dsinfer::chat
