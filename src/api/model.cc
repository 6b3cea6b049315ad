// The embedding API over the serving layer: Model::Load goes through the same model loading and
// engine start as `dsinfer serve` (src/serving/serving_model.h); Submit validates as the server
// does and hands the request to the same engine. See include/dsinfer/README.md.
#include "dsinfer/model.h"

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "absl/strings/cord.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "src/api/api_options.h"
#include "src/config/model_config.h"
#include "src/core/status_macros.h"
#include "src/kv_cache/block_pool.h"
#include "src/serving/serving_model.h"

namespace dsinfer::api {

// Declared after the tokenizer, the engine is destroyed first (it holds a pointer to it).
struct ModelCore {
  ServerConfig config;
  RequestLimits limits;
  ModelInfo info;
  std::unique_ptr<Tokenizer> tokenizer;
  ServingText text;  // the tokenizer above and the model's chat format
  std::unique_ptr<Engine> engine;
};

const char* FinishReasonName(FinishReason reason) {
  switch (reason) {
    case FinishReason::kStop:
      return "stop";
    case FinishReason::kLength:
      return "length";
    case FinishReason::kCancelled:
      return "cancelled";
  }
  return "unknown";
}

namespace {

constexpr char kRetryAfterUrl[] = "type.dsinfer.api/retry_after_seconds";

absl::Status WithRetryHint(absl::Status st, double retry_after_seconds) {
  if (st.code() == absl::StatusCode::kResourceExhausted && retry_after_seconds > 0) {
    st.SetPayload(kRetryAfterUrl, absl::Cord(absl::StrCat(retry_after_seconds)));
  }
  return st;
}

FinishReason ApiFinish(dsinfer::FinishReason f) {
  switch (f) {
    case dsinfer::FinishReason::kLength:
      return FinishReason::kLength;
    case dsinfer::FinishReason::kCancelled:
      return FinishReason::kCancelled;
    default:
      return FinishReason::kStop;
  }
}

Usage ApiUsage(const dsinfer::Usage& u) {
  return {.prompt_tokens = u.prompt_tokens,
          .completion_tokens = u.completion_tokens,
          .cached_tokens = u.cached_tokens,
          .queue_seconds = u.queue_seconds,
          .time_to_first_token_seconds = u.time_to_first_token_seconds,
          .total_seconds = u.total_seconds};
}

// An admission refusal reaches the sink on the thread that called Engine::Submit, before it
// returns; Submit returns it as its status instead of calling back. No other event can arrive on
// that thread while Submit runs (the engine thread is either another thread or this one, busy).
struct SubmitCall {
  std::thread::id thread = std::this_thread::get_id();
  std::atomic<bool> submitting{true};
  absl::Status refused;
};

}  // namespace

std::optional<double> RetryAfterSeconds(const absl::Status& status) {
  if (status.code() != absl::StatusCode::kResourceExhausted) return std::nullopt;
  const auto hint = status.GetPayload(kRetryAfterUrl);  // absl::optional<absl::Cord>
  double seconds = 0;
  if (!hint.has_value() || !absl::SimpleAtod(std::string(*hint), &seconds)) return std::nullopt;
  return seconds;
}

void RequestHandle::Cancel() const {
  if (std::shared_ptr<ModelCore> core = core_.lock(); core != nullptr && core->engine != nullptr) {
    core->engine->Cancel(id_);
  }
}

Model::Model(std::shared_ptr<ModelCore> core) : core_(std::move(core)) {}

Model::~Model() {
  // Live requests hear UNAVAILABLE now, while their callbacks' state is surely alive.
  if (core_->engine != nullptr) core_->engine->Shutdown();
}

absl::StatusOr<std::unique_ptr<Model>> Model::Load(const LoadOptions& options) {
  auto core = std::make_shared<ModelCore>();
  ASSIGN_OR_RETURN(core->config, api_internal::ServerConfigFromOptions(options));
  absl::StatusOr<ModelConfig> model = LoadModelConfig(options.model_path);
  if (!model.ok() && model.status().code() == absl::StatusCode::kNotFound) {
    return absl::NotFoundError(absl::StrCat("model_path: ", model.status().message()));
  }
  RETURN_IF_ERROR(model.status());
  ServingModelHooks hooks{.progress = options.progress,
                          .rendezvous = "",
                          .worker_executable = options.parallel.worker_executable};
  ASSIGN_OR_RETURN(ServingModel m, LoadServingModel(core->config, model->max_position_embeddings,
                                                    std::move(hooks)));
  const ModelRunner& runner = *m.runner;
  core->limits.vocab_size = model->vocab_size;
  core->limits.context_length = model->max_position_embeddings;
  core->limits.kv_capacity_tokens = static_cast<int64_t>(runner.num_kv_blocks()) * kKvBlockSize;
  core->info = {.model_type = model->model_type,
                .backend = runner.backend_name(),
                .dtype = runner.dtype_name(),
                .vocab_size = model->vocab_size,
                .context_length = model->max_position_embeddings,
                .kv_cache_tokens = core->limits.kv_capacity_tokens,
                .has_tokenizer = m.tokenizer != nullptr};
  core->tokenizer = std::move(m.tokenizer);
  core->text.tokenizer = core->tokenizer.get();
  core->text.chat_format = std::move(m.chat_format);
  ASSIGN_OR_RETURN(core->engine, Engine::Create(std::move(m.runner), core->tokenizer.get(),
                                                ServingEngineOptions(core->config)));
  return std::unique_ptr<Model>(new Model(std::move(core)));
}

absl::StatusOr<RequestHandle> Model::Submit(const Request& request, Callbacks callbacks) {
  ASSIGN_OR_RETURN(EngineRequest e, api_internal::EngineRequestFromApi(
                                        request, core_->text, core_->limits));
  if (request.timeout_seconds > 0) e.deadline = core_->engine->Now() + request.timeout_seconds;
  auto call = std::make_shared<SubmitCall>();
  EventSink sink = [call, cb = std::move(callbacks)](EngineEvent ev) {
    if (ev.last() && !ev.status.ok() && call->submitting.load() &&
        std::this_thread::get_id() == call->thread) {
      call->refused = WithRetryHint(std::move(ev.status), ev.retry_after_seconds);
      return;
    }
    if (cb.on_delta && (!ev.token_ids.empty() || !ev.text.empty())) {
      cb.on_delta(Delta{.token_ids = std::move(ev.token_ids), .text = std::move(ev.text)});
    }
    if (ev.last() && cb.on_done) {
      cb.on_done(Result{.status = WithRetryHint(ev.status, ev.retry_after_seconds),
                        .finish = ApiFinish(ev.finish),
                        .usage = ApiUsage(ev.usage)});
    }
  };
  const uint64_t id = core_->engine->Submit(std::move(e), std::move(sink));
  call->submitting.store(false);
  if (!call->refused.ok()) return call->refused;
  return RequestHandle(core_, id);
}

absl::StatusOr<Generation> Model::Generate(const Request& request) {
  struct Wait {
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    Generation out;
    absl::Status status;
  };
  auto w = std::make_shared<Wait>();
  Callbacks cb{.on_delta =
                   [w](const Delta& d) {
                     std::lock_guard<std::mutex> lock(w->mu);
                     w->out.token_ids.insert(w->out.token_ids.end(), d.token_ids.begin(),
                                             d.token_ids.end());
                     w->out.text += d.text;
                   },
               .on_done =
                   [w](const Result& r) {
                     std::lock_guard<std::mutex> lock(w->mu);
                     w->status = r.status;
                     w->out.finish = r.finish;
                     w->out.usage = r.usage;
                     w->done = true;
                     w->cv.notify_all();
                   }};
  RETURN_IF_ERROR(Submit(request, std::move(cb)).status());
  std::unique_lock<std::mutex> lock(w->mu);
  w->cv.wait(lock, [&] { return w->done; });
  if (!w->status.ok()) return w->status;
  return std::move(w->out);
}

absl::StatusOr<std::vector<int32_t>> Model::Tokenize(std::string_view text) const {
  if (core_->tokenizer == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("Tokenize: ", core_->config.model_path, " has no tokenizer"));
  }
  return core_->tokenizer->EncodePlain(text);
}

absl::StatusOr<std::string> Model::Detokenize(const std::vector<int32_t>& token_ids) const {
  if (core_->tokenizer == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("Detokenize: ", core_->config.model_path, " has no tokenizer"));
  }
  const int32_t vocab = core_->tokenizer->vocab_size();
  for (size_t i = 0; i < token_ids.size(); ++i) {
    if (token_ids[i] < 0 || token_ids[i] >= vocab) {
      return absl::InvalidArgumentError(absl::StrCat(
          "token_ids[", i, "]: ", token_ids[i], " is outside the vocabulary [0, ", vocab, ")"));
    }
  }
  return core_->tokenizer->Decode(token_ids, /*skip_special=*/false);
}

const ModelInfo& Model::info() const { return core_->info; }

}  // namespace dsinfer::api
