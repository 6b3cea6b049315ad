// The OpenAI transport: streaming `POST /v1/completions` or, for chat prompts,
// `/v1/chat/completions` (`stream: true`, usage included) over
// HTTP/1.1 with a Boost.Beast client. HTTP/1.1 has no multiplexing, so each tenant keeps a pool
// of keep-alive connections (one per stream in flight; a stream that ended cleanly gives its
// connection back). Every socket operation is asynchronous on the connection's strand; the
// request's whole deadline is the stream's expiry (Beast closes the socket when it passes).
// Counting follows the gRPC transport: a content chunk is a message with tokens, the chunk
// with `finish_reason` the final message, the usage chunk carries `completion_tokens`.
#include <sys/socket.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cerrno>
#include <limits>
#include <mutex>
#include <optional>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "bench/loadgen/sse.h"
#include "bench/loadgen/transport.h"
#include "nlohmann/json.hpp"

namespace dsinfer::loadgen {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using json = nlohmann::json;

constexpr size_t kMaxErrorBody = 64 << 10;  // an error answer's body is read up to this

struct Connection {
  explicit Connection(asio::io_context& io) : stream(asio::make_strand(io)) {}
  beast::tcp_stream stream;
  beast::flat_buffer buffer;
  bool connected = false;
};

// Idle keep-alive connections of one tenant.
class ConnectionPool {
 public:
  // An idle connection the server has not closed meanwhile (a peek finds neither EOF nor
  // stray bytes), or null.
  std::unique_ptr<Connection> Take() {
    std::lock_guard<std::mutex> lock(mu_);
    while (!idle_.empty()) {
      std::unique_ptr<Connection> c = std::move(idle_.back());
      idle_.pop_back();
      char byte;
      const ssize_t n =
          ::recv(c->stream.socket().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
      if (c->buffer.size() == 0 && n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return c;
    }
    return nullptr;
  }
  void Put(std::unique_ptr<Connection> c) {
    std::lock_guard<std::mutex> lock(mu_);
    idle_.push_back(std::move(c));
  }
  void Clear() {
    std::lock_guard<std::mutex> lock(mu_);
    idle_.clear();
  }

 private:
  std::mutex mu_;
  std::vector<std::unique_ptr<Connection>> idle_;
};

std::string RequestBody(const LoadRequest& r) {
  json j;
  if (r.chat) {
    j["messages"] = json::array({{{"role", "user"}, {"content", r.text}}});
  } else if (r.text_prompt) {
    j["prompt"] = r.text;
  } else {
    j["prompt"] = r.token_ids;
  }
  j["max_tokens"] = r.max_tokens;
  j["temperature"] = 0;  // greedy, as gRPC's default
  j["ignore_eos"] = r.ignore_eos;
  j["stream"] = true;
  j["stream_options"] = {{"include_usage", true}};
  if (r.priority != v1::PRIORITY_UNSPECIFIED) j["priority"] = PriorityLabel(r.priority);
  return j.dump();
}

v1::FinishReason FinishFromName(const std::string& s) {
  if (s == "length") return v1::FINISH_REASON_LENGTH;
  if (s == "stop") return v1::FINISH_REASON_STOP;
  return v1::FINISH_REASON_UNSPECIFIED;
}

class OpenAiCall : public StreamCall, public std::enable_shared_from_this<OpenAiCall> {
 public:
  OpenAiCall(const tcp::resolver::results_type& endpoints, ConnectionPool* pool,
             std::unique_ptr<Connection> conn, http::request<http::string_body> request,
             CallRecord record, double timeout_s, CallDone on_done)
      : endpoints_(endpoints),
        pool_(pool),
        conn_(std::move(conn)),
        executor_(conn_->stream.get_executor()),
        request_(std::move(request)),
        record_(std::move(record)),
        timeout_(
            std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(timeout_s))),
        on_done_(std::move(on_done)),
        read_buf_(8192, '\0') {}

  // The transport keeps the call alive from NewCall to Start (handlers hold it afterwards).
  std::shared_ptr<OpenAiCall> self_until_start;

  void Start() override {
    record_.start = Clock::now();
    asio::post(executor_, [self = std::move(self_until_start)] { self->Begin(); });
  }

  void Cancel() override {
    asio::post(executor_, [self = shared_from_this()] {
      if (self->finished_) return;
      self->cancelled_ = true;
      self->conn_->stream.cancel();  // pending operations end with operation_aborted
    });
  }

 private:
  void Begin() {
    if (cancelled_) return FailWith(absl::StatusCode::kCancelled, "cancelled by the client");
    conn_->stream.expires_at(record_.start + timeout_);
    if (conn_->connected) return Write();
    conn_->stream.async_connect(
        endpoints_, [self = shared_from_this()](beast::error_code ec, const tcp::endpoint&) {
          if (ec) return self->Fail(ec, "connect");
          self->conn_->connected = true;
          beast::error_code ignored;
          self->conn_->stream.socket().set_option(tcp::no_delay(true), ignored);
          self->Write();
        });
  }

  void Write() {
    http::async_write(conn_->stream, request_,
                      [self = shared_from_this()](beast::error_code ec, size_t) {
                        if (ec) return self->Fail(ec, "write");
                        self->ReadHeader();
                      });
  }

  void ReadHeader() {
    parser_.emplace();
    parser_->body_limit(std::numeric_limits<uint64_t>::max());
    http::async_read_header(conn_->stream, conn_->buffer, *parser_,
                            [self = shared_from_this()](beast::error_code ec, size_t) {
                              if (ec) return self->Fail(ec, "read header");
                              self->OnHeader();
                            });
  }

  void OnHeader() {
    const auto& head = parser_->get();
    record_.http_status = static_cast<int>(head.result_int());
    if (auto it = head.find(http::field::retry_after); it != head.end()) {
      int64_t s = -1;
      if (absl::SimpleAtoi(absl::string_view(it->value().data(), it->value().size()), &s)) {
        record_.retry_after_ms = s * 1000;
      }
    }
    if (parser_->is_done()) return Complete();
    ReadBody();
  }

  void ReadBody() {
    parser_->get().body().data = read_buf_.data();
    parser_->get().body().size = read_buf_.size();
    http::async_read_some(conn_->stream, conn_->buffer, *parser_,
                          [self = shared_from_this()](beast::error_code ec, size_t) {
                            if (ec == http::error::need_buffer) ec = {};
                            if (ec) return self->Fail(ec, "read body");
                            self->OnBody();
                          });
  }

  void OnBody() {
    const size_t n = read_buf_.size() - parser_->get().body().size;
    const std::string_view bytes(read_buf_.data(), n);
    if (record_.http_status != 200) {
      if (error_body_.size() + n > kMaxErrorBody)
        return FailWith(absl::StatusCode::kInternal, "error body too large");
      error_body_.append(bytes);
    } else if (n > 0) {
      const Clock::time_point now = Clock::now();  // one arrival time for this read's events
      absl::Status st = sse_.Feed(bytes, [&](std::string_view data) { OnEvent(data, now); });
      if (!st.ok()) return FailWith(absl::StatusCode::kInternal, std::string(st.message()));
    }
    if (parser_->is_done()) return Complete();
    ReadBody();
  }

  void OnEvent(std::string_view data, Clock::time_point now) {
    if (data == "[DONE]") {
      if (done_) protocol_error_ = "a second data: [DONE]";
      done_ = true;
      return;
    }
    if (done_) protocol_error_ = "an event after data: [DONE]";
    json j = json::parse(data, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object()) {
      protocol_error_ = "an event that is not a JSON object";
      return;
    }
    if (auto e = j.find("error"); e != j.end() && e->is_object()) {
      // An error after the stream started (the answer's status was already 200).
      stream_error_ = OpenAiErrorCode(e->value("code", std::string()));
      record_.status_message = e->value("message", std::string());
      return;
    }
    if (record_.messages == 0) record_.request_id = j.value("id", std::string());
    ++record_.messages;
    bool content = false, is_final = false;
    if (auto c = j.find("choices"); c != j.end() && c->is_array()) {
      for (const json& choice : *c) {
        // Completions: `text`; chat: `delta.content` (the first chunk's role-only delta has none).
        const json* text = nullptr;
        if (auto t = choice.find("text"); t != choice.end()) text = &*t;
        if (auto d = choice.find("delta"); d != choice.end() && d->is_object()) {
          if (auto t = d->find("content"); t != d->end()) text = &*t;
        }
        if (text != nullptr && text->is_string() && !text->get_ref<const std::string&>().empty()) {
          content = true;
        }
        auto finish = choice.find("finish_reason");
        if (finish != choice.end() && finish->is_string()) {
          is_final = true;
          record_.finish_reason = FinishFromName(finish->get<std::string>());
        }
      }
    }
    if (record_.final_messages > 0 && (content || is_final)) record_.final_was_last = false;
    if (content) {
      record_.message_s.push_back(std::chrono::duration<double>(now - record_.start).count());
      record_.message_tokens.push_back(1);
      ++record_.tokens;
    }
    if (is_final) ++record_.final_messages;
    if (auto u = j.find("usage"); u != j.end() && u->is_object()) {
      record_.usage_completion_tokens = u->value("completion_tokens", int64_t{-1});
    }
  }

  // The whole answer has been read.
  void Complete() {
    if (record_.http_status != 200) {
      json j = json::parse(error_body_, nullptr, /*allow_exceptions=*/false);
      if (j.is_object() && j.contains("error") && j["error"].is_object()) {
        record_.status_message = j["error"].value("message", std::string());
      }
      return Finish(HttpStatusCode(record_.http_status), parser_->keep_alive());
    }
    if (stream_error_) return Finish(*stream_error_, false);
    if (!protocol_error_.empty()) {
      record_.status_message = protocol_error_;
      return Finish(absl::StatusCode::kInternal, false);
    }
    if (!done_ || !sse_.Idle()) {
      record_.status_message = "the stream ended without data: [DONE]";
      return Finish(absl::StatusCode::kInternal, false);
    }
    // A token whose text the server held back (part of a UTF-8 character) comes out in a
    // later chunk: usage tokens beyond the chunks go to the last content chunk.
    if (!record_.message_tokens.empty() && record_.usage_completion_tokens > record_.tokens) {
      record_.message_tokens.back() +=
          static_cast<int32_t>(record_.usage_completion_tokens - record_.tokens);
      record_.tokens = record_.usage_completion_tokens;
    }
    Finish(absl::StatusCode::kOk, parser_->keep_alive());
  }

  void Fail(beast::error_code ec, const char* what) {
    if (cancelled_) return FailWith(absl::StatusCode::kCancelled, "cancelled by the client");
    if (ec == beast::error::timeout) {
      return FailWith(absl::StatusCode::kDeadlineExceeded, "the request timeout passed");
    }
    // As gRPC reports a connection that failed or broke.
    FailWith(absl::StatusCode::kUnavailable, absl::StrCat(what, ": ", ec.message()));
  }

  void FailWith(absl::StatusCode code, std::string message) {
    record_.status_message = std::move(message);
    Finish(code, false);
  }

  void Finish(absl::StatusCode code, bool reuse_connection) {
    if (finished_) return;
    finished_ = true;
    record_.end = Clock::now();
    record_.code = code;
    if (reuse_connection) {
      conn_->stream.expires_never();
      pool_->Put(std::move(conn_));  // before the driver hears of it: its next call may reuse it
    } else {
      beast::error_code ignored;
      conn_->stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
      conn_->stream.close();
    }
    CallDone done = std::move(on_done_);
    done(this, std::move(record_));
  }

  const tcp::resolver::results_type& endpoints_;
  ConnectionPool* const pool_;
  std::unique_ptr<Connection> conn_;                 // null once given back to the pool
  const beast::tcp_stream::executor_type executor_;  // the connection's strand
  http::request<http::string_body> request_;
  CallRecord record_;
  const Clock::duration timeout_;
  CallDone on_done_;

  // On the strand only.
  std::optional<http::response_parser<http::buffer_body>> parser_;
  std::string read_buf_;
  std::string error_body_;
  SseFramer sse_;
  bool done_ = false;  // data: [DONE] seen
  std::optional<absl::StatusCode> stream_error_;
  std::string protocol_error_;
  bool cancelled_ = false;
  bool finished_ = false;
};

class OpenAiTransport : public Transport {
 public:
  OpenAiTransport(const WorkloadSpec& spec, tcp::resolver::results_type endpoints, std::string host)
      : spec_(spec),
        work_(io_.get_executor()),
        endpoints_(std::move(endpoints)),
        host_(std::move(host)) {
    for (size_t i = 0; i < spec.tenants.size(); ++i) {
      pools_.push_back(std::make_unique<ConnectionPool>());
    }
    for (int32_t i = 0; i < spec.client_threads; ++i) threads_.emplace_back([this] { io_.run(); });
  }

  // Only once every call has ended (the driver leaks a transport with calls still open).
  ~OpenAiTransport() override {
    work_.reset();
    for (std::thread& t : threads_) t.join();
    for (auto& p : pools_) p->Clear();
  }

  StreamCall* NewCall(CallRecord record, const LoadRequest& request,
                      const CallDone& on_done) override {
    const int32_t tenant = record.tenant;
    std::unique_ptr<Connection> conn = pools_[tenant]->Take();
    if (conn == nullptr) conn = std::make_unique<Connection>(io_);
    http::request<http::string_body> req{
        http::verb::post, request.chat ? "/v1/chat/completions" : "/v1/completions", 11};
    req.set(http::field::host, host_);
    req.set(http::field::content_type, "application/json");
    req.set(http::field::accept, "text/event-stream");
    const std::string& key = spec_.tenants[tenant].api_key;
    if (!key.empty()) req.set(http::field::authorization, "Bearer " + key);
    req.body() = RequestBody(request);
    req.prepare_payload();
    auto call = std::make_shared<OpenAiCall>(endpoints_, pools_[tenant].get(), std::move(conn),
                                             std::move(req), std::move(record),
                                             spec_.request_timeout_s, on_done);
    call->self_until_start = call;
    return call.get();
  }

 private:
  const WorkloadSpec& spec_;
  asio::io_context io_;  // first: destroyed after every socket bound to it
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  const tcp::resolver::results_type endpoints_;
  const std::string host_;
  std::vector<std::unique_ptr<ConnectionPool>> pools_;
  std::vector<std::thread> threads_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Transport>> MakeOpenAiTransport(const WorkloadSpec& spec) {
  const size_t colon = spec.target.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--target '", spec.target, "': expected HOST:PORT"));
  }
  std::string host = spec.target.substr(0, colon);
  const std::string port = spec.target.substr(colon + 1);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  asio::io_context io;
  tcp::resolver resolver(io);
  beast::error_code ec;
  tcp::resolver::results_type endpoints = resolver.resolve(host, port, ec);
  if (ec || endpoints.empty()) {
    return absl::UnavailableError(
        absl::StrCat("--target '", spec.target, "': cannot resolve: ", ec.message()));
  }
  return std::make_unique<OpenAiTransport>(spec, std::move(endpoints), spec.target);
}

absl::StatusCode HttpStatusCode(int s) {
  switch (s) {
    case 200:
      return absl::StatusCode::kOk;
    case 400:
    case 413:
    case 422:
    case 431:
      return absl::StatusCode::kInvalidArgument;
    case 401:
      return absl::StatusCode::kUnauthenticated;
    case 403:
      return absl::StatusCode::kPermissionDenied;
    case 404:
    case 405:
    case 501:
      return absl::StatusCode::kUnimplemented;
    case 408:
    case 504:
      return absl::StatusCode::kDeadlineExceeded;
    case 429:
      return absl::StatusCode::kResourceExhausted;
    case 503:
      return absl::StatusCode::kUnavailable;
    default:
      return s >= 500 ? absl::StatusCode::kInternal : absl::StatusCode::kUnknown;
  }
}

absl::StatusCode OpenAiErrorCode(const std::string& code) {
  if (code == "rate_limit_exceeded") return absl::StatusCode::kResourceExhausted;
  if (code == "unavailable") return absl::StatusCode::kUnavailable;
  if (code == "timeout") return absl::StatusCode::kDeadlineExceeded;
  if (code == "invalid_parameter") return absl::StatusCode::kInvalidArgument;
  if (code == "invalid_api_key") return absl::StatusCode::kUnauthenticated;
  if (code == "permission_denied") return absl::StatusCode::kPermissionDenied;
  return absl::StatusCode::kInternal;
}

}  // namespace dsinfer::loadgen
