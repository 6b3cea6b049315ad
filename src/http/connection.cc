// One HTTP connection's state machine, and the accept loop with its connection caps.
//
// Phases and their deadlines (each phase that waits on the client is bounded):
//   [TLS handshake + first header: header_timeout_seconds from the accept] ->
//   header (http.header_timeout_seconds from the first byte) -> body (body_timeout_seconds)
//   -> handler (no deadline: the engine's time; a pending read notices a client that left)
//   -> writes (write_timeout_seconds each) -> idle (idle_timeout_seconds) -> header ...
#include "src/http/connection.h"

#include <boost/asio/post.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/write.hpp>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <chrono>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "src/http/tls.h"

namespace dsinfer {

namespace net = boost::asio;
namespace http = boost::beast::http;
using tcp = net::ip::tcp;
using error_code = boost::system::error_code;

HttpServer::Core::Core(std::string name_in, HttpConfig limits_in)
    : name(std::move(name_in)), limits(limits_in), acceptor(net::make_strand(io)) {}

HttpResponse HttpServer::Core::Error(int status, std::string_view message) const {
  if (error_formatter) return error_formatter(status, message);
  return HttpResponse{status, "text/plain", absl::StrCat(std::string(message), "\n"), {}};
}

void HttpServer::Core::Accept() {
  acceptor.async_accept(
      net::make_strand(io), [self = shared_from_this()](error_code ec, tcp::socket socket) {
        if (ec == net::error::operation_aborted || !self->acceptor.is_open()) return;
        if (!ec) {
          error_code aec;
          const tcp::endpoint peer = socket.remote_endpoint(aec);
          std::string address = aec ? "" : peer.address().to_string();
          bool admit = false;
          {
            std::lock_guard<std::mutex> lock(self->mu);
            int& mine = self->per_address[address];
            // Over a cap: closed at once, before a byte is read. Cheaper than an answer, and
            // a flood of connections gets nothing to wait on.
            admit = !self->stopping && self->open < self->limits.max_connections &&
                    mine < self->limits.max_connections_per_address;
            if (admit) {
              ++self->open;
              ++mine;
            } else if (mine == 0) {
              self->per_address.erase(address);
            }
          }
          if (admit) {
            auto c = std::make_shared<http_internal::Connection>(self, std::move(socket),
                                                                 std::move(address));
            {
              std::lock_guard<std::mutex> lock(self->mu);
              self->live[c.get()] = c;
            }
            net::post(c->executor(), [c] { c->Start(); });
          } else {
            error_code ignored;
            socket.close(ignored);
          }
        }
        // Errors such as EMFILE: keep accepting (the next accept may succeed once fds free up).
        self->Accept();
      });
}

void HttpServer::Core::Release(const std::string& address) {
  std::lock_guard<std::mutex> lock(mu);
  --open;
  auto it = per_address.find(address);
  if (it != per_address.end() && --it->second <= 0) per_address.erase(it);
  closed_cv.notify_all();
}

void HttpServer::Core::Shutdown() {
  std::vector<std::shared_ptr<http_internal::Connection>> connections;
  {
    std::lock_guard<std::mutex> lock(mu);
    stopping = true;
    for (auto& [raw, weak] : live) {
      if (auto c = weak.lock()) connections.push_back(std::move(c));
    }
  }
  net::post(acceptor.get_executor(), [self = shared_from_this()] {
    error_code ignored;
    self->acceptor.close(ignored);
  });
  for (auto& c : connections) c->PostClose();
  connections.clear();
  {
    // Closing runs on the connections' strands; give them a moment, then stop the loop.
    std::unique_lock<std::mutex> lock(mu);
    closed_cv.wait_for(lock, std::chrono::seconds(2), [&] { return open == 0; });
  }
  io.stop();
  for (std::thread& t : threads) {
    if (t.joinable()) t.join();
  }
  threads.clear();
  error_code ignored;
  acceptor.close(ignored);
  std::lock_guard<std::mutex> lock(mu);
  live.clear();
}

namespace http_internal {

Connection::Connection(std::shared_ptr<HttpServer::Core> core, tcp::socket socket,
                       std::string address)
    : core_(std::move(core)),
      socket_(std::move(socket)),
      stream_(&socket_, nullptr),
      timer_(socket_.get_executor()),
      address_(std::move(address)) {
  if (core_->tls) {
    tls_.emplace(socket_, *core_->tls);
    stream_ = ByteStream(&socket_, &*tls_);
  }
}

void Connection::Start() {
  error_code ignored;
  socket_.set_option(tcp::no_delay(true), ignored);  // SSE chunks go out as they are written
  if (!tls_) return StartHeader();
  // The handshake and the first header share the header deadline, counted from the accept: a
  // client that stalls its ClientHello (or sends it byte by byte) is cut like a slowloris.
  SetDeadline(core_->limits.header_timeout_seconds);
  tls_->async_handshake(net::ssl::stream_base::server,
                        [self = shared_from_this()](error_code ec) { self->OnHandshake(ec); });
}

void Connection::OnHandshake(error_code ec) {
  if (closed_) return;
  if (ec) {
    // OpenSSL recognises a plain HTTP request line where a ClientHello belongs; it sends no
    // alert then, so the raw socket can still carry a readable answer.
    if (ec.category() == net::error::get_ssl_category() &&
        ERR_GET_REASON(static_cast<unsigned long>(ec.value())) == SSL_R_HTTP_REQUEST) {
      return AnswerPlainHttp();
    }
    return Close();  // no or a wrong client certificate, not TLS, a reset, the deadline
  }
  tls_ready_ = true;
  peer_identities_ = VerifiedPeerIdentities(tls_->native_handle());
  StartHeader(/*from_accept=*/true);
}

void Connection::AnswerPlainHttp() {
  HttpResponse r = core_->Error(400, "this port serves HTTPS only: use an https:// URL");
  raw_answer_ = std::make_shared<std::string>(absl::StrCat(
      "HTTP/1.1 400 Bad Request\r\nContent-Type: ", r.content_type,
      "\r\nContent-Length: ", r.body.size(), "\r\nConnection: close\r\n\r\n", r.body));
  exchange_active_ = false;
  closing_ = true;
  SetDeadline(core_->limits.write_timeout_seconds);
  net::async_write(socket_, net::buffer(*raw_answer_),
                   [self = shared_from_this()](error_code ec, size_t) {
                     if (ec) return self->Close();
                     self->LingeringClose();
                   });
}

void Connection::SetDeadline(double seconds) {
  const uint64_t g = ++deadline_generation_;
  timer_.expires_after(std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      std::chrono::duration<double>(seconds)));
  timer_.async_wait([self = shared_from_this(), g](error_code ec) {
    if (ec || g != self->deadline_generation_) return;
    // A keep-alive client idle too long is told so (TLS: close_notify); anything else that runs
    // out of time (a slow header or body, a stalled reader, the shutdown itself) is cut.
    if (self->idle_ && self->tls_ready_ && !self->tls_shutdown_) return self->ShutdownTls();
    self->Close();
  });
}

void Connection::ClearDeadline() {
  ++deadline_generation_;
  timer_.cancel();
}

void Connection::StartHeader(bool from_accept) {
  if (closed_) return;
  idle_ = false;
  restart_after_cancel_ = false;
  parser_.emplace();
  parser_->header_limit(static_cast<uint32_t>(core_->limits.max_header_bytes));
  parser_->body_limit(static_cast<uint64_t>(core_->limits.max_body_bytes));
  // Counted from the first byte of the request (or the accept): a client that trickles its
  // header (slowloris) is cut when it runs out.
  if (!from_accept) SetDeadline(core_->limits.header_timeout_seconds);
  http::async_read_header(stream_, buffer_, *parser_,
                          [self = shared_from_this()](error_code ec, size_t) { self->OnHeader(ec); });
}

void Connection::OnHeader(error_code ec) {
  if (closed_) return;
  if (ec == http::error::header_limit) return FailRequest(431, "request header too large");
  if (ec == http::error::body_limit) return FailRequest(413, "request body too large");
  if (ec == http::error::end_of_stream || ec == net::error::eof ||
      ec == net::error::operation_aborted || ec == net::error::connection_reset ||
      ec == net::error::bad_descriptor || ec == net::ssl::error::stream_truncated ||
      ec.category() == net::error::get_ssl_category()) {  // TLS: EOF without close_notify, an alert
    return Close();
  }
  if (ec) return FailRequest(400, "malformed HTTP request");
  const auto& header = parser_->get();
  auto expect = header.find(http::field::expect);
  if (expect != header.end() &&
      absl::EqualsIgnoreCase(absl::string_view(expect->value().data(), expect->value().size()),
                             "100-continue") &&
      !parser_->is_done()) {
    // The client waits for this before sending its body (curl does for large bodies).
    auto cont = std::make_shared<http::response<http::empty_body>>(http::status::continue_, 11);
    SetDeadline(core_->limits.write_timeout_seconds);
    http::async_write(stream_, *cont, [self = shared_from_this(), cont](error_code ec, size_t) {
      if (ec) return self->Close();
      self->ReadBody();
    });
    return;
  }
  ReadBody();
}

void Connection::ReadBody() {
  if (closed_) return;
  if (parser_->is_done()) return Dispatch();
  SetDeadline(core_->limits.body_timeout_seconds);
  http::async_read(stream_, buffer_, *parser_,
                   [self = shared_from_this()](error_code ec, size_t) { self->OnBody(ec); });
}

void Connection::OnBody(error_code ec) {
  if (closed_) return;
  if (ec == http::error::body_limit) return FailRequest(413, "request body too large");
  if (ec) return Close();  // timeout (socket closed), reset, or a malformed chunked body
  Dispatch();
}

void Connection::Dispatch() {
  ClearDeadline();
  Request req = parser_->release();
  parser_.reset();
  HttpRequest r;
  r.method = std::string(req.method_string());
  const std::string_view target(req.target().data(), req.target().size());
  const size_t q = target.find('?');
  r.path = std::string(target.substr(0, q));
  if (q != std::string_view::npos) r.query = std::string(target.substr(q + 1));
  for (const auto& field : req) {
    r.headers.emplace_back(absl::AsciiStrToLower(absl::string_view(
                               field.name_string().data(), field.name_string().size())),
                           std::string(field.value()));
  }
  r.body = std::move(req.body());
  r.remote_address = address_;
  r.tls = tls_.has_value();
  r.peer_identities = peer_identities_;

  ++generation_;
  exchange_active_ = true;
  keep_alive_ = req.keep_alive();
  answered_ = false;
  streaming_ = end_requested_ = last_sent_ = false;
  pending_.clear();
  on_gone_ = nullptr;
  auto exchange = std::make_shared<HttpExchange>(shared_from_this(), generation_, std::move(r));
  exchange_ = exchange;
  Watch();

  const HttpHandler* handler = nullptr;
  std::string_view error;
  int error_status = 0;
  auto path = core_->routes.find(exchange->request().path);
  if (path == core_->routes.end()) {
    error_status = 404;
    error = "not found";
  } else if (auto m = path->second.find(exchange->request().method); m != path->second.end()) {
    handler = &m->second;
  } else {
    error_status = 405;
    error = "method not allowed";
  }
  if (handler == nullptr) {
    exchange->Respond(core_->Error(error_status, error));
    return;
  }
  try {
    (*handler)(exchange);
  } catch (...) {
    exchange->Respond(core_->Error(500, "internal error"));
  }
}

void Connection::Watch() {
  if (watching_ || closed_) return;
  // Pipelined bytes beyond a header's worth wait in the socket (TCP flow control) instead.
  if (buffer_.size() >= static_cast<size_t>(core_->limits.max_header_bytes)) return;
  watching_ = true;
  stream_.async_read_some(buffer_.prepare(4096), [self = shared_from_this()](
                                                     error_code ec, size_t n) {
    self->OnWatch(ec, n);
  });
}

void Connection::OnWatch(error_code ec, size_t n) {
  watching_ = false;
  if (closed_) return;
  if (shutdown_after_cancel_) {  // the server is ending the session; what was read is dropped
    shutdown_after_cancel_ = false;
    return ShutdownTls();
  }
  if (ec == net::error::operation_aborted && restart_after_cancel_) {
    restart_after_cancel_ = false;
    return StartHeader();
  }
  // EOF or reset while the handler works: the client went away (Close runs OnClientGone).
  // (A client that half-closes after its request is taken as gone too.)
  if (ec) return Close();
  buffer_.commit(n);
  if (idle_) return StartHeader();
  Watch();
}

void Connection::PostRespond(uint64_t generation, HttpResponse response) {
  net::post(socket_.get_executor(),
            [self = shared_from_this(), generation, response = std::move(response)]() mutable {
              if (!self->Current(generation) || self->answered_) return;
              self->WriteResponse(std::move(response));
            });
}

void Connection::WriteResponse(HttpResponse r) {
  answered_ = true;
  response_ = std::make_shared<http::response<http::string_body>>(
      static_cast<http::status>(r.status), 11);
  response_->set(http::field::content_type, r.content_type);
  response_->set(http::field::cache_control, "no-store");
  for (auto& [k, v] : r.headers) response_->insert(k, v);
  response_->body() = std::move(r.body);
  response_->keep_alive(keep_alive_ && !closing_);
  response_->prepare_payload();
  writing_ = true;
  SetDeadline(core_->limits.write_timeout_seconds);
  http::async_write(stream_, *response_,
                    [self = shared_from_this()](error_code ec, size_t) {
                      self->response_.reset();
                      self->OnWritten(ec);
                    });
}

void Connection::PostStartStream(uint64_t generation, HttpResponse head) {
  net::post(socket_.get_executor(), [self = shared_from_this(), generation,
                                     head = std::move(head)]() mutable {
    if (!self->Current(generation) || self->answered_) return;
    self->answered_ = true;
    self->streaming_ = true;
    self->stream_head_ = std::make_shared<http::response<http::empty_body>>(
        static_cast<http::status>(head.status), 11);
    auto& h = *self->stream_head_;
    h.set(http::field::content_type, head.content_type);
    h.set(http::field::cache_control, "no-store");
    for (auto& [k, v] : head.headers) h.insert(k, v);
    h.keep_alive(self->keep_alive_);
    h.chunked(true);
    self->stream_serializer_ =
        std::make_shared<http::response_serializer<http::empty_body>>(h);
    self->writing_ = true;
    self->SetDeadline(self->core_->limits.write_timeout_seconds);
    http::async_write_header(self->stream_, *self->stream_serializer_,
                             [self](error_code ec, size_t) { self->OnWritten(ec); });
  });
}

void Connection::PostSend(uint64_t generation, std::string data) {
  net::post(socket_.get_executor(),
            [self = shared_from_this(), generation, data = std::move(data)]() mutable {
              if (!self->Current(generation) || !self->streaming_ || self->end_requested_) return;
              // Merged while a write is in flight: a slow client grows one buffer, nothing more.
              self->pending_ += data;
              self->WriteStream();
            });
}

void Connection::PostEndStream(uint64_t generation) {
  net::post(socket_.get_executor(), [self = shared_from_this(), generation] {
    if (!self->Current(generation) || !self->streaming_) return;
    self->end_requested_ = true;
    self->WriteStream();
  });
}

void Connection::WriteStream() {
  if (writing_ || closed_) return;
  auto done = [self = shared_from_this()](error_code ec, size_t) { self->OnWritten(ec); };
  if (!pending_.empty()) {
    in_flight_ = std::move(pending_);
    pending_.clear();
    writing_ = true;
    SetDeadline(core_->limits.write_timeout_seconds);
    net::async_write(stream_, http::make_chunk(net::buffer(in_flight_)), std::move(done));
  } else if (end_requested_ && !last_sent_) {
    last_sent_ = true;
    writing_ = true;
    SetDeadline(core_->limits.write_timeout_seconds);
    net::async_write(stream_, http::make_chunk_last(), std::move(done));
  } else {
    ClearDeadline();  // waiting on the handler, not the client
  }
}

void Connection::OnWritten(error_code ec) {
  writing_ = false;
  if (closed_) return;
  if (ec) return Close();  // write timeout (socket closed) or the client went away
  if (streaming_ && !last_sent_) return WriteStream();
  FinishExchange();
}

void Connection::FinishExchange() {
  exchange_active_ = false;
  on_gone_ = nullptr;
  exchange_.reset();
  stream_head_.reset();
  stream_serializer_.reset();
  in_flight_.clear();
  if (!keep_alive_ || closing_) return LingeringClose();
  NextRequest();
}

void Connection::NextRequest() {
  idle_ = true;
  if (buffer_.size() > 0) {
    // A pipelined request is already here.
    if (watching_) {
      restart_after_cancel_ = true;
      error_code ignored;
      socket_.cancel(ignored);  // OnWatch starts the header
      return;
    }
    return StartHeader();
  }
  SetDeadline(core_->limits.idle_timeout_seconds);
  if (!watching_) Watch();
}

void Connection::FailRequest(int status, std::string_view message) {
  parser_.reset();
  ++generation_;
  exchange_active_ = true;
  keep_alive_ = false;
  closing_ = true;
  streaming_ = false;
  WriteResponse(core_->Error(status, message));
}

void Connection::LingeringClose() {
  // Closing with unread bytes makes the kernel send a reset, which can destroy the answer
  // before the client reads it (a 413 to a client still sending its body). Stop sending, read
  // and discard for a moment, then close. An established TLS session ends with a close_notify
  // instead (ShutdownTls reads and drops the rest the same way); a failed handshake's plain
  // answer (AnswerPlainHttp) has no session and is drained raw.
  if (closed_) return;
  if (tls_ready_) return ShutdownTls();
  error_code ignored;
  socket_.shutdown(tcp::socket::shutdown_send, ignored);
  SetDeadline(std::min(2.0, core_->limits.body_timeout_seconds));
  if (watching_) return;  // a Watch read is pending; its EOF (or the deadline) closes
  discard_.resize(16 << 10);
  auto drain = std::make_shared<std::function<void(error_code, size_t)>>();
  *drain = [self = shared_from_this(), drain](error_code ec, size_t) {
    if (ec || self->closed_) {
      self->Close();
      *drain = nullptr;  // break the self-reference
      return;
    }
    self->socket_.async_read_some(net::buffer(self->discard_), *drain);
  };
  socket_.async_read_some(net::buffer(discard_), *drain);
}

void Connection::ShutdownTls() {
  if (closed_ || tls_shutdown_) return;
  if (watching_) {
    // One read at a time on the TLS stream: the Watch read ends first (operation_aborted).
    shutdown_after_cancel_ = true;
    error_code ignored;
    socket_.cancel(ignored);
    return;
  }
  tls_shutdown_ = true;
  // Never waits on the io thread: the client's close_notify, its EOF or the deadline ends it.
  SetDeadline(core_->limits.write_timeout_seconds);
  tls_->async_shutdown([self = shared_from_this()](error_code) { self->Close(); });
}

void Connection::PostOnGone(uint64_t generation, std::function<void()> callback) {
  net::post(socket_.get_executor(), [self = shared_from_this(), generation,
                                     callback = std::move(callback)]() mutable {
    if (generation != self->generation_ || !self->exchange_active_) return;  // response ended
    if (self->closed_) {
      callback();
      return;
    }
    self->on_gone_ = std::move(callback);
  });
}

void Connection::Abandoned(uint64_t generation) {
  net::post(socket_.get_executor(), [self = shared_from_this(), generation] {
    if (!self->Current(generation) || self->answered_) return;
    self->WriteResponse(self->core_->Error(500, "internal error"));
  });
}

void Connection::PostClose() {
  net::post(socket_.get_executor(), [self = shared_from_this()] {
    self->closing_ = true;
    self->Close();
  });
}

void Connection::Close() {
  if (closed_) return;
  closed_ = true;
  error_code ignored;
  socket_.shutdown(tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
  ClearDeadline();
  parser_.reset();
  core_->Release(address_);
  {
    std::lock_guard<std::mutex> lock(core_->mu);
    core_->live.erase(this);
  }
  if (exchange_active_) {
    if (auto ex = exchange_.lock()) ex->gone_.store(true, std::memory_order_release);
    std::function<void()> gone = std::move(on_gone_);
    on_gone_ = nullptr;
    exchange_active_ = false;
    if (gone) gone();
  }
}

}  // namespace http_internal
}  // namespace dsinfer
