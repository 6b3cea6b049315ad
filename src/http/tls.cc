// Server TLS context and client certificate identities. The verification itself is OpenSSL's
// (the same library gRPC links on Debian), with the settings gRPC uses: verify the peer against
// the configured client CA, fail when no certificate is sent only if one is required.
#include "src/http/tls.h"

#include <arpa/inet.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "absl/strings/str_cat.h"

namespace dsinfer::http_internal {
namespace {

namespace ssl = boost::asio::ssl;

// OpenSSL's reason for the last failure, for messages (never file contents).
std::string OpenSslReason(const boost::system::error_code& ec) {
  std::string r = ec.message();
  ERR_clear_error();
  return r;
}

// Every certificate of `pem` as a client CA: trusted for verification, and named in the
// CertificateRequest so that clients with several certificates pick the right one.
absl::Status AddClientCas(SSL_CTX* ctx, const std::string& pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  if (bio == nullptr) return absl::ResourceExhaustedError("TLS: out of memory");
  X509_STORE* store = SSL_CTX_get_cert_store(ctx);
  // As gRPC's ssl_ctx_load_verification_certs: every configured CA is a trust anchor (an
  // intermediate alone suffices), and trusted certificates are preferred while building chains.
  X509_STORE_set_flags(store, X509_V_FLAG_PARTIAL_CHAIN | X509_V_FLAG_TRUSTED_FIRST);
  int added = 0;
  while (X509* x = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr)) {
    const bool ok = X509_STORE_add_cert(store, x) == 1 && SSL_CTX_add_client_CA(ctx, x) == 1;
    X509_free(x);
    if (!ok) {
      // A CA listed twice is harmless; anything else is not.
      const unsigned long e = ERR_peek_last_error();
      if (ERR_GET_REASON(e) != X509_R_CERT_ALREADY_IN_HASH_TABLE) {
        BIO_free(bio);
        const std::string why = ERR_reason_error_string(e) ? ERR_reason_error_string(e) : "?";
        ERR_clear_error();
        return absl::InvalidArgumentError(
            absl::StrCat("TLS client CA certificate rejected by OpenSSL: ", why));
      }
    }
    ++added;
  }
  BIO_free(bio);
  ERR_clear_error();  // the end of the PEM text reads as an error
  if (added == 0) return absl::InvalidArgumentError("TLS client CA: no PEM certificate");
  return absl::OkStatus();
}

std::string Utf8(const ASN1_STRING* s) {
  unsigned char* out = nullptr;
  const int n = ASN1_STRING_to_UTF8(&out, s);
  if (n < 0) {
    ERR_clear_error();
    return "";
  }
  std::string r(reinterpret_cast<char*>(out), static_cast<size_t>(n));
  OPENSSL_free(out);
  return r;
}

}  // namespace

absl::StatusOr<std::shared_ptr<ssl::context>> MakeServerTlsContext(const HttpTlsOptions& tls) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  SSL_CTX* native = ctx->native_handle();
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                   ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
  SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
  // Client-initiated renegotiation costs the server a handshake per request: refused.
  SSL_CTX_set_options(native, SSL_OP_NO_RENEGOTIATION);
  boost::system::error_code ec;
  ctx->use_certificate_chain(boost::asio::buffer(tls.cert_chain_pem), ec);
  if (ec) {
    return absl::InvalidArgumentError(
        absl::StrCat("TLS certificate chain rejected by OpenSSL: ", OpenSslReason(ec)));
  }
  ctx->use_private_key(boost::asio::buffer(tls.private_key_pem), ssl::context::pem, ec);
  if (ec) {
    return absl::InvalidArgumentError(
        absl::StrCat("TLS private key rejected by OpenSSL: ", OpenSslReason(ec)));
  }
  if (SSL_CTX_check_private_key(native) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError("TLS private key does not match the certificate");
  }
  if (!tls.client_ca_pem.empty()) {
    if (absl::Status st = AddClientCas(native, tls.client_ca_pem); !st.ok()) return st;
    ssl::verify_mode mode = ssl::verify_peer;
    if (tls.client_certs == HttpTlsOptions::ClientCerts::kRequired) {
      mode |= ssl::verify_fail_if_no_peer_cert;
    }
    ctx->set_verify_mode(mode);
    // Resumed sessions keep the verified certificate; OpenSSL refuses to resume without this
    // when peers are verified.
    static constexpr unsigned char kSessionContext[] = "dsinfer-http";
    SSL_CTX_set_session_id_context(native, kSessionContext, sizeof(kSessionContext) - 1);
  } else {
    ctx->set_verify_mode(ssl::verify_none);
  }
  return ctx;
}

std::vector<std::string> VerifiedPeerIdentities(SSL* ssl) {
  std::vector<std::string> ids;
  if (ssl == nullptr || (SSL_get_verify_mode(ssl) & SSL_VERIFY_PEER) == 0) return ids;
  X509* cert = SSL_get_peer_certificate(ssl);  // counted reference
  if (cert == nullptr) return ids;
  if (SSL_get_verify_result(ssl) != X509_V_OK) {
    X509_free(cert);
    return ids;
  }
  if (X509_NAME* subject = X509_get_subject_name(cert)) {
    const int i = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
    if (i >= 0) {
      std::string cn = Utf8(X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, i)));
      if (!cn.empty()) ids.push_back(std::move(cn));
    }
  }
  auto* names =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (names != nullptr) {
    for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
      const GENERAL_NAME* n = sk_GENERAL_NAME_value(names, i);
      std::string v;
      if (n->type == GEN_DNS) {
        v = Utf8(n->d.dNSName);
      } else if (n->type == GEN_EMAIL) {
        v = Utf8(n->d.rfc822Name);
      } else if (n->type == GEN_URI) {
        v = Utf8(n->d.uniformResourceIdentifier);
      } else if (n->type == GEN_IPADD) {
        const ASN1_OCTET_STRING* ip = n->d.iPAddress;
        char text[INET6_ADDRSTRLEN] = {};
        const int family = ip->length == 4 ? AF_INET : ip->length == 16 ? AF_INET6 : -1;
        if (family != -1 && inet_ntop(family, ip->data, text, sizeof(text)) != nullptr) v = text;
      }
      if (!v.empty()) ids.push_back(std::move(v));
    }
    GENERAL_NAMES_free(names);
  }
  X509_free(cert);
  ERR_clear_error();
  return ids;
}

}  // namespace dsinfer::http_internal
