// An event-driven HTTP/1.1 server (Boost.Beast over Asio): one io_context run by a few threads,
// every socket operation asynchronous, no thread per connection. A connection is a small state
// machine on its own strand (read header -> read body -> handler -> write -> idle -> ...); every
// phase that waits on the client has a deadline, so slow or silent clients cost a socket and a
// few KiB, never a thread, and cannot delay other connections (/healthz stays fast).
//
// Handlers run on the connection's strand and must not block. A handler answers at once
// (Respond) or later from any thread, or streams (StartStream / Send / EndStream: chunked
// transfer, one write in flight, data sent meanwhile is merged into the next write). Invariants:
// src/http/README.md.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "src/config/server_config.h"

namespace dsinfer {

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string path;    // the target without "?query"
  std::string query;
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-case, in order
  std::string body;
  std::string remote_address;  // the peer's IP address
  bool tls = false;             // arrived over TLS
  // The verified client certificate's identities (common name, then subject alternative names),
  // as gRPC reports them; empty without mTLS or without a certificate.
  std::vector<std::string> peer_identities;
  // The first value of header `name` (lower-case), if present.
  std::optional<std::string_view> Header(std::string_view name) const;
  // Every value of header `name` (lower-case).
  std::vector<std::string> Headers(std::string_view name) const;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers
};

// TLS for a listener (PEM text, read and checked by the caller: src/server/tls_files.h).
struct HttpTlsOptions {
  enum class ClientCerts {
    kNone,      // no client certificate is asked for
    kOptional,  // asked for; verified against client_ca_pem when sent (API keys still work)
    kRequired,  // asked for and required: the handshake fails without a verified certificate
  };
  std::string cert_chain_pem;
  std::string private_key_pem;
  std::string client_ca_pem;  // needed unless client_certs is kNone
  ClientCerts client_certs = ClientCerts::kNone;
};

namespace http_internal {
class Connection;
}

// One request and its response. Thread-safe: every method may be called from any thread (work
// is posted onto the connection's strand). Exactly one of Respond or StartStream..EndStream is
// honoured; calls after the response ended, or after the client went away, are dropped.
class HttpExchange {
 public:
  HttpExchange(std::shared_ptr<http_internal::Connection> connection, uint64_t generation,
               HttpRequest request);
  ~HttpExchange();  // an exchange dropped without a response answers 500
  HttpExchange(const HttpExchange&) = delete;
  HttpExchange& operator=(const HttpExchange&) = delete;

  const HttpRequest& request() const { return request_; }

  void Respond(HttpResponse response);
  // Sends the status line and headers with chunked transfer encoding.
  void StartStream(int status, std::string content_type,
                   std::vector<std::pair<std::string, std::string>> headers = {});
  void Send(std::string data);  // one chunk (merged with others while a write is in flight)
  void EndStream();             // the last chunk; the connection may then serve the next request
  // `callback` runs once (on the connection's strand) if the client disconnects, or the
  // connection is cut (timeout, server stop), before the response ended. Registered after that
  // happened, it runs at once. It must not block (cancel the work, nothing more).
  void OnClientGone(std::function<void()> callback);
  bool client_gone() const { return gone_.load(std::memory_order_acquire); }

 private:
  friend class http_internal::Connection;
  std::shared_ptr<http_internal::Connection> connection_;
  const uint64_t generation_;
  HttpRequest request_;
  std::atomic<bool> gone_{false};
  std::atomic<bool> answered_{false};  // Respond or StartStream was called
};

using HttpHandler = std::function<void(std::shared_ptr<HttpExchange>)>;

// How the server words its own errors (404, 405, 413, 431, 500); the default is plain text.
using HttpErrorFormatter = std::function<HttpResponse(int status, std::string_view message)>;

class HttpServer {
 public:
  // `name` appears in error messages ("metrics HTTP server").
  HttpServer(std::string name, HttpConfig limits);
  ~HttpServer();  // Stop()s
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Before Start: routes are exact paths; a path known with another method answers 405.
  void Route(std::string method, std::string path, HttpHandler handler);
  void SetErrorFormatter(HttpErrorFormatter formatter);
  // Before Start: serve HTTPS only. The handshake counts toward the connection caps and must
  // finish, with the first request's header, within http.header_timeout_seconds of the accept.
  // A plain HTTP request gets an unencrypted 400 and the connection closes. INVALID_ARGUMENT when
  // OpenSSL refuses the material; FAILED_PRECONDITION when already started.
  absl::Status EnableTls(const HttpTlsOptions& tls);

  // Binds `listen` ("host:port", "[v6]:port"; port 0 picks a free one) without SO_REUSEPORT and
  // starts the event-loop threads. INVALID_ARGUMENT for a malformed address, UNAVAILABLE when
  // binding fails, FAILED_PRECONDITION when already started.
  absl::Status Start(std::string_view listen);
  int port() const { return port_; }
  // Stops accepting, closes every connection (their OnClientGone callbacks run) and joins the
  // threads. Idempotent.
  void Stop();

  // Open connections now (for tests and the overload log).
  int connections() const;

  struct Core;

 private:
  std::shared_ptr<Core> core_;
  int port_ = 0;
  bool started_ = false;
};

// "host:port" or "[v6]:port" -> host without brackets, port. False when malformed.
bool SplitHostPort(std::string_view listen, std::string* host, int* port);

}  // namespace dsinfer
