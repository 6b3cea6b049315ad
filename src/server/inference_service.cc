#include "src/server/inference_service.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "src/kv_cache/block_pool.h"
#include "src/server/generate_reactor.h"
#include "src/server/grpc_status.h"

namespace dsinfer {
namespace {

// "the model's ranks are no longer complete: gloo/... 10.0.0.5:29500" -> the part before ": ".
std::string PublicSummary(absl::string_view message) {
  const size_t colon = message.find(": ");
  absl::string_view summary = colon == absl::string_view::npos ? message : message.substr(0, colon);
  if (summary.size() > 120) summary = "the model backend cannot run steps";
  return std::string(summary);
}

const char* ArchitectureOf(const std::string& model_type) {
  if (model_type == "qwen2") return "Qwen2ForCausalLM";
  if (model_type == "llama") return "LlamaForCausalLM";
  return model_type == "deepseek_v2" ? "DeepseekV2ForCausalLM" : "DeepseekV3ForCausalLM";
}

grpc::ServerUnaryReactor* FinishUnary(grpc::CallbackServerContext* context,
                                      const absl::Status& status) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

}  // namespace

const char* ServingStateName(ServingState s) {
  switch (s) {
    case ServingState::kLoading:
      return "loading";
    case ServingState::kServing:
      return "serving";
    case ServingState::kDraining:
      return "draining";
    case ServingState::kStopped:
      return "stopped";
  }
  return "stopped";
}

Priority EffectivePriority(v1::Priority requested, Priority ceiling) {
  std::optional<Priority> p;
  if (requested == v1::PRIORITY_EMERGENCY) p = Priority::kEmergency;
  if (requested == v1::PRIORITY_BATCH) p = Priority::kBatch;
  if (requested == v1::PRIORITY_INTERACTIVE) p = Priority::kInteractive;
  return EffectivePriority(p, ceiling);
}

InferenceService::InferenceService(const ServerConfig& config, ServerMetrics* metrics, JsonLog* log)
    : auth_(config),
      metrics_(metrics),
      log_(log),
      generate_parser_(v1::GenerateRequest::descriptor()),
      tokenize_parser_(v1::TokenizeRequest::descriptor()) {}

void InferenceService::AttachModel(api::Model* model) {
  model_ = model;
  const api::ModelCore& c = core();
  const Engine* engine = c.engine.get();
  text_ = c.text;
  limits_ = c.limits;
  const ModelConfig& mc = engine->model_config();
  model_info_.set_model_type(mc.model_type);
  model_info_.set_architecture(ArchitectureOf(mc.model_type));
  model_info_.set_context_length(static_cast<uint32_t>(mc.max_position_embeddings));
  model_info_.set_dtype(engine->runner().dtype_name());
  model_info_.set_backend(engine->runner().backend_name());
  model_info_.set_vocab_size(static_cast<uint32_t>(mc.vocab_size));
  model_info_.set_num_layers(static_cast<uint32_t>(mc.num_hidden_layers));
  model_info_.set_num_routed_experts(static_cast<uint32_t>(mc.n_routed_experts));
  model_info_.set_tensor_parallel_size(engine->runner().tensor_parallel_size());
  model_info_.set_expert_parallel_size(engine->runner().expert_parallel_size());
  model_info_.set_kv_cache_blocks(static_cast<uint32_t>(engine->runner().num_kv_blocks()));
  model_info_.set_kv_block_size(static_cast<uint32_t>(kKvBlockSize));
}

absl::Status InferenceService::CheckServing(bool draining_ok) const {
  switch (state()) {
    case ServingState::kServing:
      // A sharded model whose ranks are no longer complete cannot serve: say so at once.
      return BackendHealth();
    case ServingState::kLoading:
      return absl::UnavailableError("server is loading the model; retry shortly");
    case ServingState::kDraining:
      if (draining_ok) return absl::OkStatus();
      return absl::UnavailableError("server is draining; retry on another replica");
    case ServingState::kStopped:
      break;
  }
  return absl::UnavailableError("server is stopping");
}

absl::Status InferenceService::BackendHealth() const {
  if (model_ == nullptr || state() == ServingState::kLoading) return absl::OkStatus();
  absl::Status health = engine()->runner().Health();
  return health.ok() ? health : BackendDown(health);
}

absl::Status InferenceService::BackendDown(const absl::Status& health) const {
  // The details (files, lines, peer addresses of the collectives) go to the log, once; callers
  // get the summary before the first ": " of the backend's message.
  if (!backend_down_logged_.exchange(true) && log_ != nullptr) {
    log_->Write(LogLevel::kError, "backend_unavailable",
                {{"code", absl::StatusCodeToString(health.code())},
                 {"detail", std::string(health.message())}});
  }
  return absl::UnavailableError(
      absl::StrCat(PublicSummary(health.message()), "; retry on another replica"));
}

void InferenceService::RecordRejection(const TenantConfig* tenant, Priority priority,
                                       const absl::Status& status,
                                       const std::string& client_request_id) const {
  const RejectionReason reason = status.code() == absl::StatusCode::kUnavailable
                                     ? RejectionReason::kDraining
                                     : RejectionReason::kInvalidRequest;
  if (metrics_ != nullptr) {
    metrics_->Rejections(reason).Inc();
    if (tenant != nullptr) {
      if (const TenantMetrics* t = metrics_->Tenant(tenant->id)) {
        t->Requests(priority, RequestOutcome::kRejected).Inc();
      }
    }
  }
  if (log_ != nullptr && log_->Enabled(LogLevel::kInfo)) {
    nlohmann::json fields = {{"tenant", tenant != nullptr ? tenant->id : ""},
                             {"priority", std::string(PriorityName(priority))},
                             {"code", absl::StatusCodeToString(status.code())}};
    if (std::string field = FieldOfStatus(status); !field.empty()) fields["field"] = field;
    if (!client_request_id.empty()) fields["client_request_id"] = client_request_id;
    log_->Write(LogLevel::kInfo, "request_rejected", std::move(fields));
  }
}

absl::StatusOr<const TenantConfig*> InferenceService::Authenticate(
    grpc::CallbackServerContext* context, const char* method) const {
  return Authenticate(CredentialsOf(*context), method, context->peer());
}

absl::StatusOr<const TenantConfig*> InferenceService::Authenticate(
    const CallCredentials& credentials, const char* method, const std::string& peer) const {
  absl::StatusOr<const TenantConfig*> tenant = auth_.Authenticate(credentials);
  if (tenant.ok()) return tenant;
  if (metrics_ != nullptr) metrics_->Rejections(RejectionReason::kUnauthenticated).Inc();
  if (log_ != nullptr && log_->Enabled(LogLevel::kWarning)) {
    log_->Write(LogLevel::kWarning, "auth_failed",
                {{"method", method},
                 {"code", absl::StatusCodeToString(tenant.status().code())},
                 {"peer", peer}});
  }
  return tenant;
}

grpc::ServerWriteReactor<grpc::ByteBuffer>* InferenceService::Generate(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request) {
  return GenerateReactor::Start(this, context, *request);
}

grpc::ServerUnaryReactor* InferenceService::Tokenize(grpc::CallbackServerContext* context,
                                                     const grpc::ByteBuffer* request,
                                                     grpc::ByteBuffer* response) {
  absl::StatusOr<const TenantConfig*> tenant = Authenticate(context, "Tokenize");
  if (!tenant.ok()) return FinishUnary(context, tenant.status());
  if (absl::Status st = CheckServing(/*draining_ok=*/true); !st.ok())
    return FinishUnary(context, st);
  v1::TokenizeRequest req;
  if (absl::Status st = tokenize_parser_.Parse(*request, &req); !st.ok()) {
    return FinishUnary(context, st);
  }
  absl::StatusOr<std::vector<int32_t>> ids = TokenizeRequestTokens(req, text_);
  if (!ids.ok()) return FinishUnary(context, ids.status());
  v1::TokenizeResponse out;
  out.mutable_token_ids()->Assign(ids->begin(), ids->end());
  const std::string bytes = out.SerializeAsString();
  grpc::Slice slice(bytes);
  *response = grpc::ByteBuffer(&slice, 1);
  return FinishUnary(context, absl::OkStatus());
}

grpc::ServerUnaryReactor* InferenceService::Detokenize(grpc::CallbackServerContext* context,
                                                       const v1::DetokenizeRequest* request,
                                                       v1::DetokenizeResponse* response) {
  absl::StatusOr<const TenantConfig*> tenant = Authenticate(context, "Detokenize");
  if (!tenant.ok()) return FinishUnary(context, tenant.status());
  if (absl::Status st = CheckServing(/*draining_ok=*/true); !st.ok())
    return FinishUnary(context, st);
  const Tokenizer* tokenizer = text_.tokenizer;
  if (tokenizer == nullptr) {
    return FinishUnary(context,
                       absl::InvalidArgumentError("token_ids: the served model has no tokenizer"));
  }
  if (request->token_ids_size() > limits_.context_length) {
    return FinishUnary(context, absl::InvalidArgumentError(absl::StrCat(
                                    "token_ids: ", request->token_ids_size(),
                                    " ids; at most the context length ", limits_.context_length)));
  }
  for (int i = 0; i < request->token_ids_size(); ++i) {
    const int32_t id = request->token_ids(i);
    if (id < 0 || id >= tokenizer->vocab_size()) {
      return FinishUnary(context, absl::InvalidArgumentError(absl::StrCat(
                                      "token_ids[", i, "]: ", id, " is outside the vocabulary [0, ",
                                      tokenizer->vocab_size(), ")")));
    }
  }
  absl::StatusOr<std::string> text =
      tokenizer->Decode(absl::MakeConstSpan(request->token_ids().data(), request->token_ids_size()),
                        request->skip_special_tokens());
  if (!text.ok()) {
    return FinishUnary(
        context, absl::InvalidArgumentError(absl::StrCat("token_ids: ", text.status().message())));
  }
  response->set_text(*std::move(text));
  return FinishUnary(context, absl::OkStatus());
}

grpc::ServerUnaryReactor* InferenceService::ModelInfo(grpc::CallbackServerContext* context,
                                                      const v1::ModelInfoRequest* request,
                                                      v1::ModelInfoResponse* response) {
  absl::StatusOr<const TenantConfig*> tenant = Authenticate(context, "ModelInfo");
  if (!tenant.ok()) return FinishUnary(context, tenant.status());
  if (absl::Status st = CheckServing(/*draining_ok=*/true); !st.ok())
    return FinishUnary(context, st);
  *response = model_info_;
  return FinishUnary(context, absl::OkStatus());
}

}  // namespace dsinfer
