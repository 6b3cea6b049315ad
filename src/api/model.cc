// The embedding API over the serving layer: Model::Load goes through the same model loading and
// engine start as `dsinfer serve` (src/serving/serving_model.h); Submit validates as the server
// does and hands the request to the same engine. See include/dsinfer/README.md.
#include "dsinfer/model.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <thread>

#include "absl/strings/cord.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "src/api/api_options.h"
#include "src/api/model_internal.h"
#include "src/config/model_config.h"
#include "src/core/status_macros.h"
#include "src/kv_cache/block_pool.h"
#include "src/serving/chat_output.h"
#include "src/serving/serving_model.h"

namespace dsinfer::api {

const char* FinishReasonName(FinishReason reason) {
  switch (reason) {
    case FinishReason::kStop:
      return "stop";
    case FinishReason::kLength:
      return "length";
    case FinishReason::kCancelled:
      return "cancelled";
    case FinishReason::kToolCalls:
      return "tool_calls";
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

std::vector<TokenLogprob> ApiLogprobs(const std::vector<SequenceResult>& in) {
  std::vector<TokenLogprob> out;
  out.reserve(in.size());
  for (const SequenceResult& r : in) {
    TokenLogprob t{.token_id = r.token, .logprob = r.logprob};
    for (const dsinfer::TokenLogprob& a : r.top) t.top.push_back({a.token, a.logprob});
    out.push_back(std::move(t));
  }
  return out;
}

void AddChat(ChatOutputDelta c, Delta* d) {
  d->text += c.content;
  d->reasoning_text += c.reasoning_content;
  for (ToolCallChunk& t : c.tool_calls) {
    d->tool_calls.push_back({.index = t.index,
                             .id = std::move(t.id),
                             .name = std::move(t.name),
                             .arguments = std::move(t.arguments)});
  }
}

// One submitted request's side of the engine sink. An admission refusal reaches the sink on the
// thread that called Engine::Submit, before it returns; Submit returns it as its status instead
// of calling back. No other event can arrive on that thread while Submit runs (the engine
// thread is either another thread or this one, busy).
struct Stream {
  std::thread::id thread = std::this_thread::get_id();
  std::atomic<bool> submitting{true};
  absl::Status refused;
  Callbacks callbacks;
  std::optional<ChatOutput> output;  // chat answers of DeepSeek formats (engine thread only)

  void OnEvent(EngineEvent ev) {
    if (ev.last() && !ev.status.ok() && submitting.load() &&
        std::this_thread::get_id() == thread) {
      refused = WithRetryHint(std::move(ev.status), ev.retry_after_seconds);
      return;
    }
    Delta d{.token_ids = std::move(ev.token_ids), .logprobs = ApiLogprobs(ev.logprobs)};
    const bool finished_well =
        ev.last() && ev.status.ok() && ev.finish != dsinfer::FinishReason::kCancelled;
    if (output.has_value()) {
      AddChat(output->Push(ev.text), &d);
      if (finished_well) AddChat(output->Finish(), &d);  // held-back text, a malformed call
    } else {
      d.text = std::move(ev.text);
    }
    if (callbacks.on_delta && (!d.token_ids.empty() || !d.text.empty() ||
                               !d.reasoning_text.empty() || !d.tool_calls.empty())) {
      callbacks.on_delta(d);
    }
    if (!ev.last() || !callbacks.on_done) return;
    Result r{.status = WithRetryHint(ev.status, ev.retry_after_seconds),
             .finish = ApiFinish(ev.finish),
             .usage = ApiUsage(ev.usage)};
    if (finished_well && output.has_value()) {
      if (r.finish == FinishReason::kStop && output->FinishReason("stop") == "tool_calls") {
        r.finish = FinishReason::kToolCalls;
      }
      for (ChatToolCall& c : output->tool_calls()) {
        r.tool_calls.push_back({.id = std::move(c.id), .name = std::move(c.name),
                                .arguments = std::move(c.arguments)});
      }
    }
    callbacks.on_done(r);
  }
};

double EngineSecondsFrom(std::chrono::steady_clock::time_point t,
                         std::chrono::steady_clock::time_point now, double engine_now) {
  return engine_now + std::chrono::duration<double>(t - now).count();
}

}  // namespace

std::optional<double> RetryAfterSeconds(const absl::Status& status) {
  if (status.code() != absl::StatusCode::kResourceExhausted) return std::nullopt;
  const auto hint = status.GetPayload(kRetryAfterUrl);  // absl::optional<absl::Cord>
  double seconds = 0;
  if (!hint.has_value() || !absl::SimpleAtod(std::string(*hint), &seconds)) return std::nullopt;
  return seconds;
}

void RequestHandle::Cancel() const { ModelAccess::Cancel(*this, CancelReason::kClient); }

void ModelAccess::Cancel(const RequestHandle& handle, CancelReason reason) {
  if (std::shared_ptr<ModelCore> core = handle.core_.lock();
      core != nullptr && core->engine != nullptr && handle.id_ != 0) {
    core->engine->Cancel(handle.id_, reason);
  }
}

Model::Model(std::shared_ptr<ModelCore> core) : core_(std::move(core)) {}

Model::~Model() {
  // Live requests hear UNAVAILABLE now, while their callbacks' state is surely alive.
  if (core_->engine != nullptr) core_->engine->Shutdown();
}

absl::StatusOr<std::unique_ptr<Model>> Model::Load(const LoadOptions& options) {
  ASSIGN_OR_RETURN(ServerConfig config, api_internal::ServerConfigFromOptions(options));
  absl::StatusOr<ModelConfig> model = LoadModelConfig(options.model_path);
  if (!model.ok() && model.status().code() == absl::StatusCode::kNotFound) {
    return absl::NotFoundError(absl::StrCat("model_path: ", model.status().message()));
  }
  RETURN_IF_ERROR(model.status());
  ServingModelHooks hooks{.progress = options.progress,
                          .rendezvous = "",
                          .worker_executable = options.parallel.worker_executable};
  ASSIGN_OR_RETURN(ServingModel m,
                   LoadServingModel(config, model->max_position_embeddings, std::move(hooks)));
  return ModelAccess::Start(std::move(config), std::move(m), /*observer=*/nullptr);
}

absl::StatusOr<std::unique_ptr<Model>> ModelAccess::Start(ServerConfig config, ServingModel m,
                                                          EngineObserver* observer) {
  auto core = std::make_shared<ModelCore>();
  core->config = std::move(config);
  const ModelRunner& runner = *m.runner;
  const ModelConfig& model = runner.config();
  core->limits.vocab_size = model.vocab_size;
  core->limits.context_length = model.max_position_embeddings;
  core->limits.kv_capacity_tokens = static_cast<int64_t>(runner.num_kv_blocks()) * kKvBlockSize;
  core->info = {.model_type = model.model_type,
                .backend = runner.backend_name(),
                .dtype = runner.dtype_name(),
                .vocab_size = model.vocab_size,
                .context_length = model.max_position_embeddings,
                .kv_cache_tokens = core->limits.kv_capacity_tokens,
                .has_tokenizer = m.tokenizer != nullptr,
                .weight_bytes = runner.weight_bytes()};
  core->tokenizer = std::move(m.tokenizer);
  core->text.tokenizer = core->tokenizer.get();
  core->text.chat_format = std::move(m.chat_format);
  ASSIGN_OR_RETURN(core->engine, Engine::Create(std::move(m.runner), core->tokenizer.get(),
                                                ServingEngineOptions(core->config), observer));
  return std::unique_ptr<Model>(new Model(std::move(core)));
}

absl::StatusOr<RequestHandle> Model::Submit(const Request& request, Callbacks callbacks) {
  return ModelAccess::Submit(*this, request, std::move(callbacks), {});
}

Request RequestFromServing(const ServingRequest& request) {
  return api_internal::ApiRequestFromServing(request);
}

absl::StatusOr<RequestHandle> ModelAccess::Submit(Model& model, const Request& request,
                                                  Callbacks callbacks, const WireSubmit& wire) {
  ModelCore& core = *model.core_;
  if (wire.refused_at_admission != nullptr) *wire.refused_at_admission = false;
  ASSIGN_OR_RETURN(
      ValidatedRequest v,
      api_internal::EngineRequestFromApi(
          request, core.config, core.text, core.limits,
          wire.names != nullptr ? *wire.names : api_internal::ApiFieldNames(), wire.input));
  EngineRequest& e = v.engine;
  Engine& engine = *core.engine;
  const auto now = std::chrono::steady_clock::now();
  const double engine_now = engine.Now();
  if (request.arrival.has_value()) {
    // The engine's clock starts with the Model: an earlier arrival counts from there.
    e.arrival = std::clamp(EngineSecondsFrom(*request.arrival, now, engine_now), 0.0, engine_now);
  }
  if (request.timeout_seconds > 0) e.deadline = engine_now + request.timeout_seconds;
  if (request.deadline.has_value()) {
    e.deadline = std::min(e.deadline, EngineSecondsFrom(*request.deadline, now, engine_now));
  }
  auto stream = std::make_shared<Stream>();
  stream->callbacks = std::move(callbacks);
  if (v.chat_output.has_value()) stream->output.emplace(*v.chat_output);
  const uint64_t id =
      engine.Submit(std::move(e), [stream](EngineEvent ev) { stream->OnEvent(std::move(ev)); });
  stream->submitting.store(false);
  if (!stream->refused.ok()) {
    if (wire.refused_at_admission != nullptr) *wire.refused_at_admission = true;
    return stream->refused;
  }
  return RequestHandle(model.core_, id);
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
                     w->out.reasoning_text += d.reasoning_text;
                     w->out.logprobs.insert(w->out.logprobs.end(), d.logprobs.begin(),
                                            d.logprobs.end());
                   },
               .on_done =
                   [w](const Result& r) {
                     std::lock_guard<std::mutex> lock(w->mu);
                     w->status = r.status;
                     w->out.finish = r.finish;
                     w->out.usage = r.usage;
                     w->out.tool_calls = r.tool_calls;
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
