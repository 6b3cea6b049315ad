#include "src/tokenizer/tiktoken_model.h"

#include <algorithm>
#include <cstdint>
#include <memory>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "src/core/mapped_file.h"
#include "src/core/status_macros.h"
#include "src/tokenizer/absl_compat.h"

namespace dsinfer {
namespace {

// Same bound as tokenizer.json ids: per-id tables stay reasonable.
constexpr int64_t kMaxRank = (1 << 24) - 1;

// Shown in errors: printable ASCII as is, other bytes as \xNN, cut after 40 bytes.
std::string Printable(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size() && i < 40; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7F) {
      out.push_back(static_cast<char>(c));
    } else {
      out += absl::StrCat("\\x", absl::Hex(c, absl::kZeroPad2));
    }
  }
  if (s.size() > 40) out += "...";
  return out;
}

}  // namespace

absl::StatusOr<std::vector<std::string>> ParseTiktokenRanks(std::string_view contents,
                                                            std::string_view name) {
  std::vector<std::string> by_rank;
  std::vector<size_t> line_of_rank;  // 0 = rank not seen yet
  absl::flat_hash_map<std::string, size_t> line_of_token;
  size_t line_no = 0;
  for (absl::string_view line : absl::StrSplit(AsAbsl(contents), '\n')) {
    ++line_no;
    const auto at = [&](std::string_view what) {
      return absl::InvalidArgumentError(absl::StrCat(AsAbsl(name), ":", line_no, ": ",
                                                     AsAbsl(what)));
    };
    line = absl::StripAsciiWhitespace(line);  // also a Windows "\r"
    if (line.empty()) continue;
    std::vector<absl::string_view> fields = absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    if (fields.size() != 2) {
      return at(absl::StrCat("expected \"<base64 token> <rank>\", got \"",
                             Printable(std::string_view(line.data(), line.size())), "\""));
    }
    std::string token;
    if (!absl::Base64Unescape(fields[0], &token)) {
      return at(absl::StrCat("token \"", Printable({fields[0].data(), fields[0].size()}),
                             "\" is not valid base64"));
    }
    if (token.empty()) return at("empty token");
    const absl::string_view r = fields[1];
    if (r.empty() || r.size() > 9 ||
        !std::all_of(r.begin(), r.end(), [](char c) { return absl::ascii_isdigit(c); })) {
      return at(absl::StrCat("rank \"", Printable({r.data(), r.size()}),
                             "\" is not a non-negative decimal number"));
    }
    int64_t rank = 0;
    for (char c : r) rank = rank * 10 + (c - '0');
    if (rank > kMaxRank) return at(absl::StrCat("rank ", rank, " is above ", kMaxRank));
    if (static_cast<size_t>(rank) >= by_rank.size()) {
      by_rank.resize(rank + 1);
      line_of_rank.resize(rank + 1, 0);
    }
    if (line_of_rank[rank] != 0) {
      return at(absl::StrCat("rank ", rank, " is given twice (also line ", line_of_rank[rank],
                             ")"));
    }
    auto [it, inserted] = line_of_token.emplace(token, line_no);
    if (!inserted) {
      return at(absl::StrCat("token \"", Printable(token), "\" is given twice (also line ",
                             it->second, ")"));
    }
    line_of_rank[rank] = line_no;
    by_rank[rank] = std::move(token);
  }
  if (by_rank.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(AsAbsl(name), ": no tokens"));
  }
  for (size_t rank = 0; rank < by_rank.size(); ++rank) {
    if (line_of_rank[rank] == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(AsAbsl(name), ": rank ", rank, " is missing (ranks must be 0..",
                       by_rank.size() - 1, " without gaps)"));
    }
  }
  for (int b = 0; b < 256; ++b) {
    if (!line_of_token.contains(std::string(1, static_cast<char>(b)))) {
      return absl::InvalidArgumentError(absl::StrCat(
          AsAbsl(name), ": the single byte 0x", absl::Hex(b, absl::kZeroPad2),
          " has no token (all 256 bytes must be tokens so that any text can be encoded)"));
    }
  }
  return by_rank;
}

absl::StatusOr<std::vector<std::string>> ReadTiktokenRanks(const std::string& path) {
  ASSIGN_OR_RETURN(std::unique_ptr<MappedFile> file, MappedFile::Open(path));
  const std::string_view contents(reinterpret_cast<const char*>(file->data()), file->size());
  return ParseTiktokenRanks(contents, path);
}

}  // namespace dsinfer
