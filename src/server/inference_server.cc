#include "src/server/inference_server.h"

#include <grpc/grpc.h>
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <limits>
#include <optional>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "src/core/status_macros.h"
#include "src/server/library_logs.h"
#include "src/server/openai_api.h"
#include "src/api/model_internal.h"
#include "src/server/tls_files.h"
#include "src/serving/serving_model.h"

namespace dsinfer {
namespace {

// The client-certificate rule, decided once for gRPC and HTTP: with a client CA, certificates
// are verified against it whenever presented; required only with require_client_cert (API-key
// clients may then still connect without one).
HttpTlsOptions::ClientCerts ClientCertRule(const TlsConfig& tls, const TlsMaterial& m) {
  if (m.client_ca.empty()) return HttpTlsOptions::ClientCerts::kNone;
  return tls.require_client_cert ? HttpTlsOptions::ClientCerts::kRequired
                                 : HttpTlsOptions::ClientCerts::kOptional;
}

std::shared_ptr<grpc::ServerCredentials> GrpcCredentials(const TlsConfig& tls,
                                                         const TlsMaterial* m) {
  if (m == nullptr) return grpc::InsecureServerCredentials();
  grpc_ssl_client_certificate_request_type type = GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE;
  switch (ClientCertRule(tls, *m)) {
    case HttpTlsOptions::ClientCerts::kNone:
      break;
    case HttpTlsOptions::ClientCerts::kOptional:
      type = GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY;
      break;
    case HttpTlsOptions::ClientCerts::kRequired:
      type = GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
      break;
  }
  grpc::SslServerCredentialsOptions options(type);
  options.pem_root_certs = m->client_ca;
  options.pem_key_cert_pairs.push_back({m->private_key, m->cert_chain});
  return grpc::SslServerCredentials(options);
}

// The same files and client-certificate rule as gRPC. The ops listener never asks for client
// certificates: the kubelet's HTTPS probes cannot present one.
HttpTlsOptions HttpTls(const TlsConfig& tls, const TlsMaterial& m, bool api) {
  HttpTlsOptions o;
  o.cert_chain_pem = m.cert_chain;
  o.private_key_pem = m.private_key;
  if (api) {
    o.client_ca_pem = m.client_ca;
    o.client_certs = ClientCertRule(tls, m);
  }
  return o;
}

}  // namespace

absl::StatusOr<std::unique_ptr<InferenceServer>> InferenceServer::Create(ServerConfig config,
                                                                         ModelConfig model) {
  ASSIGN_OR_RETURN(LogLevel level, ParseLogLevel(config.log_level));
  std::unique_ptr<InferenceServer> s(new InferenceServer(std::move(config), std::move(model)));
  s->log_ = std::make_unique<JsonLog>(level);
  ServerMetricsOptions mo;
  for (const TenantConfig& t : s->config_.tenants) mo.tenants.push_back(t.id);
  mo.model_name = std::filesystem::path(s->config_.model_path).filename().string();
  if (mo.model_name.empty()) {
    mo.model_name = std::filesystem::path(s->config_.model_path).parent_path().filename().string();
  }
  s->metrics_model_name_ = mo.model_name;
  mo.dtype = s->config_.dtype;
  mo.backend = s->config_.backend;
  for (int64_t l = 0; l < s->model_.num_hidden_layers; ++l) {
    if (s->model_.IsMoeLayer(l)) mo.moe_layers.push_back(static_cast<int>(l));
  }
  mo.num_experts = static_cast<int>(s->model_.n_routed_experts);
  s->metrics_ = std::make_unique<ServerMetrics>(mo);
  s->observer_ = std::make_unique<ServerObserver>(s->metrics_.get(), s->log_.get());
  s->service_ = std::make_unique<InferenceService>(s->config_, s->metrics_.get(), s->log_.get());
  RouteLibraryLogs(s->log_.get());
  return s;
}

InferenceServer::InferenceServer(ServerConfig config, ModelConfig model)
    : config_(std::move(config)), model_(std::move(model)) {}

InferenceServer::~InferenceServer() {
  Drain(0);
  UnrouteLibraryLogs(log_.get());
}

int InferenceServer::http_port() const { return http_ ? http_->port() : 0; }
int InferenceServer::openai_port() const { return openai_http_ ? openai_http_->port() : 0; }

void InferenceServer::SetHealth(bool serving) {
  if (grpc_server_ == nullptr) return;
  grpc::HealthCheckServiceInterface* health = grpc_server_->GetHealthCheckService();
  if (health == nullptr) return;
  health->SetServingStatus(v1::Inference::service_full_name(), serving);
  health->SetServingStatus(serving);  // every service known to it, and "" (the whole server)
}

absl::Status InferenceServer::StartListeners() {
  InferenceService* service = service_.get();
  http_ = std::make_unique<MetricsHttpServer>(&metrics_->registry(), [service] {
    const ServingState s = service->state();
    if (s == ServingState::kServing) {
      if (absl::Status h = service->CheckServing(false); !h.ok())
        return Readiness{false, std::string(h.message())};
    }
    return Readiness{s == ServingState::kServing, ServingStateName(s)};
  }, [service] {
    // A sharded model that lost a rank never recovers in place: ask for a restart (with a
    // LeaderWorkerSet the whole group is recreated).
    // engine() is set before the state leaves kLoading (release/acquire through state()).
    if (service->state() == ServingState::kLoading) return Readiness{true, ""};
    if (absl::Status h = service->BackendHealth(); !h.ok())
      return Readiness{false, std::string(h.message())};
    return Readiness{true, ""};
  }, config_.http);
  // The TLS files are read and checked once (tls_files.h); every listener uses this copy.
  std::optional<TlsMaterial> tls;
  if (config_.tls.enabled) {
    ASSIGN_OR_RETURN(tls, LoadTlsFiles(config_.tls));
  }
  if (tls && config_.tls.on_http_listen) {
    RETURN_IF_ERROR(http_->EnableTls(HttpTls(config_.tls, *tls, /*api=*/false)));
  }
  RETURN_IF_ERROR(http_->Start(config_.http_listen));
  if (!config_.openai_listen.empty()) {
    // Its own listener and connection caps: API clients never take the probes' slots.
    openai_ = std::make_unique<OpenAiApi>(service_.get(), metrics_model_name_);
    openai_http_ = std::make_unique<HttpServer>("OpenAI API HTTP server", config_.http);
    openai_->Register(openai_http_.get());
    if (tls) {
      if (absl::Status st = openai_http_->EnableTls(HttpTls(config_.tls, *tls, /*api=*/true));
          !st.ok()) {
        return absl::InvalidArgumentError(absl::StrCat("openai_listen: ", st.message()));
      }
    }
    if (absl::Status st = openai_http_->Start(config_.openai_listen); !st.ok()) {
      return absl::UnavailableError(absl::StrCat("openai_listen: ", st.message()));
    }
  }

  std::shared_ptr<grpc::ServerCredentials> creds =
      GrpcCredentials(config_.tls, tls ? &*tls : nullptr);
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  // No SO_REUSEPORT: a second server on the same port is an error, not a silent traffic split.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.AddListeningPort(config_.grpc_listen, creds, &grpc_port_);
  builder.RegisterService(service_.get());
  grpc_server_ = builder.BuildAndStart();
  if (grpc_server_ == nullptr || grpc_port_ == 0) {
    grpc_server_.reset();
    return absl::UnavailableError(
        absl::StrCat("grpc_listen: cannot listen on ", config_.grpc_listen,
                     " (the port is in use or the address is not local)"));
  }
  SetHealth(false);  // loading
  log_->Write(LogLevel::kInfo, "listening",
              {{"grpc_port", grpc_port_},
               {"http_port", http_->port()},
               {"openai_port", openai_port()},
               {"tls", config_.tls.enabled},
               {"mtls", config_.tls.enabled && !config_.tls.client_ca_file.empty()},
               {"http_tls", config_.tls.enabled && config_.tls.on_http_listen}});
  return absl::OkStatus();
}

absl::Status InferenceServer::StartEngine(std::unique_ptr<ModelRunner> runner,
                                          std::unique_ptr<Tokenizer> tokenizer,
                                          std::optional<chat::ChatFormat> chat_format) {
  if (api_model_ != nullptr) return absl::FailedPreconditionError("the engine is already running");
  if (!chat_format.has_value()) {
    ASSIGN_OR_RETURN(chat_format, chat::ChatFormatOfModel(config_.model_path, tokenizer.get()));
  }
  if (tokenizer != nullptr) {
    nlohmann::json fields = {{"format", std::string(chat::ChatFormatName(chat_format->kind))}};
    if (!chat_format->note.empty()) fields["note"] = chat_format->note;
    log_->Write(chat_format->note.empty() ? LogLevel::kInfo : LogLevel::kWarning, "chat_format",
                std::move(fields));
  }
  ServingModel m{.runner = std::move(runner),
                 .tokenizer = std::move(tokenizer),
                 .chat_format = *std::move(chat_format)};
  ASSIGN_OR_RETURN(api_model_, api::ModelAccess::Start(config_, std::move(m), observer_.get()));
  service_->AttachModel(api_model_.get());
  service_->SetState(ServingState::kServing);
  SetHealth(true);
  backend_watch_ = std::thread([this] { WatchBackend(); });
  log_->Write(LogLevel::kInfo, "serving", {{"grpc_port", grpc_port_}});
  return absl::OkStatus();
}

void InferenceServer::WatchBackend() {
  std::unique_lock<std::mutex> lock(watch_mu_);
  while (!watch_cv_.wait_for(lock, std::chrono::milliseconds(200), [&] { return watch_stop_; })) {
    if (service_->state() != ServingState::kServing) continue;
    if (service_->BackendHealth().ok()) continue;
    SetHealth(false);  // the backend never recovers in place
    return;
  }
}

int64_t InferenceServer::Drain(double grace_seconds) {
  std::lock_guard<std::mutex> lock(drain_mu_);
  if (stopped_) return 0;
  stopped_ = true;
  {
    std::lock_guard<std::mutex> watch(watch_mu_);
    watch_stop_ = true;
  }
  watch_cv_.notify_all();
  if (backend_watch_.joinable()) backend_watch_.join();
  service_->SetState(ServingState::kDraining);
  SetHealth(false);
  int64_t cut = 0;
  if (Engine* engine = this->engine(); engine != nullptr) {
    log_->Write(LogLevel::kInfo, "draining", {{"grace_seconds", grace_seconds}});
    engine->StartDraining();
    const auto until = std::chrono::steady_clock::now() +
                       std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                           std::chrono::duration<double>(std::max(0.0, grace_seconds)));
    while (!engine->Idle() && std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (!engine->Idle()) {
      const SchedulerStats st = engine->Stats();
      cut = st.running;
      for (int32_t w : st.waiting) cut += w;
    }
    // Ends whatever is still live with UNAVAILABLE (the client may retry elsewhere).
    engine->Shutdown();
  }
  if (grpc_server_ != nullptr) {
    // Streams still writing to slow clients get a moment, then are cancelled.
    grpc_server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
    grpc_server_->Wait();
  }
  // Streams have had their last events (the engine ended every request); then the API stops.
  if (openai_http_ != nullptr) openai_http_->Stop();
  if (http_ != nullptr) http_->Stop();
  service_->SetState(ServingState::kStopped);
  log_->Write(LogLevel::kInfo, "stopped", {{"cut_off_requests", cut}});
  log_->Flush();
  return cut;
}

}  // namespace dsinfer
