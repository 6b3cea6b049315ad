// HttpServer on Boost.Beast. The design follows the shape of Beast's own asynchronous server
// examples (a session object per connection owning its socket, buffer and parser, every
// operation asynchronous on the session's strand), with one deadline timer per connection (as
// in Asio's timeout examples) instead of beast::tcp_stream's, because the connection keeps a
// read pending while it waits on its handler (to notice a client that went away) and the
// deadline must follow the phase, not the operation.
#include "src/http/http_server.h"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include <chrono>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "src/http/connection.h"
#include "src/http/tls.h"

namespace dsinfer {

namespace net = boost::asio;
using tcp = net::ip::tcp;

bool SplitHostPort(std::string_view listen, std::string* host, int* port) {
  std::string_view port_text;
  if (!listen.empty() && listen.front() == '[') {
    const size_t close = listen.find("]:");
    if (close == std::string_view::npos) return false;
    *host = std::string(listen.substr(1, close - 1));
    port_text = listen.substr(close + 2);
  } else {
    const size_t colon = listen.rfind(':');
    if (colon == std::string_view::npos || colon == 0) return false;
    *host = std::string(listen.substr(0, colon));
    port_text = listen.substr(colon + 1);
  }
  return absl::SimpleAtoi(absl::string_view(port_text.data(), port_text.size()), port) &&
         *port >= 0 && *port <= 65535 && !host->empty();
}

std::optional<std::string_view> HttpRequest::Header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (k == name) return std::string_view(v);
  }
  return std::nullopt;
}

std::vector<std::string> HttpRequest::Headers(std::string_view name) const {
  std::vector<std::string> out;
  for (const auto& [k, v] : headers) {
    if (k == name) out.push_back(v);
  }
  return out;
}

// ---- HttpExchange: forwards to the connection's strand ----

HttpExchange::HttpExchange(std::shared_ptr<http_internal::Connection> connection,
                           uint64_t generation, HttpRequest request)
    : connection_(std::move(connection)), generation_(generation), request_(std::move(request)) {}

HttpExchange::~HttpExchange() {
  if (!answered_.load()) connection_->Abandoned(generation_);
}

void HttpExchange::Respond(HttpResponse response) {
  if (answered_.exchange(true)) return;
  connection_->PostRespond(generation_, std::move(response));
}

void HttpExchange::StartStream(int status, std::string content_type,
                               std::vector<std::pair<std::string, std::string>> headers) {
  if (answered_.exchange(true)) return;
  HttpResponse head{status, std::move(content_type), "", std::move(headers)};
  connection_->PostStartStream(generation_, std::move(head));
}

void HttpExchange::Send(std::string data) {
  if (data.empty() || gone_.load(std::memory_order_acquire)) return;
  connection_->PostSend(generation_, std::move(data));
}

void HttpExchange::EndStream() { connection_->PostEndStream(generation_); }

void HttpExchange::OnClientGone(std::function<void()> callback) {
  connection_->PostOnGone(generation_, std::move(callback));
}

// ---- HttpServer ----

HttpServer::HttpServer(std::string name, HttpConfig limits)
    : core_(std::make_shared<Core>(std::move(name), limits)) {}

HttpServer::~HttpServer() { Stop(); }

void HttpServer::Route(std::string method, std::string path, HttpHandler handler) {
  core_->routes[std::move(path)][std::move(method)] = std::move(handler);
}

void HttpServer::SetErrorFormatter(HttpErrorFormatter formatter) {
  core_->error_formatter = std::move(formatter);
}

absl::Status HttpServer::EnableTls(const HttpTlsOptions& tls) {
  if (started_) {
    return absl::FailedPreconditionError(absl::StrCat(core_->name, " already started"));
  }
  if (tls.client_certs != HttpTlsOptions::ClientCerts::kNone && tls.client_ca_pem.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(core_->name, ": client certificates need a client CA"));
  }
  HttpTlsOptions effective = tls;
  if (tls.client_certs == HttpTlsOptions::ClientCerts::kNone) effective.client_ca_pem.clear();
  auto ctx = http_internal::MakeServerTlsContext(effective);
  if (!ctx.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(core_->name, ": ", ctx.status().message()));
  }
  core_->tls = *std::move(ctx);
  return absl::OkStatus();
}

int HttpServer::connections() const {
  std::lock_guard<std::mutex> lock(core_->mu);
  return core_->open;
}

absl::Status HttpServer::Start(std::string_view listen) {
  Core& c = *core_;
  if (started_) return absl::FailedPreconditionError(absl::StrCat(c.name, " already started"));
  std::string host;
  int port = 0;
  if (!SplitHostPort(listen, &host, &port)) {
    return absl::InvalidArgumentError(absl::StrCat(c.name, " listen address \"",
                                                   std::string(listen), "\" is not host:port"));
  }
  boost::system::error_code ec;
  const net::ip::address address = net::ip::make_address(host, ec);
  tcp::endpoint endpoint;
  if (!ec) {
    endpoint = tcp::endpoint(address, static_cast<uint16_t>(port));
  } else {
    // A host name ("localhost"): the first address it resolves to.
    tcp::resolver resolver(c.io);
    auto results = resolver.resolve(host, std::to_string(port), ec);
    if (ec || results.empty()) {
      return absl::UnavailableError(
          absl::StrCat(c.name, " cannot resolve ", std::string(listen)));
    }
    endpoint = results.begin()->endpoint();
  }
  auto fail = [&](const char* what) {
    c.acceptor.close();
    return absl::UnavailableError(absl::StrCat(c.name, " cannot bind ", std::string(listen), " (",
                                               what, ": ", ec.message(), ")"));
  };
  c.acceptor.open(endpoint.protocol(), ec);
  if (ec) return fail("open");
  // SO_REUSEADDR only (restarts while old sockets linger in TIME_WAIT); never SO_REUSEPORT,
  // which would let a second server silently take half the traffic.
  c.acceptor.set_option(net::socket_base::reuse_address(true), ec);
  c.acceptor.bind(endpoint, ec);
  if (ec) return fail("bind");
  c.acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec) return fail("listen");
  port_ = c.acceptor.local_endpoint().port();
  started_ = true;
  c.stopping = false;
  c.io.restart();
  c.Accept();
  for (int i = 0; i < std::max(1, c.limits.threads); ++i) {
    c.threads.emplace_back([core = core_] { core->io.run(); });
  }
  return absl::OkStatus();
}

void HttpServer::Stop() {
  if (!started_) return;
  started_ = false;
  core_->Shutdown();
}

}  // namespace dsinfer
