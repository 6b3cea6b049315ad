// Every metric the dsinfer server exports, created up front so all series exist from start-up.
// Names follow Prometheus rules and the quantities vLLM users know
// (vllm:time_to_first_token_seconds
// -> dsinfer_time_to_first_token_seconds, ...), with base units and a `tenant` label where the
// quantity is per tenant. See src/metrics/README.md for the list.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "src/config/priority.h"
#include "src/metrics/registry.h"

namespace dsinfer {

// How a request ended: the `outcome` label of dsinfer_requests_total.
enum class RequestOutcome : uint8_t {
  kCompleted = 0,  // stop token, stop string or max_tokens
  kCancelled,      // the client went away
  kDeadlineExceeded,
  kRejected,  // never admitted; the reason is in dsinfer_rejections_total
  kFailed,    // internal error
};
inline constexpr int kNumRequestOutcomes = 5;
std::string_view RequestOutcomeName(RequestOutcome o);

// Why admission refused a request: the `reason` label of dsinfer_rejections_total.
enum class RejectionReason : uint8_t {
  kQueueFull = 0,    // scheduler.max_waiting reached
  kTenantQueueFull,  // the tenant's max_queued reached
  kRateLimited,      // the tenant's tokens_per_minute spent
  kQueueTimeout,     // waited longer than scheduler.max_queue_seconds
  kTooLong,          // prompt + max_tokens can never fit the KV pool
  kUnauthenticated,
  kPriorityNotAllowed,  // above the tenant's max_priority
  kDraining,            // shutting down
  kInvalidRequest,
};
inline constexpr int kNumRejectionReasons = 9;
std::string_view RejectionReasonName(RejectionReason r);

// The front end a generation call came through (the `protocol` label of dsinfer_api_calls_total).
enum class ApiProtocol : uint8_t { kGrpc = 0, kOpenAi };
inline constexpr int kNumApiProtocols = 2;
inline constexpr int kNumStatusCodes = 17;  // absl::StatusCode 0..16

struct ServerMetricsOptions {
  std::vector<std::string> tenants;  // ids from ServerConfig, in config order
  // Model info (dsinfer_model_info labels).
  std::string model_name;  // e.g. the model directory's name
  std::string dtype;
  std::string backend;
  // MoE: the layer indices that have routed experts, and experts per layer. Empty: no MoE series.
  std::vector<int> moe_layers;
  int num_experts = 0;
};

// Per-tenant children, looked up once so the request path never takes a lock.
struct TenantMetrics {
  std::array<std::array<Counter*, kNumRequestOutcomes>, kNumPriorities> requests{};
  Counter* prompt_tokens = nullptr;
  Counter* generation_tokens = nullptr;
  std::array<Histogram*, kNumPriorities> time_to_first_token{};
  std::array<Histogram*, kNumPriorities> time_per_output_token{};
  std::array<Histogram*, kNumPriorities> e2e_latency{};
  std::array<Histogram*, kNumPriorities> queue_time{};

  Counter& Requests(Priority p, RequestOutcome o) const {
    return *requests[static_cast<int>(p)][static_cast<int>(o)];
  }
};

class ServerMetrics {
 public:
  explicit ServerMetrics(const ServerMetricsOptions& options);
  ServerMetrics(const ServerMetrics&) = delete;
  ServerMetrics& operator=(const ServerMetrics&) = delete;

  const MetricRegistry& registry() const { return registry_; }
  std::string Render() const { return registry_.Render(); }

  // nullptr for an id that was not in options.tenants.
  const TenantMetrics* Tenant(std::string_view id) const;

  Gauge& QueueLength(Priority p) { return *queue_length_[static_cast<int>(p)]; }
  Counter& Preemptions(Priority p) { return *preemptions_[static_cast<int>(p)]; }
  Counter& Rejections(RejectionReason r) { return *rejections_[static_cast<int>(r)]; }
  // A generation call (gRPC Generate, an OpenAI completion) ended with `code`: counted once per
  // call, by the front end, whatever ended it (auth, validation, admission, the engine, the
  // client going away: CANCELLED).
  Counter& ApiCalls(ApiProtocol p, absl::StatusCode code) {
    int c = static_cast<int>(code);
    if (c < 0 || c >= kNumStatusCodes) c = static_cast<int>(absl::StatusCode::kUnknown);
    return *api_calls_[static_cast<int>(p)][c];
  }

  // KV pool occupancy after a step: blocks by state and used / (used + free + cached).
  // `cached` blocks hold reusable prefix KV and can be evicted on demand.
  void SetKvCacheBlocks(int64_t used, int64_t free, int64_t cached);

  // One engine step: tokens and sequences in the batch, and its wall time.
  void ObserveStep(int64_t batch_tokens, int64_t batch_sequences, double seconds);

  // Tokens routed to each expert of MoE layer `layer` in one step (size num_experts): adds to
  // dsinfer_moe_expert_tokens_total and sets the layer's max/mean imbalance. Ignores layers
  // without routed experts and a wrong-sized span.
  void RecordMoeLoad(int layer, std::span<const int64_t> tokens_per_expert);

  // Plain series, updated directly.
  Gauge* sequences_running = nullptr;
  Gauge* sequences_waiting = nullptr;
  Counter* prefix_cache_queried_tokens = nullptr;
  Counter* prefix_cache_hit_tokens = nullptr;
  // MTP speculative decoding: draft tokens verified, and those the main model accepted.
  Counter* spec_decode_draft_tokens = nullptr;
  Counter* spec_decode_accepted_tokens = nullptr;
  // The same per draft position ("0": a step's first draft of a sequence; k > 1 drafts).
  Counter& SpecDecodeDraftsAt(int position);
  Counter& SpecDecodeAcceptedAt(int position);

 private:
  MetricRegistry registry_;
  CounterFamily* spec_decode_draft_at_ = nullptr;     // [position]
  CounterFamily* spec_decode_accepted_at_ = nullptr;  // [position]
  std::vector<std::string> tenant_ids_;  // sorted, parallel to tenants_
  std::vector<TenantMetrics> tenants_;
  std::array<Gauge*, kNumPriorities> queue_length_{};
  std::array<Counter*, kNumPriorities> preemptions_{};
  std::array<Counter*, kNumRejectionReasons> rejections_{};
  std::array<std::array<Counter*, kNumStatusCodes>, kNumApiProtocols> api_calls_{};
  Gauge* kv_used_ = nullptr;
  Gauge* kv_free_ = nullptr;
  Gauge* kv_cached_ = nullptr;
  Gauge* kv_usage_ = nullptr;
  Histogram* batch_tokens_ = nullptr;
  Histogram* batch_sequences_ = nullptr;
  Histogram* step_seconds_ = nullptr;
  int num_experts_ = 0;
  std::vector<int> moe_index_;  // layer -> index into moe_layers, -1 for dense layers
  std::vector<std::vector<Counter*>> expert_tokens_;  // [moe layer][expert]
  std::vector<Gauge*> imbalance_;                     // [moe layer]
};

}  // namespace dsinfer
