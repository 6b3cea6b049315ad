#include "src/chat/python_json.h"

#include <cstdint>
#include <cstdio>

namespace dsinfer::chat {
namespace {

void AppendU16(uint32_t unit, std::string* out) {
  char buf[8];
  std::snprintf(buf, sizeof(buf), "\\u%04x", static_cast<unsigned>(unit));
  out->append(buf);
}

// nlohmann strings are valid UTF-8 (its parser rejects anything else), so decoding can trust
// the lead byte; a malformed tail is still handled by emitting U+FFFD.
void AppendString(const std::string& s, std::string* out) {
  out->push_back('"');
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      switch (c) {
        case '"':
          out->append("\\\"");
          break;
        case '\\':
          out->append("\\\\");
          break;
        case '\n':
          out->append("\\n");
          break;
        case '\r':
          out->append("\\r");
          break;
        case '\t':
          out->append("\\t");
          break;
        case '\b':
          out->append("\\b");
          break;
        case '\f':
          out->append("\\f");
          break;
        default:
          // Python escapes everything outside ' '..'~', DEL included.
          if (c < 0x20 || c == 0x7f) {
            AppendU16(c, out);
          } else {
            out->push_back(static_cast<char>(c));
          }
      }
      ++i;
      continue;
    }
    const int len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
    uint32_t cp = len == 4 ? (c & 0x07) : len == 3 ? (c & 0x0F) : (c & 0x1F);
    bool ok = len > 1 && i + len <= s.size();
    for (int k = 1; ok && k < len; ++k) {
      const unsigned char cc = static_cast<unsigned char>(s[i + k]);
      ok = (cc & 0xC0) == 0x80;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if (!ok) {
      AppendU16(0xFFFD, out);
      ++i;
      continue;
    }
    if (cp >= 0x10000) {
      cp -= 0x10000;
      AppendU16(0xD800 + (cp >> 10), out);
      AppendU16(0xDC00 + (cp & 0x3FF), out);
    } else {
      AppendU16(cp, out);
    }
    i += len;
  }
  out->push_back('"');
}

void Append(const nlohmann::ordered_json& v, std::string* out) {
  switch (v.type()) {
    case nlohmann::ordered_json::value_t::object: {
      out->push_back('{');
      bool first = true;
      for (auto it = v.begin(); it != v.end(); ++it) {
        if (!first) out->append(", ");
        first = false;
        AppendString(it.key(), out);
        out->append(": ");
        Append(it.value(), out);
      }
      out->push_back('}');
      return;
    }
    case nlohmann::ordered_json::value_t::array: {
      out->push_back('[');
      bool first = true;
      for (const auto& e : v) {
        if (!first) out->append(", ");
        first = false;
        Append(e, out);
      }
      out->push_back(']');
      return;
    }
    case nlohmann::ordered_json::value_t::string:
      AppendString(v.get_ref<const std::string&>(), out);
      return;
    default:
      // Numbers, booleans and null print alike (nlohmann keeps "1.0" as 1.0, as Python does).
      out->append(v.dump());
      return;
  }
}

}  // namespace

std::string PythonJsonDumps(const nlohmann::ordered_json& value) {
  std::string out;
  Append(value, &out);
  return out;
}

}  // namespace dsinfer::chat
