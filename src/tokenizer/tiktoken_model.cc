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
  // Entries are collected first and placed by rank at the end, so a huge rank in a short
  // (malformed) file costs no memory before it is refused.
  std::vector<std::pair<uint32_t, std::string>> entries;
  absl::flat_hash_map<uint32_t, size_t> line_of_rank;
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
    std::vector<absl::string_view> fields =
        absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
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
    auto [rank_it, new_rank] = line_of_rank.emplace(static_cast<uint32_t>(rank), line_no);
    if (!new_rank) {
      return at(absl::StrCat("rank ", rank, " is given twice (also line ", rank_it->second,
                             ")"));
    }
    auto [token_it, new_token] = line_of_token.emplace(token, line_no);
    if (!new_token) {
      return at(absl::StrCat("token \"", Printable(token), "\" is given twice (also line ",
                             token_it->second, ")"));
    }
    entries.emplace_back(static_cast<uint32_t>(rank), std::move(token));
  }
  if (entries.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(AsAbsl(name), ": no tokens"));
  }
  // n distinct ranks are exactly 0..n-1 iff none is >= n; otherwise name the first gap.
  const size_t n = entries.size();
  std::vector<std::string> by_rank(n);
  std::vector<bool> seen(n, false);
  bool gap = false;
  for (auto& [rank, token] : entries) {
    if (rank >= n) {
      gap = true;
      continue;
    }
    seen[rank] = true;
    by_rank[rank] = std::move(token);
  }
  if (gap) {
    const size_t missing = std::find(seen.begin(), seen.end(), false) - seen.begin();
    return absl::InvalidArgumentError(absl::StrCat(AsAbsl(name), ": rank ", missing,
                                                   " is missing (ranks must be 0..", n - 1,
                                                   " without gaps)"));
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
