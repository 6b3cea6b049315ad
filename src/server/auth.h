// Who is calling: the tenant named by the call's credentials, an API key (`authorization: Bearer
// <key>`, matched by its SHA-256) or the verified mTLS client certificate (common name or SAN).
// A request's tenant never comes from a field the client fills in. Messages never echo keys.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "src/config/server_config.h"

namespace grpc {
class ServerContextBase;
}

namespace dsinfer {

struct CallCredentials {
  std::vector<std::string> authorization;    // every `authorization` metadata value sent
  std::vector<std::string> cert_identities;  // verified client certificate CN and SANs
};

// Reads the credentials of a call: its metadata and its TLS auth context.
CallCredentials CredentialsOf(const grpc::ServerContextBase& context);

class TenantAuthenticator {
 public:
  explicit TenantAuthenticator(const ServerConfig& config);

  // The caller's tenant. UNAUTHENTICATED: no credentials (and allow_unauthenticated is off), a
  // malformed header, an unknown key or certificate identity. PERMISSION_DENIED: the key and
  // the certificate belong to different tenants.
  absl::StatusOr<const TenantConfig*> Authenticate(const CallCredentials& credentials) const;

  const std::vector<TenantConfig>& tenants() const { return tenants_; }

 private:
  std::vector<TenantConfig> tenants_;
  absl::flat_hash_map<std::string, int> by_key_sha256_;  // -> index into tenants_
  absl::flat_hash_map<std::string, int> by_identity_;
  std::optional<int> default_tenant_;  // set when allow_unauthenticated
};

}  // namespace dsinfer
