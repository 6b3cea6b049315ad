#include "src/server/tls_files.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <fstream>
#include <memory>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "src/core/status_macros.h"

namespace dsinfer {
namespace {

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct KeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};

absl::StatusOr<std::string> ReadFile(const std::string& key, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(key, ": cannot read ", path));
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::unique_ptr<BIO, BioFree> Bio(const std::string& pem) {
  return std::unique_ptr<BIO, BioFree>(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

// The first certificate of a PEM text, or null.
std::unique_ptr<X509, X509Free> FirstCertificate(const std::string& pem) {
  auto bio = Bio(pem);
  X509* x = bio ? PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr) : nullptr;
  ERR_clear_error();
  return std::unique_ptr<X509, X509Free>(x);
}

}  // namespace

absl::StatusOr<TlsMaterial> LoadTlsFiles(const TlsConfig& tls) {
  TlsMaterial m;
  ASSIGN_OR_RETURN(m.cert_chain, ReadFile("tls.cert_file", tls.cert_file));
  ASSIGN_OR_RETURN(m.private_key, ReadFile("tls.key_file", tls.key_file));
  auto cert = FirstCertificate(m.cert_chain);
  if (cert == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("tls.cert_file: ", tls.cert_file, " holds no PEM certificate"));
  }
  auto bio = Bio(m.private_key);
  std::unique_ptr<EVP_PKEY, KeyFree> key(
      bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  ERR_clear_error();
  if (key == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tls.key_file: ", tls.key_file, " holds no PEM private key (or an encrypted one)"));
  }
  const bool match = X509_check_private_key(cert.get(), key.get()) == 1;
  ERR_clear_error();
  if (!match) {
    return absl::InvalidArgumentError(absl::StrCat("tls.key_file: ", tls.key_file,
                                                   " does not match the certificate in "
                                                   "tls.cert_file (",
                                                   tls.cert_file, ")"));
  }
  if (!tls.client_ca_file.empty()) {
    ASSIGN_OR_RETURN(m.client_ca, ReadFile("tls.client_ca_file", tls.client_ca_file));
    if (FirstCertificate(m.client_ca) == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("tls.client_ca_file: ", tls.client_ca_file, " holds no PEM certificate"));
    }
  }
  return m;
}

}  // namespace dsinfer
