// MetricsHttpServer on HttpServer (src/http): one event-loop thread, handlers answer at once.
#include "src/metrics/http_server.h"

#include "absl/strings/str_cat.h"
#include "src/http/http_server.h"
#include "src/metrics/registry.h"

namespace dsinfer {

struct MetricsHttpServer::Impl {
  const MetricRegistry* registry;
  std::function<Readiness()> readiness;
  std::function<Readiness()> liveness;
  std::unique_ptr<HttpServer> server;
};

namespace {

// A probe answer: 200 with `ok_text`, or 503 with `prefix` and the reason.
HttpResponse Probe(const std::function<Readiness()>& check, const char* ok_text,
                   const char* prefix, const char* unknown) {
  const Readiness r = check ? check() : Readiness{true, ""};
  if (r.ready) return HttpResponse{200, "text/plain", ok_text, {}};
  return HttpResponse{503, "text/plain",
                      absl::StrCat(prefix, r.reason.empty() ? unknown : r.reason, "\n"), {}};
}

}  // namespace

MetricsHttpServer::MetricsHttpServer(const MetricRegistry* registry,
                                     std::function<Readiness()> readiness,
                                     std::function<Readiness()> liveness, HttpConfig limits)
    : impl_(std::make_unique<Impl>()) {
  impl_->registry = registry;
  impl_->readiness = std::move(readiness);
  impl_->liveness = std::move(liveness);
  // Scrapes and probes are few and small; the body limit stays whatever the config says, but
  // every route here is a GET.
  impl_->server = std::make_unique<HttpServer>("metrics HTTP server", limits);
  HttpServer& s = *impl_->server;
  Impl* impl = impl_.get();
  s.Route("GET", "/metrics", [impl](std::shared_ptr<HttpExchange> ex) {
    ex->Respond(HttpResponse{200, std::string(kPrometheusTextContentType),
                             impl->registry->Render(), {}});
  });
  // Both probes only read atomics: they answer on the event loop, never waiting on anything.
  s.Route("GET", "/healthz", [impl](std::shared_ptr<HttpExchange> ex) {
    ex->Respond(Probe(impl->liveness, "ok\n", "unhealthy: ", "unknown"));
  });
  s.Route("GET", "/readyz", [impl](std::shared_ptr<HttpExchange> ex) {
    ex->Respond(Probe(impl->readiness, "ready\n", "not ready: ", "unknown"));
  });
}

MetricsHttpServer::~MetricsHttpServer() { Stop(); }

absl::Status MetricsHttpServer::EnableTls(const HttpTlsOptions& tls) {
  return impl_->server->EnableTls(tls);
}

absl::Status MetricsHttpServer::Start(std::string_view listen) {
  return impl_->server->Start(listen);
}

int MetricsHttpServer::port() const { return impl_->server->port(); }

void MetricsHttpServer::Stop() { impl_->server->Stop(); }

}  // namespace dsinfer
