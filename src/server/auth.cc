#include "src/server/auth.h"

#include <grpcpp/security/auth_context.h>
#include <grpcpp/server_context.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "src/config/sha256.h"

namespace dsinfer {

CallCredentials CredentialsOf(const grpc::ServerContextBase& context) {
  CallCredentials c;
  const auto& md = context.client_metadata();
  auto [begin, end] = md.equal_range("authorization");
  for (auto it = begin; it != end; ++it)
    c.authorization.emplace_back(it->second.data(), it->second.size());
  std::shared_ptr<const grpc::AuthContext> auth = context.auth_context();
  // Only a certificate the TLS layer verified against client_ca_file counts.
  if (auth != nullptr && auth->IsPeerAuthenticated()) {
    for (const char* property : {"x509_common_name", "x509_subject_alternative_name"}) {
      for (const grpc::string_ref& v : auth->FindPropertyValues(property)) {
        c.cert_identities.emplace_back(v.data(), v.size());
      }
    }
  }
  return c;
}

TenantAuthenticator::TenantAuthenticator(const ServerConfig& config) : tenants_(config.tenants) {
  for (int i = 0; i < static_cast<int>(tenants_.size()); ++i) {
    for (const std::string& h : tenants_[i].api_key_sha256)
      by_key_sha256_[absl::AsciiStrToLower(h)] = i;
    for (const std::string& id : tenants_[i].client_cert_identities) by_identity_[id] = i;
    if (config.allow_unauthenticated && tenants_[i].id == config.default_tenant)
      default_tenant_ = i;
  }
}

absl::StatusOr<const TenantConfig*> TenantAuthenticator::Authenticate(
    const CallCredentials& credentials) const {
  std::optional<int> by_key;
  if (credentials.authorization.size() > 1) {
    return absl::UnauthenticatedError("more than one authorization header");
  }
  if (credentials.authorization.size() == 1) {
    absl::string_view v = absl::StripAsciiWhitespace(credentials.authorization[0]);
    constexpr absl::string_view kScheme = "bearer ";
    if (v.size() <= kScheme.size() || !absl::StartsWithIgnoreCase(v, kScheme)) {
      return absl::UnauthenticatedError("authorization: expected \"Bearer <api key>\"");
    }
    absl::string_view key = absl::StripLeadingAsciiWhitespace(v.substr(kScheme.size()));
    if (key.empty()) return absl::UnauthenticatedError("authorization: empty API key");
    auto it = by_key_sha256_.find(Sha256Hex(std::string_view(key.data(), key.size())));
    if (it == by_key_sha256_.end()) return absl::UnauthenticatedError("unknown API key");
    by_key = it->second;
  }
  std::optional<int> by_cert;
  if (!credentials.cert_identities.empty()) {
    for (const std::string& id : credentials.cert_identities) {
      auto it = by_identity_.find(id);
      if (it == by_identity_.end()) continue;
      if (by_cert && *by_cert != it->second) {
        return absl::PermissionDeniedError(
            "the client certificate names more than one tenant; issue one per tenant");
      }
      by_cert = it->second;
    }
    // A verified certificate that maps to no tenant is fine when an API key names the tenant
    // (a shared TLS client identity); alone it identifies nobody.
    if (!by_cert && !by_key) {
      return absl::UnauthenticatedError("client certificate identity is not a known tenant");
    }
  }
  if (by_key && by_cert && *by_key != *by_cert) {
    return absl::PermissionDeniedError(
        "the API key and the client certificate belong to different tenants");
  }
  if (by_key) return &tenants_[*by_key];
  if (by_cert) return &tenants_[*by_cert];
  if (default_tenant_) return &tenants_[*default_tenant_];
  return absl::UnauthenticatedError(
      "missing credentials: send \"authorization: Bearer <api key>\" metadata or a client "
      "certificate");
}

}  // namespace dsinfer
