// The ops HTTP endpoint on its own thread: /metrics (Prometheus text 0.0.4), /healthz (200 unless
// the liveness callback reports a failure only a restart cures) and /readyz (200 only when the
// readiness callback says so).
// It never logs requests and never sees inference traffic. Built on the event-driven HttpServer
// (src/http): a slow, silent or flooding client never delays a probe.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "src/config/server_config.h"
#include "src/http/http_server.h"

namespace dsinfer {

class MetricRegistry;

struct Readiness {
  bool ready = false;
  std::string reason;  // short, shown in the 503 body: "loading", "draining", "worker down"
};

class MetricsHttpServer {
 public:
  // `registry` must outlive the server. `readiness` runs on the HTTP thread for each /readyz
  // request: keep it cheap and thread-safe (read an atomic). A null callback means "ready".
  // `liveness` (optional, same rules): not "ready" means the process should be restarted (a
  // sharded model that lost a rank), and /healthz answers 503 with the reason.
  // `limits`: the `http:` section of the server config (timeouts, sizes, connection caps).
  MetricsHttpServer(const MetricRegistry* registry, std::function<Readiness()> readiness,
                    std::function<Readiness()> liveness = nullptr, HttpConfig limits = {});
  ~MetricsHttpServer();  // Stop()s
  MetricsHttpServer(const MetricsHttpServer&) = delete;
  MetricsHttpServer& operator=(const MetricsHttpServer&) = delete;

  // Before Start: serve HTTPS (HttpServer::EnableTls). Probes then need `scheme: HTTPS`.
  absl::Status EnableTls(const HttpTlsOptions& tls);
  // Binds `listen` ("host:port", "[v6]:port"; port 0 picks a free one) and starts serving.
  // Returns once the listener accepts connections; an error if binding fails or already started.
  absl::Status Start(std::string_view listen);
  // The bound port (after Start).
  int port() const;
  // Stops accepting, finishes in-flight requests and joins the thread. Idempotent.
  void Stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dsinfer
