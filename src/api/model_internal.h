// The internal side of api::Model, for dsinfer's own server (src/server) only: never installed,
// never part of libdsinfer's exported symbols. The server holds one api::Model and submits and
// cancels through it like any embedder; what it needs beyond the public API is here:
//   - starting a Model from the server's own ServerConfig (tenants with their keys and limits,
//     the whole scheduler section) and an EngineObserver (metrics, request logs), from a
//     LoadServingModel result or a ready runner (tests inject scripted runners);
//   - Submit naming the fields as its wire does (`chat.messages[1].role` on gRPC,
//     `temperature` on the OpenAI API) instead of the API's names — the same Submit otherwise;
//   - a cancellation for a passed client deadline (ends DEADLINE_EXCEEDED, not kCancelled);
//   - the core (engine stats, draining, backend health, tokenizer, limits) for /metrics,
//     /readyz, drain, Tokenize/Detokenize and ModelInfo.
// See src/api/README.md ("public and internal").
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "dsinfer/model.h"
#include "src/config/server_config.h"
#include "src/engine/engine.h"
#include "src/serving/serving_model.h"
#include "src/serving/serving_request.h"
#include "src/tokenizer/tokenizer.h"

namespace dsinfer::api {

// The library's side of a Model. Declared after the tokenizer, the engine is destroyed first
// (it holds a pointer to it). Everything but `engine`'s own state is fixed once started.
struct ModelCore {
  ServerConfig config;
  RequestLimits limits;
  ModelInfo info;
  std::unique_ptr<Tokenizer> tokenizer;
  ServingText text;  // the tokenizer above and the model's chat format
  std::unique_ptr<Engine> engine;
};

struct ModelAccess {
  // A Model serving `model` (LoadServingModel's result, or a runner with its tokenizer and chat
  // format) with `config`'s scheduler, KV and tenant sections; `observer` (may be null) sees
  // every step and request and must outlive the Model.
  static absl::StatusOr<std::unique_ptr<Model>> Start(ServerConfig config, ServingModel model,
                                                      EngineObserver* observer);

  // How a front end submits: as Model::Submit, naming fields as its wire does.
  struct WireSubmit {
    const ServingFieldNames* names = nullptr;  // null: the API's names
    // The input the wire request chose (kNone: whichever is set), so that an empty one is named
    // as empty ("prompt: must not be empty") rather than as missing.
    ServingRequest::Input input = ServingRequest::Input::kNone;
    // Set to whether a refusal came from the engine's admission (which its observer counted)
    // rather than from validation. May be null.
    bool* refused_at_admission = nullptr;
  };
  static absl::StatusOr<RequestHandle> Submit(Model& model, const Request& request,
                                              Callbacks callbacks, const WireSubmit& wire);

  // RequestHandle::Cancel, saying why: CancelReason::kDeadline ends it DEADLINE_EXCEEDED.
  static void Cancel(const RequestHandle& handle, CancelReason reason);

  static ModelCore& Core(const Model& model) { return *model.core_; }
};

// A front end's protocol-neutral request (serving_request.h) as the API's Request, to submit.
Request RequestFromServing(const ServingRequest& request);

}  // namespace dsinfer::api
