#include "src/tokenizer/tokenizer.h"

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "src/tokenizer/absl_compat.h"
#include "src/tokenizer/added_token_matcher.h"
#include "src/tokenizer/bpe_model.h"
#include "src/tokenizer/byte_level.h"
#include "src/tokenizer/kimi_pattern.h"
#include "src/tokenizer/nfc.h"
#include "src/tokenizer/pre_tokenizer.h"
#include "src/tokenizer/utf8.h"

namespace dsinfer {

Tokenizer::Tokenizer() = default;
Tokenizer::~Tokenizer() = default;

void Tokenizer::EncodeText(std::string_view text, std::vector<int32_t>* ids) const {
  pre_tokenizer_->Split(text, [&](std::string_view word) { model_->Encode(word, ids); });
}

void Tokenizer::EncodeWithAdded(std::string_view text, std::vector<int32_t>* ids) const {
  std::string normalized;
  auto normalized_pass = [&](std::string_view segment, int32_t id) {
    if (id < 0 && nfc_) {
      // HF: the normalizer runs on the text between non-normalized added tokens.
      normalized = ToNfc(segment);
      segment = normalized;
    }
    if (id >= 0) {
      ids->push_back(id);
    } else if (normalized_added_->empty()) {
      EncodeText(segment, ids);
    } else {
      normalized_added_->Split(segment, [&](std::string_view s, int32_t id2) {
        if (id2 >= 0) {
          ids->push_back(id2);
        } else {
          EncodeText(s, ids);
        }
      });
    }
  };
  raw_added_->Split(text, normalized_pass);
}

std::vector<int32_t> Tokenizer::Encode(std::string_view text) const {
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  if (kimi_chunks_) {
    ForEachKimiChunk(text, [&](std::string_view chunk) { EncodeWithAdded(chunk, &ids); });
  } else {
    EncodeWithAdded(text, &ids);
  }
  return ids;
}

std::vector<int32_t> Tokenizer::EncodePlain(std::string_view text) const {
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  if (kimi_chunks_) {
    ForEachKimiChunk(text, [&](std::string_view chunk) { EncodeText(chunk, &ids); });
  } else {
    EncodeText(nfc_ ? std::string_view(ToNfc(text)) : text, &ids);
  }
  return ids;
}

std::optional<std::string_view> Tokenizer::TokenBytes(int32_t id) const {
  if (id < 0 || id >= vocab_size_ || !(token_flags_[id] & kKnown)) return std::nullopt;
  return std::string_view(token_bytes_)
      .substr(token_offsets_[id], token_offsets_[id + 1] - token_offsets_[id]);
}

absl::StatusOr<std::string> Tokenizer::Decode(absl::Span<const int32_t> ids,
                                              bool skip_special) const {
  std::string bytes;
  for (size_t i = 0; i < ids.size(); ++i) {
    const int32_t id = ids[i];
    std::optional<std::string_view> b = TokenBytes(id);
    if (!b.has_value()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "Decode: unknown token id ", id, " at position ", i, " (vocab size ", vocab_size_, ")"));
    }
    if (skip_special && (token_flags_[id] & kSpecial)) continue;
    bytes.append(*b);
  }
  if (utf8::IsValid(bytes)) return bytes;
  std::string text;
  text.reserve(bytes.size() + 8);
  utf8::AppendLossy(bytes, &text);
  return text;
}

std::optional<int32_t> Tokenizer::TokenId(std::string_view token) const {
  auto it = added_ids_.find(AsAbsl(token));
  if (it != added_ids_.end()) return it->second;
  return model_->TokenId(token);
}

bool Tokenizer::IsSpecial(int32_t id) const {
  return id >= 0 && id < vocab_size_ && (token_flags_[id] & kSpecial);
}

void Tokenizer::BuildDecodeTables(const std::vector<std::pair<std::string, int32_t>>& added,
                                  const std::vector<std::string>& special_contents) {
  vocab_size_ = model_->max_id() + 1;
  for (const auto& [content, id] : added) vocab_size_ = std::max(vocab_size_, id + 1);
  // HF resolves an id to its added-token content first, then to the vocabulary string; "special"
  // is decided by that string being the content of a special added token.
  std::vector<const std::string*> strings(vocab_size_, nullptr);
  for (int32_t id = 0; id <= model_->max_id(); ++id) strings[id] = model_->TokenString(id);
  for (const auto& [content, id] : added) strings[id] = &content;
  const absl::flat_hash_set<std::string_view> specials(special_contents.begin(),
                                                       special_contents.end());
  token_offsets_.assign(vocab_size_ + 1, 0);
  token_flags_.assign(vocab_size_, 0);
  token_bytes_.clear();
  for (int32_t id = 0; id < vocab_size_; ++id) {
    token_offsets_[id] = static_cast<uint32_t>(token_bytes_.size());
    if (strings[id] == nullptr) continue;
    token_flags_[id] = kKnown | (specials.contains(*strings[id]) ? kSpecial : 0);
    byte_level::AppendDecodedToken(*strings[id], &token_bytes_);
  }
  token_offsets_[vocab_size_] = static_cast<uint32_t>(token_bytes_.size());
}

}  // namespace dsinfer
