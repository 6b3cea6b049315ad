// The one path from a server configuration to a running engine, shared by `dsinfer serve`
// (src/server) and the embedding API (src/api, include/dsinfer): the runner factory builds the
// runner (backend, dtype, parallel layout), the KV pool is sized from the runner's KvCacheSpec
// (kv_capacity.h), the model directory's tokenizer is loaded when it has one, decode steps are
// warmed up, and the engine's scheduler limits and tenants come from the same config sections.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "src/chat/chat_format.h"
#include "src/config/server_config.h"
#include "src/engine/engine.h"
#include "src/engine/model_runner.h"
#include "src/tokenizer/tokenizer.h"
#include "src/weights/weight_store.h"

namespace dsinfer {

struct ServingModelHooks {
  ProgressFn progress = nullptr;  // weight loading progress (may be null)
  // parallel.tp > 1: where the ranks of other nodes meet the leader ("": this node's ranks only,
  // through a private file store).
  std::string rendezvous;
  // parallel.tp > 1: the `dsinfer` binary started as `dsinfer worker` for this node's other
  // ranks ("": this process's own executable, or $DSINFER_WORKER_BINARY).
  std::string worker_executable;
};

struct ServingModel {
  std::unique_ptr<ModelRunner> runner;
  std::unique_ptr<Tokenizer> tokenizer;  // null: the directory has none (token ids only)
  chat::ChatFormat chat_format;          // chat::ChatFormatOfModel, decided once at load
  double load_seconds = 0;               // weights, KV pool and tokenizer
  double warm_up_seconds = 0;            // decode steps of every batch size prepared (CUDA graphs)
};

// The model directory's tokenizer, when it has one: tokenizer.json, else tiktoken.model
// (Kimi-K2); null otherwise.
absl::StatusOr<std::unique_ptr<Tokenizer>> LoadDirectoryTokenizer(const std::string& model_path);

// Loads config.model_path as config says (backend, dtype, threads, parallel, kv_cache,
// scheduler.max_running / max_batched_tokens for the CUDA workspaces). `context_length` is the
// model's (config.json max_position_embeddings): the KV pool is capped at max_running such
// sequences. Errors name the config key or the file at fault.
absl::StatusOr<ServingModel> LoadServingModel(const ServerConfig& config, int64_t context_length,
                                              ServingModelHooks hooks);

// The tenants' scheduling policies (weights, ceilings, limits) from config.tenants.
std::vector<TenantPolicy> ServingTenantPolicies(const ServerConfig& config);

// The engine's options: scheduler limits, prefix caching and tenants from the config.
EngineOptions ServingEngineOptions(const ServerConfig& config);

}  // namespace dsinfer
