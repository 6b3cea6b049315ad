#include "src/tokenizer/onig_pattern.h"

#include <cctype>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "src/tokenizer/absl_compat.h"
#include "src/tokenizer/unicode_additions.h"

namespace dsinfer {
namespace {

// Maps an Oniguruma property name to the general-category group it names ('L', 'M', 'N', 'P',
// 'S'), or 0 when it is not one of those groups.
char PropertyGroup(std::string_view name) {
  std::string n;
  for (char c : name) {
    if (c != '_' && c != ' ' && c != '-') n.push_back(absl::ascii_tolower(c));
  }
  if (n == "l" || n == "letter") return 'L';
  if (n == "m" || n == "mark" || n == "combiningmark") return 'M';
  if (n == "n" || n == "number") return 'N';
  if (n == "p" || n == "punctuation" || n == "punct") return 'P';
  if (n == "s" || n == "symbol") return 'S';
  return 0;
}

// Class items (without brackets) for group `g`: the PCRE2 property plus, if asked, the
// code points newer than PCRE2's tables.
std::string GroupClassItems(char g, bool additions) {
  std::string out = absl::StrCat("\\p{", std::string(1, g), "}");
  if (!additions) return out;
  for (const UnicodeAddition& a : UnicodeAdditions()) {
    if (a.group != g) continue;
    if (a.first == a.last) {
      absl::StrAppendFormat(&out, "\\x{%X}", static_cast<uint32_t>(a.first));
    } else {
      absl::StrAppendFormat(&out, "\\x{%X}-\\x{%X}", static_cast<uint32_t>(a.first),
                            static_cast<uint32_t>(a.last));
    }
  }
  return out;
}

// Oniguruma's \s for Unicode: U+0009..U+000D, U+0085 and the Zs, Zl, Zp characters. Spelled
// out because PCRE2's \s differs (no U+0085; U+180E in some versions).
constexpr std::string_view kOnigSpace =
    "\\t-\\r \\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}"
    "\\x{3000}";

class Translator {
 public:
  Translator(std::string_view p, bool additions) : p_(p), additions_(additions) {}

  absl::StatusOr<std::string> Run() {
    while (i_ < p_.size()) {
      const char c = p_[i_];
      if (in_class_) {
        absl::Status st = ClassChar(c);
        if (!st.ok()) return st;
      } else {
        absl::Status st = OuterChar(c);
        if (!st.ok()) return st;
      }
    }
    if (in_class_) return Error("unterminated character class");
    return out_;
  }

 private:
  absl::Status Error(std::string_view what) const {
    return absl::InvalidArgumentError(
        absl::StrCat("regex \"", AsAbsl(p_), "\" at offset ", i_, ": ", AsAbsl(what)));
  }
  absl::Status Unsupported(std::string_view what) const {
    return absl::UnimplementedError(absl::StrCat("regex \"", AsAbsl(p_), "\" at offset ", i_, ": ",
                                                 AsAbsl(what), " is not supported"));
  }

  absl::Status OuterChar(char c) {
    switch (c) {
      case '\\':
        return Escape();
      case '[':
        in_class_ = true;
        out_.push_back('[');
        ++i_;
        if (i_ < p_.size() && p_[i_] == '^') {
          out_.push_back('^');
          ++i_;
        }
        if (i_ < p_.size() && p_[i_] == ']') {  // a leading ']' is literal
          out_.append("\\]");
          ++i_;
        }
        return absl::OkStatus();
      case '^':
        out_.append("(?m:^)");
        ++i_;
        return absl::OkStatus();
      case '$':
        out_.append("(?m:$)");
        ++i_;
        return absl::OkStatus();
      case '.':
        out_.append("[^\\n]");
        ++i_;
        return absl::OkStatus();
      case '{':
        if (i_ + 1 < p_.size() && p_[i_ + 1] == ',') {
          out_.append("{0");
          ++i_;
          return absl::OkStatus();
        }
        break;
      case '(':
        if (i_ + 1 < p_.size() && p_[i_ + 1] == '?') return Group();
        break;
      default:
        break;
    }
    out_.push_back(c);
    ++i_;
    return absl::OkStatus();
  }

  absl::Status Group() {
    std::string_view rest = p_.substr(i_ + 2);
    for (std::string_view ok : {":", "=", "!", "<=", "<!", ">", "i:", "i)"}) {
      if (rest.substr(0, ok.size()) == ok) {
        out_.append("(?");
        out_.append(ok);
        i_ += 2 + ok.size();
        return absl::OkStatus();
      }
    }
    return Unsupported("this kind of group");
  }

  absl::Status ClassChar(char c) {
    if (c == ']') {
      in_class_ = false;
      out_.push_back(']');
      ++i_;
      return absl::OkStatus();
    }
    if (c == '[') return Unsupported("a nested character class");
    if (c == '&' && i_ + 1 < p_.size() && p_[i_ + 1] == '&') {
      return Unsupported("class intersection (&&)");
    }
    if (c == '\\') return Escape();
    out_.push_back(c);
    ++i_;
    return absl::OkStatus();
  }

  // At a backslash.
  absl::Status Escape() {
    if (i_ + 1 >= p_.size()) return Error("trailing backslash");
    const char e = p_[i_ + 1];
    switch (e) {
      case 'p':
      case 'P':
        return Property(e == 'P');
      case 's':
        out_.append(in_class_ ? std::string(kOnigSpace)
                              : absl::StrCat("[", AsAbsl(kOnigSpace), "]"));
        i_ += 2;
        return absl::OkStatus();
      case 'S':
        if (in_class_) return Unsupported("\\S inside a character class");
        out_.append(absl::StrCat("[^", AsAbsl(kOnigSpace), "]"));
        i_ += 2;
        return absl::OkStatus();
      case 'v':  // Oniguruma: vertical tab only; PCRE2: any vertical space.
        out_.append("\\x{0B}");
        i_ += 2;
        return absl::OkStatus();
      case 'u': {
        if (i_ + 6 > p_.size()) return Error("short \\u escape");
        std::string_view hex = p_.substr(i_ + 2, 4);
        for (char h : hex) {
          if (!absl::ascii_isxdigit(h)) return Error("bad \\u escape");
        }
        absl::StrAppend(&out_, "\\x{", AsAbsl(hex), "}");
        i_ += 6;
        return absl::OkStatus();
      }
      case 't':
      case 'n':
      case 'r':
      case 'f':
      case 'a':
      case 'e':
      case 'x':
      case 'd':
      case 'D':
      case 'A':
      case 'z':
      case 'Z':
      case 'G':
        if (in_class_ && std::string_view("AzZG").find(e) != std::string_view::npos) {
          return Error("anchor inside a character class");
        }
        out_.push_back('\\');
        out_.push_back(e);
        i_ += 2;
        return absl::OkStatus();
      default:
        break;
    }
    if (absl::ascii_isalnum(static_cast<unsigned char>(e))) {
      return Unsupported(absl::StrCat("the escape \\", std::string(1, e)));
    }
    // Escaped punctuation (or a non-ASCII byte): a literal in both dialects.
    out_.push_back('\\');
    out_.push_back(e);
    i_ += 2;
    return absl::OkStatus();
  }

  // At "\p{...}" or "\P{...}".
  absl::Status Property(bool negated) {
    if (i_ + 2 >= p_.size() || p_[i_ + 2] != '{') return Unsupported("\\p without braces");
    const size_t close = p_.find('}', i_ + 3);
    if (close == std::string_view::npos) return Error("unterminated \\p{");
    std::string_view name = p_.substr(i_ + 3, close - (i_ + 3));
    if (!name.empty() && name[0] == '^') {
      negated = !negated;
      name.remove_prefix(1);
    }
    if (name.empty()) return Error("empty property name");
    const char group = PropertyGroup(name);
    if (group != 0) {
      const std::string items = GroupClassItems(group, additions_);
      if (in_class_) {
        if (negated) return Unsupported("a negated \\P{...} group inside a character class");
        out_.append(items);
      } else {
        absl::StrAppend(&out_, negated ? "[^" : "[", items, "]");
      }
    } else {
      // Other properties (Lu, Nd, Han, ...) keep PCRE2's own Unicode tables.
      absl::StrAppend(&out_, negated ? "\\P{" : "\\p{", AsAbsl(name), "}");
    }
    i_ = close + 1;
    return absl::OkStatus();
  }

  std::string_view p_;
  bool additions_;
  size_t i_ = 0;
  bool in_class_ = false;
  std::string out_;
};

}  // namespace

absl::StatusOr<std::string> OnigToPcre2Pattern(std::string_view onig_pattern,
                                               bool unicode_additions) {
  return Translator(onig_pattern, unicode_additions).Run();
}

}  // namespace dsinfer
