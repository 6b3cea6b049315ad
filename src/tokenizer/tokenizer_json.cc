// Tokenizer::FromFile: reads a HF tokenizer.json (and tokenizer_config.json beside it) and
// checks that every part is one this implementation reproduces exactly; anything else is refused
// with a Status naming the part.
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "src/core/mapped_file.h"
#include "src/core/status_macros.h"
#include "src/tokenizer/absl_compat.h"
#include "src/tokenizer/added_token_matcher.h"
#include "src/tokenizer/bpe_model.h"
#include "src/tokenizer/pre_tokenizer.h"
#include "src/tokenizer/tiktoken_model.h"
#include "src/tokenizer/tokenizer.h"
#include "src/tokenizer/tokenizer_files.h"

namespace dsinfer {
namespace {

using Json = nlohmann::json;

using tokenizer_files::kMaxTokenId;
using tokenizer_files::ParseJsonFile;

// Where errors point: "<file>: <json path>".
class Ctx {
 public:
  Ctx(std::string file, std::string path) : file_(std::move(file)), path_(std::move(path)) {}
  Ctx operator[](std::string_view key) const {
    return Ctx(file_, path_.empty() ? std::string(key) : absl::StrCat(path_, ".", AsAbsl(key)));
  }
  Ctx operator[](size_t index) const { return Ctx(file_, absl::StrCat(path_, "[", index, "]")); }
  absl::Status Invalid(std::string_view what) const {
    return absl::InvalidArgumentError(absl::StrCat(file_, ": ", path_, ": ", AsAbsl(what)));
  }
  absl::Status Unsupported(std::string_view what) const {
    return absl::UnimplementedError(absl::StrCat(file_, ": ", path_, ": ", AsAbsl(what)));
  }

 private:
  std::string file_;
  std::string path_;
};

// The member `key` of `obj`, or nullptr when absent or null.
const Json* Member(const Json& obj, std::string_view key) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

absl::StatusOr<std::string> GetString(const Json& obj, std::string_view key, const Ctx& ctx) {
  const Json* v = Member(obj, key);
  if (v == nullptr || !v->is_string()) return ctx[key].Invalid("expected a string");
  return v->get<std::string>();
}

absl::StatusOr<bool> GetBool(const Json& obj, std::string_view key, bool fallback, const Ctx& ctx) {
  const Json* v = Member(obj, key);
  if (v == nullptr) return fallback;
  if (!v->is_boolean()) return ctx[key].Invalid("expected true or false");
  return v->get<bool>();
}

absl::StatusOr<int32_t> GetId(const Json& v, const Ctx& ctx) {
  if (!v.is_number_integer()) return ctx.Invalid("expected an integer id");
  const int64_t id = v.get<int64_t>();
  if (id < 0 || id > kMaxTokenId) {
    return ctx.Invalid(absl::StrCat("id ", id, " is out of range [0, ", kMaxTokenId, "]"));
  }
  return static_cast<int32_t>(id);
}

absl::Status RequireFalse(const Json& obj, std::string_view key, const Ctx& ctx) {
  ASSIGN_OR_RETURN(bool v, GetBool(obj, key, false, ctx));
  if (v) return ctx[key].Unsupported("true is not supported");
  return absl::OkStatus();
}

// The identity (an empty Sequence) or NFC (Qwen2's), possibly inside Sequences: *nfc says which.
absl::Status CheckNormalizer(const Json* n, const Ctx& ctx, bool* nfc) {
  if (n == nullptr) return absl::OkStatus();
  ASSIGN_OR_RETURN(std::string type, GetString(*n, "type", ctx));
  if (type == "NFC") {
    *nfc = true;
    return absl::OkStatus();
  }
  if (type != "Sequence") {
    return ctx.Unsupported(absl::StrCat("normalizer type \"", type, "\" is not supported"));
  }
  const Json* list = Member(*n, "normalizers");
  if (list == nullptr || !list->is_array()) return ctx["normalizers"].Invalid("expected a list");
  for (size_t i = 0; i < list->size(); ++i) {
    RETURN_IF_ERROR(CheckNormalizer(&(*list)[i], ctx["normalizers"][i], nfc));
  }
  return absl::OkStatus();
}

// An Oniguruma pattern matching `literal` exactly.
std::string EscapeLiteral(std::string_view literal) {
  std::string out;
  for (char c : literal) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x80 && !absl::ascii_isalnum(u) && c != ' ' && c != '\n' && c != '\r' && c != '\t') {
      out.push_back('\\');
    }
    out.push_back(c);
  }
  return out;
}

// Collects the Split regexes of the pre-tokenizer, which must end with ByteLevel.
absl::Status CollectPreTokenizers(const Json& p, const Ctx& ctx, std::vector<std::string>* splits,
                                  bool* saw_byte_level) {
  ASSIGN_OR_RETURN(std::string type, GetString(p, "type", ctx));
  if (*saw_byte_level) return ctx.Unsupported("pre-tokenizers after ByteLevel are not supported");
  if (type == "Sequence") {
    const Json* list = Member(p, "pretokenizers");
    if (list == nullptr || !list->is_array()) {
      return ctx["pretokenizers"].Invalid("expected a list");
    }
    for (size_t i = 0; i < list->size(); ++i) {
      RETURN_IF_ERROR(
          CollectPreTokenizers((*list)[i], ctx["pretokenizers"][i], splits, saw_byte_level));
    }
    return absl::OkStatus();
  }
  if (type == "Split") {
    ASSIGN_OR_RETURN(std::string behavior, GetString(p, "behavior", ctx));
    if (behavior != "Isolated") {
      return ctx["behavior"].Unsupported(
          absl::StrCat("Split behavior \"", behavior, "\" is not supported (only Isolated)"));
    }
    RETURN_IF_ERROR(RequireFalse(p, "invert", ctx));
    const Json* pattern = Member(p, "pattern");
    if (pattern == nullptr || !pattern->is_object()) {
      return ctx["pattern"].Invalid("expected {\"Regex\": ...} or {\"String\": ...}");
    }
    if (const Json* re = Member(*pattern, "Regex"); re != nullptr && re->is_string()) {
      splits->push_back(re->get<std::string>());
    } else if (const Json* s = Member(*pattern, "String"); s != nullptr && s->is_string()) {
      splits->push_back(EscapeLiteral(s->get<std::string>()));
    } else {
      return ctx["pattern"].Invalid("expected {\"Regex\": ...} or {\"String\": ...}");
    }
    return absl::OkStatus();
  }
  if (type == "ByteLevel") {
    RETURN_IF_ERROR(RequireFalse(p, "add_prefix_space", ctx));
    RETURN_IF_ERROR(RequireFalse(p, "use_regex", ctx));
    *saw_byte_level = true;
    return absl::OkStatus();
  }
  return ctx.Unsupported(absl::StrCat("pre-tokenizer type \"", type, "\" is not supported"));
}

struct ModelParts {
  bool ignore_merges = false;  // Llama-3's: a piece that is a vocabulary token is emitted whole
  absl::flat_hash_map<std::string, int32_t> vocab;
  std::vector<std::pair<std::string, std::string>> merges;
};

absl::StatusOr<ModelParts> ParseModel(const Json* m, const Ctx& ctx) {
  if (m == nullptr || !m->is_object()) return ctx.Invalid("expected an object");
  ASSIGN_OR_RETURN(std::string type, GetString(*m, "type", ctx));
  if (type != "BPE") {
    return ctx["type"].Unsupported(
        absl::StrCat("model type \"", type, "\" is not supported (only BPE)"));
  }
  if (const Json* d = Member(*m, "dropout"); d != nullptr) {
    if (!d->is_number()) return ctx["dropout"].Invalid("expected a number or null");
    if (d->get<double>() != 0.0) return ctx["dropout"].Unsupported("BPE dropout is not supported");
  }
  if (Member(*m, "unk_token") != nullptr) {
    return ctx["unk_token"].Unsupported("an unknown token is not supported");
  }
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    const Json* v = Member(*m, key);
    if (v != nullptr && !(v->is_string() && v->get<std::string>().empty())) {
      return ctx[key].Unsupported("not supported");
    }
  }
  RETURN_IF_ERROR(RequireFalse(*m, "byte_fallback", ctx));
  ModelParts parts;
  ASSIGN_OR_RETURN(parts.ignore_merges, GetBool(*m, "ignore_merges", false, ctx));
  const Json* vocab = Member(*m, "vocab");
  if (vocab == nullptr || !vocab->is_object()) return ctx["vocab"].Invalid("expected an object");
  parts.vocab.reserve(vocab->size());
  for (auto it = vocab->begin(); it != vocab->end(); ++it) {
    ASSIGN_OR_RETURN(int32_t id, GetId(it.value(), ctx["vocab"][it.key()]));
    parts.vocab.emplace(it.key(), id);
  }
  const Json* merges = Member(*m, "merges");
  if (merges == nullptr || !merges->is_array()) return ctx["merges"].Invalid("expected a list");
  parts.merges.reserve(merges->size());
  for (size_t i = 0; i < merges->size(); ++i) {
    const Json& e = (*merges)[i];
    if (e.is_string()) {
      // Legacy form "left right": exactly one space.
      std::vector<std::string> sides = absl::StrSplit(e.get<std::string>(), ' ');
      if (sides.size() != 2) {
        return ctx["merges"][i].Invalid("expected \"left right\" (two tokens, one space)");
      }
      parts.merges.emplace_back(std::move(sides[0]), std::move(sides[1]));
    } else if (e.is_array() && e.size() == 2 && e[0].is_string() && e[1].is_string()) {
      parts.merges.emplace_back(e[0].get<std::string>(), e[1].get<std::string>());
    } else {
      return ctx["merges"][i].Invalid("expected \"left right\" or [\"left\", \"right\"]");
    }
  }
  return parts;
}

struct AddedToken {
  std::string content;
  int32_t id;
  bool special;
  bool normalized;
};

absl::StatusOr<std::vector<AddedToken>> ParseAddedTokens(const Json* list, const Ctx& ctx) {
  std::vector<AddedToken> out;
  if (list == nullptr) return out;
  if (!list->is_array()) return ctx.Invalid("expected a list");
  absl::flat_hash_set<std::string> seen;
  for (size_t i = 0; i < list->size(); ++i) {
    const Json& t = (*list)[i];
    const Ctx c = ctx[i];
    if (!t.is_object()) return c.Invalid("expected an object");
    AddedToken tok;
    const Json* id = Member(t, "id");
    if (id == nullptr) return c["id"].Invalid("missing");
    ASSIGN_OR_RETURN(tok.id, GetId(*id, c["id"]));
    ASSIGN_OR_RETURN(tok.content, GetString(t, "content", c));
    if (tok.content.empty()) return c["content"].Invalid("empty");
    ASSIGN_OR_RETURN(tok.special, GetBool(t, "special", false, c));
    ASSIGN_OR_RETURN(tok.normalized, GetBool(t, "normalized", !tok.special, c));
    for (const char* key : {"lstrip", "rstrip", "single_word"}) {
      RETURN_IF_ERROR(RequireFalse(t, key, c));
    }
    if (!seen.insert(tok.content).second) {
      return c["content"].Invalid(absl::StrCat("duplicate added token \"", tok.content, "\""));
    }
    out.push_back(std::move(tok));
  }
  return out;
}

// bos_token / eos_token of tokenizer_config.json: a string, {"content": ...}, or null.
absl::StatusOr<std::optional<std::string>> ConfigToken(const Json& cfg, std::string_view key,
                                                       const Ctx& ctx) {
  const Json* v = Member(cfg, key);
  if (v == nullptr) return std::nullopt;
  if (v->is_string()) return v->get<std::string>();
  if (v->is_object()) {
    ASSIGN_OR_RETURN(std::string content, GetString(*v, "content", ctx[key]));
    return content;
  }
  return ctx[key].Invalid("expected a string, an object with \"content\", or null");
}

}  // namespace

class TokenizerLoader {
 public:
  static absl::StatusOr<std::unique_ptr<Tokenizer>> Load(const std::string& path);
};

absl::StatusOr<std::unique_ptr<Tokenizer>> TokenizerLoader::Load(const std::string& path) {
  ASSIGN_OR_RETURN(Json root, ParseJsonFile(path));
  const Ctx ctx(path, "");
  if (!root.is_object()) return absl::InvalidArgumentError(path + ": expected a JSON object");
  for (const char* key : {"truncation", "padding"}) {
    if (Member(root, key) != nullptr) return ctx[key].Unsupported("must be null");
  }
  bool nfc = false;
  RETURN_IF_ERROR(CheckNormalizer(Member(root, "normalizer"), ctx["normalizer"], &nfc));

  const Json* pre = Member(root, "pre_tokenizer");
  if (pre == nullptr) {
    return ctx["pre_tokenizer"].Unsupported("a pre-tokenizer ending in ByteLevel is required");
  }
  std::vector<std::string> splits;
  bool saw_byte_level = false;
  RETURN_IF_ERROR(CollectPreTokenizers(*pre, ctx["pre_tokenizer"], &splits, &saw_byte_level));
  if (!saw_byte_level) {
    return ctx["pre_tokenizer"].Unsupported("a pre-tokenizer ending in ByteLevel is required");
  }

  const Json* decoder = Member(root, "decoder");
  if (decoder == nullptr) return ctx["decoder"].Unsupported("a ByteLevel decoder is required");
  ASSIGN_OR_RETURN(std::string decoder_type, GetString(*decoder, "type", ctx["decoder"]));
  if (decoder_type != "ByteLevel") {
    return ctx["decoder"].Unsupported(
        absl::StrCat("decoder type \"", decoder_type, "\" is not supported (only ByteLevel)"));
  }

  ASSIGN_OR_RETURN(ModelParts parts, ParseModel(Member(root, "model"), ctx["model"]));
  ASSIGN_OR_RETURN(std::vector<AddedToken> added,
                   ParseAddedTokens(Member(root, "added_tokens"), ctx["added_tokens"]));

  std::unique_ptr<Tokenizer> tok(new Tokenizer());
  {
    absl::StatusOr<std::unique_ptr<BpeModel>> model =
        BpeModel::Create(std::move(parts.vocab), parts.merges);
    if (!model.ok()) {
      return absl::Status(model.status().code(),
                          absl::StrCat(path, ": ", model.status().message()));
    }
    tok->model_ = std::move(model).value();
    if (parts.ignore_merges) tok->model_->IgnoreMerges();
  }
  tok->nfc_ = nfc;
  ASSIGN_OR_RETURN(tok->pre_tokenizer_, PreTokenizer::Create(splits));

  std::vector<std::pair<std::string_view, int32_t>> raw, normalized;
  std::vector<std::pair<std::string, int32_t>> contents;
  std::vector<std::string> specials;
  for (const AddedToken& t : added) {
    (t.normalized ? normalized : raw).emplace_back(t.content, t.id);
    contents.emplace_back(t.content, t.id);
    if (t.special) specials.push_back(t.content);
    tok->added_ids_[t.content] = t.id;
  }
  tok->raw_added_ = std::make_unique<AddedTokenMatcher>(raw);
  tok->normalized_added_ = std::make_unique<AddedTokenMatcher>(normalized);
  tok->BuildDecodeTables(contents, specials);

  // bos/eos from tokenizer_config.json beside tokenizer.json, when there is one.
  const std::filesystem::path config_path =
      std::filesystem::path(path).parent_path() / "tokenizer_config.json";
  std::error_code ec;
  if (std::filesystem::exists(config_path, ec)) {
    ASSIGN_OR_RETURN(Json cfg, ParseJsonFile(config_path.string()));
    const Ctx cctx(config_path.string(), "");
    if (!cfg.is_object()) return cctx.Invalid("expected a JSON object");
    for (auto [key, slot] : {std::pair{"bos_token", &tok->bos_id_}, {"eos_token", &tok->eos_id_}}) {
      ASSIGN_OR_RETURN(std::optional<std::string> content, ConfigToken(cfg, key, cctx));
      if (!content.has_value()) continue;
      std::optional<int32_t> id = tok->TokenId(*content);
      if (!id.has_value()) {
        return cctx[key].Invalid(absl::StrCat("\"", *content, "\" is not a token"));
      }
      *slot = id;
    }
    if (auto it = cfg.find("add_bos_token"); it != cfg.end() && !it->is_null()) {
      if (!it->is_boolean()) return cctx["add_bos_token"].Invalid("must be true or false");
      tok->add_bos_ = it->get<bool>();
    }
  }
  return tok;
}

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromFile(
    const std::string& tokenizer_json_path) {
  std::error_code ec;
  if (std::filesystem::is_directory(tokenizer_json_path, ec)) {
    return FromDirectory(tokenizer_json_path);
  }
  if (IsTiktokenFileName(tokenizer_json_path)) return LoadTiktoken(tokenizer_json_path);
  return TokenizerLoader::Load(tokenizer_json_path);
}

}  // namespace dsinfer
