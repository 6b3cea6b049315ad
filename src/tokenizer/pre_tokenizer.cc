#include "src/tokenizer/pre_tokenizer.h"

#include "src/core/status_macros.h"
#include "src/tokenizer/onig_pattern.h"
#include "src/tokenizer/unicode_additions.h"
#include "src/tokenizer/utf8.h"

namespace dsinfer {

absl::StatusOr<std::unique_ptr<PreTokenizer>> PreTokenizer::Create(
    const std::vector<std::string>& onig_patterns) {
  std::unique_ptr<PreTokenizer> pt(new PreTokenizer());
  for (const std::string& p : onig_patterns) {
    ASSIGN_OR_RETURN(std::string fast, OnigToPcre2Pattern(p, /*unicode_additions=*/false));
    ASSIGN_OR_RETURN(std::string exact, OnigToPcre2Pattern(p, /*unicode_additions=*/true));
    ASSIGN_OR_RETURN(std::unique_ptr<Pcre2Regex> fast_re,
                     Pcre2Regex::Compile(fast, /*any_bytes=*/false));
    ASSIGN_OR_RETURN(std::unique_ptr<Pcre2Regex> exact_re,
                     Pcre2Regex::Compile(exact, /*any_bytes=*/true));
    pt->fast_.push_back(std::move(fast_re));
    pt->exact_.push_back(std::move(exact_re));
  }
  return pt;
}

absl::StatusOr<std::unique_ptr<PreTokenizer>> PreTokenizer::FromPcre2(std::string_view pattern) {
  std::unique_ptr<PreTokenizer> pt(new PreTokenizer());
  ASSIGN_OR_RETURN(std::unique_ptr<Pcre2Regex> fast, Pcre2Regex::Compile(pattern, false));
  ASSIGN_OR_RETURN(std::unique_ptr<Pcre2Regex> exact, Pcre2Regex::Compile(pattern, true));
  pt->fast_.push_back(std::move(fast));
  pt->exact_.push_back(std::move(exact));
  return pt;
}

void PreTokenizer::Split(std::string_view text,
                         absl::FunctionRef<void(std::string_view)> piece) const {
  const bool fast = utf8::IsValid(text) && !ContainsUnicodeAddition(text);
  SplitFrom(fast ? fast_ : exact_, 0, text, piece);
}

void PreTokenizer::SplitFrom(const Steps& steps, size_t step, std::string_view text,
                             absl::FunctionRef<void(std::string_view)> piece) {
  if (text.empty()) return;
  if (step == steps.size()) {
    piece(text);
    return;
  }
  steps[step]->SplitIsolated(text,
                             [&](std::string_view sub) { SplitFrom(steps, step + 1, sub, piece); });
}

}  // namespace dsinfer
