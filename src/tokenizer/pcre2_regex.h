// A PCRE2 regex (UTF + UCP, JIT when available) that splits text the way HF's Split
// pre-tokenizer with behavior "Isolated" does.
#pragma once

#include <memory>
#include <string_view>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"

struct pcre2_real_code_8;

namespace dsinfer {

class Pcre2Regex {
 public:
  // `pattern` is in PCRE2 syntax (see OnigToPcre2Pattern). With `any_bytes`, subjects may hold
  // ill-formed UTF-8 (PCRE2_MATCH_INVALID_UTF: such bytes never match any pattern item);
  // without it, subjects MUST be well-formed UTF-8 (checked by the caller), which is faster.
  static absl::StatusOr<std::unique_ptr<Pcre2Regex>> Compile(std::string_view pattern,
                                                             bool any_bytes);
  ~Pcre2Regex();
  Pcre2Regex(const Pcre2Regex&) = delete;
  Pcre2Regex& operator=(const Pcre2Regex&) = delete;

  // Calls `piece` for every match and every gap between matches, in order, skipping empty ones.
  // Match positions follow Oniguruma's find_iter: each search starts where the previous match
  // ended; an empty match right at the end of the previous match is skipped by one character.
  // Thread-safe (per-thread match data).
  void SplitIsolated(std::string_view subject,
                     absl::FunctionRef<void(std::string_view)> piece) const;

  // Finds the first match at or after byte `start`; false when there is none (or when the
  // engine's limits were reached, in which case the rest of the subject stays unmatched).
  bool Find(std::string_view subject, size_t start, size_t* match_begin, size_t* match_end) const;

  bool jit() const { return jit_; }

 private:
  Pcre2Regex(pcre2_real_code_8* code, bool jit, bool any_bytes)
      : code_(code), jit_(jit), any_bytes_(any_bytes) {}

  pcre2_real_code_8* code_;
  bool jit_;
  bool any_bytes_;
};

}  // namespace dsinfer
