// A loaded model serving requests: the embedding API of dsinfer. One Model is one
// continuous-batching engine (the same engine, scheduler and model loading as `dsinfer serve`)
// over one checkpoint; any number of threads may Submit to it at once.
//
//   auto model = dsinfer::api::Model::Load({.model_path = "/data/DeepSeek-V2-Lite-Chat"});
//   if (!model.ok()) { /* model.status() names what is wrong */ }
//   dsinfer::api::Request r{.messages = {{"user", "你好"}}, .max_tokens = 64};
//   auto h = (*model)->Submit(r, {.on_delta = [](const dsinfer::api::Delta& d) { ... },
//                                 .on_done = [](const dsinfer::api::Result& r) { ... }});
//   h->Cancel();  // whenever the answer is no longer wanted
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "dsinfer/export.h"
#include "dsinfer/types.h"

namespace dsinfer::api {

class Model;
struct ModelCore;    // the library's side (engine, tokenizer); not part of the API
struct ModelAccess;  // dsinfer's own server's access (src/api/model_internal.h); not the API

// A submitted request. Copyable; outliving its Model is allowed (Cancel then does nothing).
class DSINFER_API RequestHandle {
 public:
  RequestHandle() = default;
  uint64_t id() const { return id_; }  // unique within its Model; 0: no request
  // Ends the request at the next step boundary and frees its KV cache: on_done then reports
  // FinishReason::kCancelled (unless it had already finished). Returns at once; any thread,
  // callbacks included; again or after the end it does nothing.
  void Cancel() const;

 private:
  friend class Model;
  friend struct ModelAccess;
  RequestHandle(std::weak_ptr<ModelCore> core, uint64_t id) : core_(std::move(core)), id_(id) {}
  std::weak_ptr<ModelCore> core_;
  uint64_t id_ = 0;
};

class DSINFER_API Model {
 public:
  // Loads the checkpoint (weights, KV pool, tokenizer) and starts the engine thread. Errors
  // name the option at fault ("dtype: ...", "model_path: ...", "parallel.ep: ...") or the
  // checkpoint file / config.json field.
  static absl::StatusOr<std::unique_ptr<Model>> Load(const LoadOptions& options);

  // Every request still live ends with UNAVAILABLE (its on_done runs), then the engine stops.
  // Must not run on the engine thread (inside a callback).
  ~Model();
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  // Validates the request and decides admission at once, on this thread. An error here means
  // no callback will run: INVALID_ARGUMENT naming the field ("token_ids[3]: ...", "max_tokens:
  // ..." also when prompt + max_tokens can never fit the KV pool), RESOURCE_EXHAUSTED when
  // scheduler.max_waiting requests are already queued, UNAVAILABLE once the model is stopping.
  // Otherwise the output arrives on `callbacks` and on_done runs exactly once. Never waits for a
  // step in progress.
  absl::StatusOr<RequestHandle> Submit(const Request& request, Callbacks callbacks);

  // Submit and wait for the whole answer. A request that fails after admission returns its
  // status. Must not be called inside a callback.
  absl::StatusOr<Generation> Generate(const Request& request);

  // The model's tokenizer on plain text (special-token strings stay text), and back
  // (special tokens included). FAILED_PRECONDITION when the model directory has no tokenizer.
  absl::StatusOr<std::vector<int32_t>> Tokenize(std::string_view text) const;
  absl::StatusOr<std::string> Detokenize(const std::vector<int32_t>& token_ids) const;

  const ModelInfo& info() const;

 private:
  friend struct ModelAccess;
  explicit Model(std::shared_ptr<ModelCore> core);
  std::shared_ptr<ModelCore> core_;
};

}  // namespace dsinfer::api
