#include "src/tokenizer/pcre2_regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <optional>

#include "absl/strings/str_cat.h"
#include "src/tokenizer/absl_compat.h"
#include "src/tokenizer/utf8.h"

namespace dsinfer {
namespace {

// Per-thread match state shared by all regexes: one ovector pair is all SplitIsolated reads.
struct MatchState {
  pcre2_match_data* data = nullptr;
  pcre2_match_context* context = nullptr;
  pcre2_jit_stack* jit_stack = nullptr;
  MatchState() {
    data = pcre2_match_data_create(1, nullptr);
    context = pcre2_match_context_create(nullptr);
    // Generous JIT stack (reserved lazily) so long runs of one class never exhaust it.
    jit_stack = pcre2_jit_stack_create(32 * 1024, 8 * 1024 * 1024, nullptr);
    if (context != nullptr && jit_stack != nullptr) {
      pcre2_jit_stack_assign(context, nullptr, jit_stack);
    }
  }
  ~MatchState() {
    pcre2_jit_stack_free(jit_stack);
    pcre2_match_context_free(context);
    pcre2_match_data_free(data);
  }
};

MatchState& ThreadMatchState() {
  thread_local MatchState state;
  return state;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Pcre2Regex>> Pcre2Regex::Compile(std::string_view pattern,
                                                                bool any_bytes) {
  int error = 0;
  PCRE2_SIZE offset = 0;
  const uint32_t options = PCRE2_UTF | PCRE2_UCP | (any_bytes ? PCRE2_MATCH_INVALID_UTF : 0);
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                   options, &error, &offset, nullptr);
  if (code == nullptr) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(error, msg, sizeof(msg));
    return absl::InvalidArgumentError(absl::StrCat("cannot compile regex \"", AsAbsl(pattern),
                                                   "\" at offset ", offset, ": ",
                                                   reinterpret_cast<const char*>(msg)));
  }
  const bool jit = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;
  return std::unique_ptr<Pcre2Regex>(new Pcre2Regex(code, jit, any_bytes));
}

Pcre2Regex::~Pcre2Regex() { pcre2_code_free(code_); }

bool Pcre2Regex::Find(std::string_view subject, size_t start, size_t* match_begin,
                      size_t* match_end) const {
  MatchState& ms = ThreadMatchState();
  const auto* s = reinterpret_cast<PCRE2_SPTR>(subject.data());
  // Well-formedness was checked by the caller (or does not matter with MATCH_INVALID_UTF).
  const uint32_t no_check = any_bytes_ ? 0 : PCRE2_NO_UTF_CHECK;
  int rc;
  if (jit_) {
    rc = pcre2_jit_match(code_, s, subject.size(), start, 0, ms.data, ms.context);
    if (rc < 0 && rc != PCRE2_ERROR_NOMATCH) {
      // JIT limits reached: retry with the interpreter.
      rc = pcre2_match(code_, s, subject.size(), start, PCRE2_NO_JIT | no_check, ms.data,
                       ms.context);
    }
  } else {
    rc = pcre2_match(code_, s, subject.size(), start, no_check, ms.data, ms.context);
  }
  if (rc < 0) return false;  // no match, or the engine's limits: the rest stays one gap
  const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(ms.data);
  *match_begin = ov[0];
  *match_end = ov[1];
  return true;
}

void Pcre2Regex::SplitIsolated(std::string_view subject,
                               absl::FunctionRef<void(std::string_view)> piece) const {
  const size_t n = subject.size();
  size_t emitted = 0;  // everything before this offset has been handed out
  size_t start = 0;    // where the next search begins
  std::optional<size_t> last_match_end;
  while (start <= n) {
    size_t b, e;
    if (!Find(subject, start, &b, &e)) break;
    if (b == e && last_match_end == b) {
      if (start >= n) break;
      start += utf8::CharLength(subject, start);
      continue;
    }
    if (b > emitted) piece(subject.substr(emitted, b - emitted));
    if (e > b) piece(subject.substr(b, e - b));
    emitted = e;
    start = e;
    last_match_end = e;
  }
  if (emitted < n) piece(subject.substr(emitted));
}

}  // namespace dsinfer
