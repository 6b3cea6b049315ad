// DeepSeek-V3 style byte-level BPE tokenizer, loaded from a HF tokenizer.json and producing the
// same ids as HF `tokenizers` (encode with add_special_tokens=False, decode). No Python needed.
// All const methods are thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace dsinfer {

class AddedTokenMatcher;
class BpeModel;
class PreTokenizer;

class Tokenizer {
 public:
  // Loads tokenizer.json; also reads tokenizer_config.json in the same directory if present
  // (bos/eos tokens). Any malformed or unsupported part gives a Status naming what is wrong.
  // `path` may also be a tiktoken rank file named tiktoken.model or *.tiktoken (Kimi-K2; read
  // with tokenizer_config.json beside it, see tokenizer_tiktoken.cc), or a model directory
  // (FromDirectory).
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromFile(
      const std::string& tokenizer_json_path);
  // The tokenizer of a model directory: tokenizer.json when present, else tiktoken.model.
  // NotFound naming both files when the directory has neither.
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromDirectory(const std::string& dir);
  // The file FromDirectory would load, or nullopt when there is none (a model may be served
  // without a tokenizer, on token ids only).
  static std::optional<std::string> FindInDirectory(const std::string& dir);
  ~Tokenizer();
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  // = HF encode(text, add_special_tokens=False).ids: added tokens written in the text are
  // recognised. `text` may hold any bytes; see README.md for ill-formed UTF-8.
  std::vector<int32_t> Encode(std::string_view text) const;
  // Untrusted text: never recognises added/special tokens; everything goes through BPE.
  std::vector<int32_t> EncodePlain(std::string_view text) const;
  // = HF decode(ids, skip_special_tokens=skip_special); an unknown id is InvalidArgument.
  absl::StatusOr<std::string> Decode(absl::Span<const int32_t> ids,
                                     bool skip_special = false) const;

  int32_t vocab_size() const { return vocab_size_; }  // max id + 1 (vocab and added tokens)
  std::optional<int32_t> bos_id() const { return bos_id_; }
  std::optional<int32_t> eos_id() const { return eos_id_; }
  // The id HF's encode(add_special_tokens=True) puts before a plain-text prompt: bos_id() when
  // tokenizer_config.json's add_bos_token is true or absent (tokenizer.json tokenizers, as
  // DeepSeek's); none for tiktoken.model tokenizers (Kimi-K2's encode adds nothing).
  std::optional<int32_t> prompt_bos_id() const {
    return add_bos_ ? bos_id_ : std::optional<int32_t>();
  }
  // Id of an added token's content, else of a vocabulary string (byte-level alphabet, e.g.
  // "Ġthe"); nullopt when neither exists.
  std::optional<int32_t> TokenId(std::string_view token) const;
  // True for added tokens marked special (what Decode(skip_special=true) drops).
  bool IsSpecial(int32_t id) const;

 private:
  friend class StreamDetokenizer;
  friend class TokenizerLoader;
  friend class TiktokenLoader;

  Tokenizer();
  // Bytes `id` decodes to, or nullopt for an unknown id.
  std::optional<std::string_view> TokenBytes(int32_t id) const;
  void EncodeText(std::string_view text, std::vector<int32_t>* ids) const;
  // Encode's added-token passes and BPE on one slice of text.
  void EncodeWithAdded(std::string_view text, std::vector<int32_t>* ids) const;
  // Builds the per-id decode tables once the vocabulary and added tokens are known.
  void BuildDecodeTables(const std::vector<std::pair<std::string, int32_t>>& added,
                         const std::vector<std::string>& special_contents);

  std::unique_ptr<BpeModel> model_;
  std::unique_ptr<PreTokenizer> pre_tokenizer_;
  // Added tokens are found in two passes, as in HF: first those with normalized=false, then
  // (in the remaining text) those with normalized=true. The normalizer is the identity here.
  std::unique_ptr<AddedTokenMatcher> raw_added_;
  std::unique_ptr<AddedTokenMatcher> normalized_added_;
  absl::flat_hash_map<std::string, int32_t> added_ids_;  // content -> id

  // Kimi (tiktoken.model): text is first cut as tokenization_kimi.py does (ForEachKimiChunk).
  bool kimi_chunks_ = false;
  bool nfc_ = false;  // tokenizer.json normalizer NFC (Qwen2): applied outside raw added tokens

  int32_t vocab_size_ = 0;
  std::optional<int32_t> bos_id_;
  std::optional<int32_t> eos_id_;
  bool add_bos_ = true;
  // Per id: decoded bytes token_bytes_[token_offsets_[id], token_offsets_[id + 1]).
  std::string token_bytes_;
  std::vector<uint32_t> token_offsets_;
  std::vector<uint8_t> token_flags_;  // kKnown | kSpecial
  static constexpr uint8_t kKnown = 1;
  static constexpr uint8_t kSpecial = 2;
};

}  // namespace dsinfer
