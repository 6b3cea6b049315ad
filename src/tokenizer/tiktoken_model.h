// tiktoken's BPE rank file (`tiktoken.model` in Kimi-K2, the format of tiktoken's
// load_tiktoken_bpe): one "base64(token bytes) rank" line per token; the rank is also the id and
// the merge priority. This reads and checks it; the Tokenizer is built in tokenizer_tiktoken.cc.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "src/tokenizer/tokenizer.h"

namespace dsinfer {

// Token bytes indexed by rank. Refused with InvalidArgument naming `name` and the line: a line
// that is not two fields, bad base64, an empty token, a rank that is not a decimal number (or is
// above 2^24 - 1), a rank or token given twice, ranks that are not exactly 0..n-1, a single byte
// that has no token (it could not be encoded). Blank lines are skipped, as tiktoken does.
absl::StatusOr<std::vector<std::string>> ParseTiktokenRanks(std::string_view contents,
                                                            std::string_view name);

// ParseTiktokenRanks on a file's contents; a missing file is NotFound naming the path.
absl::StatusOr<std::vector<std::string>> ReadTiktokenRanks(const std::string& path);

// True for the names FromFile reads as tiktoken rank files: "tiktoken.model", "*.tiktoken".
bool IsTiktokenFileName(std::string_view path);

// The Kimi-K2 tokenizer: ranks from `path`, Kimi's pre-tokenizer (kimi_pattern.h), and special
// tokens as tokenization_kimi.py makes them: ids n..n+255 after the n ranks, named by
// `added_tokens_decoder` of tokenizer_config.json beside `path`, the others
// "<|reserved_token_{id}|>". bos/eos come from bos_token/eos_token there.
absl::StatusOr<std::unique_ptr<Tokenizer>> LoadTiktoken(const std::string& path);

}  // namespace dsinfer
