// SHA-256 through OpenSSL's libcrypto (EVP one-shot digest).
#include "src/config/sha256.h"

#include <openssl/evp.h>

#include "src/core/status_macros.h"

namespace dsinfer {

std::string Sha256Hex(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  const int ok = EVP_Digest(data.data(), data.size(), digest, &len, EVP_sha256(), nullptr);
  DSINFER_CHECK(ok == 1 && len == 32);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(2 * len, '\0');
  for (unsigned int i = 0; i < len; ++i) {
    out[2 * i] = kHex[digest[i] >> 4];
    out[2 * i + 1] = kHex[digest[i] & 0xf];
  }
  return out;
}

}  // namespace dsinfer
