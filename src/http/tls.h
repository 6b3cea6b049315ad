// TLS for the HTTP listeners (Boost.Asio SSL over OpenSSL): the server context built from PEM
// text, and the verified client certificate's identities, read as gRPC reads them (common name
// and subject alternative names), so that a certificate names the same tenant on every listener.
#pragma once

#include <boost/asio/ssl/context.hpp>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "src/http/http_server.h"

typedef struct ssl_st SSL;

namespace dsinfer::http_internal {

// TLS 1.2 and up, no renegotiation, the certificate chain and key of `tls`; with a client CA,
// client certificates are verified against it (and required when tls.client_certs is
// kRequired), as gRPC's SslServerCredentials do. INVALID_ARGUMENT names what OpenSSL refused.
absl::StatusOr<std::shared_ptr<boost::asio::ssl::context>> MakeServerTlsContext(
    const HttpTlsOptions& tls);

// The identities of the client certificate `ssl` verified: the subject's first common name,
// then every DNS, e-mail, URI and IP subject alternative name (gRPC's x509_common_name and
// x509_subject_alternative_name). Empty without a certificate or when verification failed.
std::vector<std::string> VerifiedPeerIdentities(SSL* ssl);

}  // namespace dsinfer::http_internal
