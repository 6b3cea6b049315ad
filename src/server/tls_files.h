// The server's TLS files, read and checked before gRPC sees them, so that a wrong file is named
// (`tls.key_file: /etc/dsinfer/key.pem does not match the certificate in tls.cert_file`) instead
// of surfacing as "cannot listen". Never echoes file contents.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "src/config/server_config.h"

namespace dsinfer {

struct TlsMaterial {
  std::string cert_chain;   // PEM
  std::string private_key;  // PEM
  std::string client_ca;    // PEM; empty when no client CA is configured
};

// NOT_FOUND when a file cannot be read, INVALID_ARGUMENT when it holds no PEM certificate (or
// private key) or the key does not belong to the first certificate; each names its config key.
absl::StatusOr<TlsMaterial> LoadTlsFiles(const TlsConfig& tls);

}  // namespace dsinfer
