#include "src/tokenizer/nfc.h"

#include <unicode/normalizer2.h>
#include <unicode/unistr.h>

#include "src/tokenizer/utf8.h"

namespace dsinfer {
namespace {

const icu::Normalizer2* Nfc() {
  static const icu::Normalizer2* nfc = [] {
    UErrorCode status = U_ZERO_ERROR;
    const icu::Normalizer2* n = icu::Normalizer2::getNFCInstance(status);
    return U_SUCCESS(status) ? n : nullptr;
  }();
  return nfc;
}

// NFC of well-formed UTF-8.
void AppendNfc(std::string_view wellformed, std::string* out) {
  if (wellformed.empty()) return;
  const icu::Normalizer2* nfc = Nfc();
  bool ascii = true;
  for (char c : wellformed) ascii &= static_cast<unsigned char>(c) < 0x80;
  if (ascii || nfc == nullptr) {  // ASCII is always NFC
    out->append(wellformed);
    return;
  }
  const icu::UnicodeString u =
      icu::UnicodeString::fromUTF8(icu::StringPiece(wellformed.data(), wellformed.size()));
  UErrorCode status = U_ZERO_ERROR;
  if (nfc->isNormalized(u, status) && U_SUCCESS(status)) {
    out->append(wellformed);
    return;
  }
  status = U_ZERO_ERROR;
  const icu::UnicodeString n = nfc->normalize(u, status);
  if (U_FAILURE(status)) {
    out->append(wellformed);
    return;
  }
  n.toUTF8String(*out);
}

}  // namespace

std::string ToNfc(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  size_t start = 0, pos = 0;
  while (pos < text.size()) {
    const size_t len = utf8::CharLength(text, pos);
    if (len == 1 && static_cast<unsigned char>(text[pos]) >= 0x80) {
      // An ill-formed byte: normalise what precedes it, keep it as it is.
      AppendNfc(text.substr(start, pos - start), &out);
      out.push_back(text[pos]);
      start = pos + 1;
    }
    pos += len;
  }
  AppendNfc(text.substr(start), &out);
  return out;
}

}  // namespace dsinfer
