// The pre-tokenizer of a byte-level BPE tokenizer: a sequence of regex splits (HF Split with
// behavior Isolated), each applied to every piece the previous one produced, followed by the
// byte-level mapping (which the BPE model does on bytes directly, so it is not a step here).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "src/tokenizer/pcre2_regex.h"

namespace dsinfer {

class PreTokenizer {
 public:
  // `onig_patterns` are the Split regexes in Oniguruma syntax, in order.
  static absl::StatusOr<std::unique_ptr<PreTokenizer>> Create(
      const std::vector<std::string>& onig_patterns);
  // One split by a regex already in PCRE2 syntax (e.g. the tiktoken pattern of
  // kimi_pattern.h), which must hold for well-formed and ill-formed subjects alike.
  static absl::StatusOr<std::unique_ptr<PreTokenizer>> FromPcre2(std::string_view pattern);

  // Calls `piece` for every non-empty piece of `text`, in order; pieces concatenate to `text`.
  // `text` may hold any bytes. Thread-safe.
  void Split(std::string_view text, absl::FunctionRef<void(std::string_view)> piece) const;

 private:
  using Steps = std::vector<std::unique_ptr<Pcre2Regex>>;
  PreTokenizer() = default;
  static void SplitFrom(const Steps& steps, size_t step, std::string_view text,
                        absl::FunctionRef<void(std::string_view)> piece);

  // The same splits compiled twice. `fast_`: for well-formed UTF-8 without Unicode additions
  // (nearly all text). `exact_`: for anything else (additions spelled out, ill-formed bytes
  // allowed). Both give identical pieces wherever `fast_` may be used.
  Steps fast_;
  Steps exact_;
};

}  // namespace dsinfer
