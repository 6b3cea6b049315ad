// MetricsHttpServer on cpp-httplib: a listener thread plus a two-thread pool for requests.
#include "src/metrics/http_server.h"

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "src/metrics/registry.h"

namespace dsinfer {

struct MetricsHttpServer::Impl {
  const MetricRegistry* registry;
  std::function<Readiness()> readiness;
  std::function<Readiness()> liveness;
  httplib::Server server;
  std::thread thread;
  std::atomic<bool> listener_done{false};
  int port = 0;
  bool started = false;
};

namespace {

// "host:port" or "[v6]:port" -> host without brackets, port. False when malformed.
bool SplitListen(std::string_view listen, std::string* host, int* port) {
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

}  // namespace

MetricsHttpServer::MetricsHttpServer(const MetricRegistry* registry,
                                     std::function<Readiness()> readiness,
                                     std::function<Readiness()> liveness)
    : impl_(std::make_unique<Impl>()) {
  impl_->registry = registry;
  impl_->readiness = std::move(readiness);
  impl_->liveness = std::move(liveness);
  httplib::Server& s = impl_->server;
  // Scrapes and probes are few and small: two workers, short timeouts, tiny request bodies.
  s.new_task_queue = [] { return new httplib::ThreadPool(2); };
  s.set_read_timeout(5, 0);
  s.set_write_timeout(10, 0);
  s.set_payload_max_length(4096);
  // SO_REUSEADDR only: httplib's default adds SO_REUSEPORT, which would let a second server
  // (say, a stale replica) bind the same port and silently take half the scrapes and probes.
  s.set_socket_options([](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  s.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
    res.status = 500;
    res.set_content("internal error\n", "text/plain");
  });
  Impl* impl = impl_.get();
  s.Get("/metrics", [impl](const httplib::Request&, httplib::Response& res) {
    res.set_header("Cache-Control", "no-store");
    res.set_content(impl->registry->Render(), std::string(kPrometheusTextContentType).c_str());
  });
  s.Get("/healthz", [impl](const httplib::Request&, httplib::Response& res) {
    res.set_header("Cache-Control", "no-store");
    Readiness r = impl->liveness ? impl->liveness() : Readiness{true, ""};
    if (r.ready) {
      res.set_content("ok\n", "text/plain");
    } else {
      res.status = 503;
      res.set_content(absl::StrCat("unhealthy: ", r.reason, "\n"), "text/plain");
    }
  });
  s.Get("/readyz", [impl](const httplib::Request&, httplib::Response& res) {
    res.set_header("Cache-Control", "no-store");
    Readiness r = impl->readiness ? impl->readiness() : Readiness{true, ""};
    if (r.ready) {
      res.set_content("ready\n", "text/plain");
    } else {
      res.status = 503;
      res.set_content(absl::StrCat("not ready: ", r.reason.empty() ? "unknown" : r.reason, "\n"),
                      "text/plain");
    }
  });
}

MetricsHttpServer::~MetricsHttpServer() { Stop(); }

absl::Status MetricsHttpServer::Start(std::string_view listen) {
  Impl& m = *impl_;
  if (m.started) return absl::FailedPreconditionError("metrics HTTP server already started");
  std::string host;
  int port = 0;
  if (!SplitListen(listen, &host, &port)) {
    return absl::InvalidArgumentError(
        absl::StrCat("metrics HTTP listen address \"", std::string(listen), "\" is not host:port"));
  }
  if (port == 0) {
    port = m.server.bind_to_any_port(host);
    if (port < 0) port = -1;
  } else if (!m.server.bind_to_port(host, port)) {
    port = -1;
  }
  if (port < 0) {
    return absl::UnavailableError(
        absl::StrCat("metrics HTTP server cannot bind ", std::string(listen)));
  }
  m.port = port;
  m.started = true;
  m.listener_done = false;
  m.thread = std::thread([&m] {
    m.server.listen_after_bind();
    m.listener_done = true;
  });
  // httplib's stop() is a no-op until the accept loop runs; wait for it so Stop() cannot hang.
  while (!m.server.is_running() && !m.listener_done) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  if (m.listener_done) {
    m.thread.join();
    m.started = false;
    return absl::UnavailableError(
        absl::StrCat("metrics HTTP server on ", std::string(listen), " stopped at once"));
  }
  return absl::OkStatus();
}

int MetricsHttpServer::port() const { return impl_->port; }

void MetricsHttpServer::Stop() {
  Impl& m = *impl_;
  if (!m.started) return;
  m.server.stop();
  if (m.thread.joinable()) m.thread.join();
  m.started = false;
}

}  // namespace dsinfer
