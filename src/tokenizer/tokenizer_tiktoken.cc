// Tokenizer from a tiktoken rank file (Kimi-K2), and the model-directory lookup. Design follows
// tiktoken's CoreBPE (regex split, whole-piece lookup, then rank-ordered pair merges over
// bytes) and Kimi's tokenization_kimi.py (pattern, special-token ids); the code is dsinfer's.
#include <filesystem>
#include <nlohmann/json.hpp>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "src/core/mapped_file.h"
#include "src/core/status_macros.h"
#include "src/tokenizer/absl_compat.h"
#include "src/tokenizer/added_token_matcher.h"
#include "src/tokenizer/bpe_model.h"
#include "src/tokenizer/kimi_pattern.h"
#include "src/tokenizer/pre_tokenizer.h"
#include "src/tokenizer/tiktoken_model.h"
#include "src/tokenizer/tokenizer.h"
#include "src/tokenizer/tokenizer_files.h"

namespace dsinfer {
namespace {

using Json = nlohmann::json;

// tokenization_kimi.py: num_reserved_special_tokens.
constexpr int32_t kNumReservedSpecialTokens = 256;
using tokenizer_files::kMaxTokenId;
using tokenizer_files::ParseJsonFile;

struct Special {
  std::string content;
  bool special = true;
};

// added_tokens_decoder: {"<id>": {"content": "...", "special": true, ...}, ...}; every id must
// come after the ranks (tiktoken has no way to override a rank).
absl::Status ParseAddedTokensDecoder(const Json& cfg, const std::string& file, int32_t num_ranks,
                                     absl::flat_hash_map<int32_t, Special>* out) {
  auto it = cfg.find("added_tokens_decoder");
  if (it == cfg.end() || it->is_null()) return absl::OkStatus();
  const auto invalid = [&](std::string_view where, std::string_view what) {
    return absl::InvalidArgumentError(absl::StrCat(file, ": added_tokens_decoder",
                                                   AsAbsl(where), ": ", AsAbsl(what)));
  };
  if (!it->is_object()) return invalid("", "expected an object");
  absl::flat_hash_set<std::string> contents;
  for (auto e = it->begin(); e != it->end(); ++e) {
    const std::string where = absl::StrCat(".\"", e.key(), "\"");
    const std::string& key = e.key();
    if (key.empty() || key.size() > 9 ||
        !std::all_of(key.begin(), key.end(), [](char c) { return absl::ascii_isdigit(c); })) {
      return invalid(where, "the key must be a token id");
    }
    const int64_t id = std::stoll(key);
    if (id > kMaxTokenId) return invalid(where, absl::StrCat("id is above ", kMaxTokenId));
    if (id < num_ranks) {
      return invalid(where, absl::StrCat("id ", id, " is a BPE rank (special tokens start at ",
                                         num_ranks, ")"));
    }
    const Json& v = e.value();
    if (!v.is_object()) return invalid(where, "expected an object");
    auto c = v.find("content");
    if (c == v.end() || !c->is_string() || c->get<std::string>().empty()) {
      return invalid(where, "content: expected a non-empty string");
    }
    Special s{c->get<std::string>(), true};
    if (auto sp = v.find("special"); sp != v.end() && !sp->is_null()) {
      if (!sp->is_boolean()) return invalid(where, "special: expected true or false");
      s.special = sp->get<bool>();
    }
    if (!contents.insert(s.content).second) {
      return invalid(where, absl::StrCat("content \"", s.content, "\" is given twice"));
    }
    (*out)[static_cast<int32_t>(id)] = std::move(s);
  }
  return absl::OkStatus();
}

// bos_token / eos_token: a string, {"content": ...}, or null/absent.
absl::StatusOr<std::optional<std::string>> ConfigToken(const Json& cfg, const char* key,
                                                       const std::string& file) {
  auto it = cfg.find(key);
  if (it == cfg.end() || it->is_null()) return std::nullopt;
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object()) {
    auto c = it->find("content");
    if (c != it->end() && c->is_string()) return c->get<std::string>();
  }
  return absl::InvalidArgumentError(
      absl::StrCat(file, ": ", key, ": expected a string, an object with \"content\", or null"));
}

}  // namespace

class TiktokenLoader {
 public:
  static absl::StatusOr<std::unique_ptr<Tokenizer>> Load(const std::string& path);
};

absl::StatusOr<std::unique_ptr<Tokenizer>> TiktokenLoader::Load(const std::string& path) {
  ASSIGN_OR_RETURN(std::vector<std::string> ranks, ReadTiktokenRanks(path));
  const int32_t num_ranks = static_cast<int32_t>(ranks.size());

  const std::filesystem::path config_path =
      std::filesystem::path(path).parent_path() / "tokenizer_config.json";
  std::error_code ec;
  Json cfg = Json::object();
  if (std::filesystem::exists(config_path, ec)) {
    ASSIGN_OR_RETURN(cfg, ParseJsonFile(config_path.string()));
    if (!cfg.is_object()) {
      return absl::InvalidArgumentError(config_path.string() + ": expected a JSON object");
    }
  }
  absl::flat_hash_map<int32_t, Special> named;
  RETURN_IF_ERROR(ParseAddedTokensDecoder(cfg, config_path.string(), num_ranks, &named));

  // Kimi reserves ids n..n+255 for special tokens; an added token beyond them extends the range
  // (reserved names fill the gaps).
  int32_t end = num_ranks + kNumReservedSpecialTokens;
  for (const auto& [id, s] : named) end = std::max(end, id + 1);
  std::vector<std::pair<std::string, int32_t>> contents;
  std::vector<std::string> specials;
  contents.reserve(end - num_ranks);
  for (int32_t id = num_ranks; id < end; ++id) {
    auto it = named.find(id);
    if (it == named.end()) {
      contents.emplace_back(absl::StrCat("<|reserved_token_", id, "|>"), id);
      specials.push_back(contents.back().first);
    } else {
      contents.emplace_back(it->second.content, id);
      if (it->second.special) specials.push_back(it->second.content);
    }
  }

  std::unique_ptr<Tokenizer> tok(new Tokenizer());
  tok->model_ = BpeModel::FromTiktokenRanks(ranks);
  ASSIGN_OR_RETURN(tok->pre_tokenizer_, PreTokenizer::FromPcre2(KimiPcre2Pattern()));
  // tiktoken's encode(allowed_special="all") finds special tokens leftmost-first; no Kimi token
  // is a prefix of another (they end in "]" or "|>"), so leftmost-longest is the same.
  std::vector<std::pair<std::string_view, int32_t>> raw;
  for (const auto& [content, id] : contents) {
    if (tok->added_ids_.contains(AsAbsl(content))) {
      return absl::InvalidArgumentError(absl::StrCat(
          config_path.string(), ": added token \"", content, "\" collides with a reserved name"));
    }
    tok->added_ids_[content] = id;
    raw.emplace_back(content, id);
  }
  tok->raw_added_ = std::make_unique<AddedTokenMatcher>(raw);
  tok->normalized_added_ =
      std::make_unique<AddedTokenMatcher>(std::vector<std::pair<std::string_view, int32_t>>{});
  tok->BuildDecodeTables(contents, specials);
  tok->kimi_chunks_ = true;  // as tokenization_kimi.py's encode(), see kimi_pattern.h
  tok->add_bos_ = false;     // its encode() adds no special tokens

  for (auto [key, slot] : {std::pair{"bos_token", &tok->bos_id_}, {"eos_token", &tok->eos_id_}}) {
    ASSIGN_OR_RETURN(std::optional<std::string> content,
                     ConfigToken(cfg, key, config_path.string()));
    if (!content.has_value()) continue;
    std::optional<int32_t> id = tok->TokenId(*content);
    if (!id.has_value()) {
      return absl::InvalidArgumentError(absl::StrCat(config_path.string(), ": ", key, ": \"",
                                                     *content, "\" is not a token"));
    }
    *slot = id;
  }
  return tok;
}

bool IsTiktokenFileName(std::string_view path) {
  const std::string name = std::filesystem::path(path).filename().string();
  return name == "tiktoken.model" || absl::EndsWith(name, ".tiktoken");
}

absl::StatusOr<std::unique_ptr<Tokenizer>> LoadTiktoken(const std::string& path) {
  return TiktokenLoader::Load(path);
}

std::optional<std::string> Tokenizer::FindInDirectory(const std::string& dir) {
  for (const char* name : {"tokenizer.json", "tiktoken.model"}) {
    const std::filesystem::path p = std::filesystem::path(dir) / name;
    std::error_code ec;
    if (std::filesystem::is_regular_file(p, ec)) return p.string();
  }
  return std::nullopt;
}

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromDirectory(const std::string& dir) {
  std::optional<std::string> file = FindInDirectory(dir);
  if (!file.has_value()) {
    return absl::NotFoundError(
        absl::StrCat(dir, ": no tokenizer (neither tokenizer.json nor tiktoken.model)"));
  }
  return FromFile(*file);
}

}  // namespace dsinfer
