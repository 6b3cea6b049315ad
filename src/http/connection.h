// Internals of HttpServer: the shared core (io_context, acceptor, routes, connection counts)
// and one connection's state machine. Everything a connection touches runs on its strand.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "src/http/http_server.h"

namespace dsinfer {

struct HttpServer::Core : std::enable_shared_from_this<HttpServer::Core> {
  Core(std::string name, HttpConfig limits);

  // Accepts the next connection (on the acceptor's strand); admits it against the caps.
  void Accept();
  // Counts a connection's socket closed.
  void Release(const std::string& address);
  // Closes the acceptor and every connection, lets the loop wind down, joins the threads.
  void Shutdown();
  HttpResponse Error(int status, std::string_view message) const;

  const std::string name;
  const HttpConfig limits;
  boost::asio::io_context io;
  boost::asio::ip::tcp::acceptor acceptor;
  // path -> method -> handler; fixed before Start.
  std::map<std::string, std::map<std::string, HttpHandler>, std::less<>> routes;
  HttpErrorFormatter error_formatter;
  std::shared_ptr<boost::asio::ssl::context> tls;  // null: plain HTTP
  std::vector<std::thread> threads;

  mutable std::mutex mu;  // guards what follows
  std::condition_variable closed_cv;
  bool stopping = false;
  int open = 0;
  std::unordered_map<std::string, int> per_address;
  std::unordered_map<http_internal::Connection*, std::weak_ptr<http_internal::Connection>> live;
};

namespace http_internal {

// The bytes of one connection: the TCP socket itself, or TLS over it. An Asio AsyncStream, so
// Beast's reads and writes take either.
class ByteStream {
 public:
  using Socket = boost::asio::ip::tcp::socket;
  using TlsStream = boost::asio::ssl::stream<Socket&>;
  using executor_type = Socket::executor_type;

  ByteStream(Socket* socket, TlsStream* tls) : socket_(socket), tls_(tls) {}
  executor_type get_executor() { return socket_->get_executor(); }

  template <class MutableBuffers, class Handler>
  void async_read_some(const MutableBuffers& buffers, Handler&& handler) {
    if (tls_ != nullptr) {
      tls_->async_read_some(buffers, std::forward<Handler>(handler));
    } else {
      socket_->async_read_some(buffers, std::forward<Handler>(handler));
    }
  }
  template <class ConstBuffers, class Handler>
  void async_write_some(const ConstBuffers& buffers, Handler&& handler) {
    if (tls_ != nullptr) {
      tls_->async_write_some(buffers, std::forward<Handler>(handler));
    } else {
      socket_->async_write_some(buffers, std::forward<Handler>(handler));
    }
  }

 private:
  Socket* socket_;
  TlsStream* tls_;
};

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(std::shared_ptr<HttpServer::Core> core, boost::asio::ip::tcp::socket socket,
             std::string address);
  void Start();  // on the strand
  boost::asio::any_io_executor executor() { return socket_.get_executor(); }

  // From HttpExchange (any thread): posted onto the strand, dropped unless `generation` is the
  // exchange in progress.
  void PostRespond(uint64_t generation, HttpResponse response);
  void PostStartStream(uint64_t generation, HttpResponse head);
  void PostSend(uint64_t generation, std::string data);
  void PostEndStream(uint64_t generation);
  void PostOnGone(uint64_t generation, std::function<void()> callback);
  void Abandoned(uint64_t generation);
  void PostClose();

 private:
  using Request = boost::beast::http::request<boost::beast::http::string_body>;

  void OnHandshake(boost::system::error_code ec);
  // A plain HTTP request on a TLS listener: an unencrypted 400 on the raw socket, then close.
  void AnswerPlainHttp();
  // `from_accept`: the first request after the TLS handshake keeps the accept's deadline.
  void StartHeader(bool from_accept = false);
  void OnHeader(boost::system::error_code ec);
  void ReadBody();
  void OnBody(boost::system::error_code ec);
  void Dispatch();
  // A read kept pending while the handler works: notices a client that went away, keeps
  // pipelined bytes, and doubles as the keep-alive idle wait.
  void Watch();
  void OnWatch(boost::system::error_code ec, size_t n);
  void WriteResponse(HttpResponse response);
  void WriteStream();
  void OnWritten(boost::system::error_code ec);
  void FinishExchange();
  void NextRequest();
  void FailRequest(int status, std::string_view message);  // answers, then closes
  void LingeringClose();  // after an error answer: discard what the client still sends, briefly
  // TLS: the server's end of the session. close_notify goes out, then what the client still
  // sends is read and dropped until its close_notify or EOF, all within the write timeout; then
  // Close. A pending Watch read is cancelled first (OnWatch comes back here).
  void ShutdownTls();
  void Close();
  void SetDeadline(double seconds);
  void ClearDeadline();
  bool Current(uint64_t generation) const {
    return generation == generation_ && exchange_active_ && !closed_;
  }

  const std::shared_ptr<HttpServer::Core> core_;
  boost::asio::ip::tcp::socket socket_;
  std::optional<ByteStream::TlsStream> tls_;  // over socket_, when the listener serves TLS
  ByteStream stream_;                         // what HTTP reads and writes
  boost::asio::steady_timer timer_;
  const std::string address_;
  std::vector<std::string> peer_identities_;  // the verified client certificate's
  std::shared_ptr<std::string> raw_answer_;   // AnswerPlainHttp's bytes while written
  boost::beast::flat_buffer buffer_;
  std::optional<boost::beast::http::request_parser<boost::beast::http::string_body>> parser_;
  uint64_t deadline_generation_ = 0;
  bool closed_ = false;
  bool closing_ = false;   // the answer is the last on this connection
  bool watching_ = false;  // a Watch read is pending
  bool idle_ = false;      // between requests; Watch's bytes start the next one
  bool restart_after_cancel_ = false;
  bool tls_ready_ = false;              // the handshake completed: close_notify can be sent
  bool tls_shutdown_ = false;           // ShutdownTls started async_shutdown
  bool shutdown_after_cancel_ = false;  // ShutdownTls waits for the cancelled Watch read
  std::vector<char> discard_;

  // The exchange in progress.
  uint64_t generation_ = 0;
  bool exchange_active_ = false;
  bool keep_alive_ = true;
  bool answered_ = false;  // a response (or stream head) was started
  std::weak_ptr<HttpExchange> exchange_;
  std::function<void()> on_gone_;
  bool writing_ = false;
  bool streaming_ = false;
  bool end_requested_ = false;
  bool last_sent_ = false;
  std::string pending_;   // stream data not yet written (merged)
  std::string in_flight_;  // the chunk being written
  std::shared_ptr<boost::beast::http::response<boost::beast::http::string_body>> response_;
  std::shared_ptr<boost::beast::http::response<boost::beast::http::empty_body>> stream_head_;
  std::shared_ptr<boost::beast::http::response_serializer<boost::beast::http::empty_body>>
      stream_serializer_;
};

}  // namespace http_internal
}  // namespace dsinfer
