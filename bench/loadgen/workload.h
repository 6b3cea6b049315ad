// What dsinfer-loadgen sends: simulated county services (tenants), each with its API key, an
// arrival process (Poisson rate or closed-loop clients), a priority mix and length ranges.
// Built from a JSON spec file and/or command-line flags; validated once here.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "dsinfer/v1/dsinfer.pb.h"

namespace dsinfer::loadgen {

// Uniform integer range, both ends included.
struct IntRange {
  int64_t lo = 0;
  int64_t hi = 0;
};

struct TenantSpec {
  std::string name;         // label in the report (the server takes the tenant from the key)
  std::string api_key;      // sent as `authorization: Bearer KEY`; empty: no credentials
  double rate = 0;          // open loop: Poisson arrivals per second
  int32_t concurrency = 0;  // closed loop: clients, each sends its next request after the last ends
  double flood_factor = 1.0;  // multiplies rate (open loop) or concurrency (closed loop)
  // (priority, weight); drawn per request. Empty: PRIORITY_UNSPECIFIED.
  std::vector<std::pair<v1::Priority, double>> priority_mix;
  IntRange prompt_tokens{32, 64};
  IntRange output_tokens{16, 32};
  bool text_prompt = false;          // random words as `prompt` instead of `token_ids`
  bool chat = false;  // the words as one user message (gRPC `chat`, HTTP /v1/chat/completions)
  int32_t shared_prefix_tokens = 0;  // the same leading token ids on every request of this tenant
  bool ignore_eos = true;            // keeps output lengths as drawn
  double start_s = 0;                // the tenant starts this long after the run starts
  double think_s = 0;                // closed loop: pause between a client's requests
  double reject_backoff_s = 0.05;    // closed loop: pause after a failed request
  int64_t max_requests = 0;          // 0: only the run's bound
};

// How requests travel: gRPC Generate, or the OpenAI API's streaming /v1/completions (SSE).
enum class Protocol { kGrpc, kOpenAi };

struct WorkloadSpec {
  Protocol protocol = Protocol::kGrpc;
  std::string target = "127.0.0.1:50051";  // the gRPC listener, or `openai_listen`
  int32_t client_threads = 1;  // OpenAI mode: event-loop threads (gRPC keeps its own pool)
  std::string label;
  double duration_s = 30;       // no request starts after this
  int64_t max_requests = 1000;  // no more requests start after this many, all tenants
  double warmup_s = 0;          // requests started earlier are left out of latency and throughput
  double drain_s = 60;          // then wait this long for open streams, then cancel them
  double request_timeout_s = 120;  // gRPC deadline of each request
  uint64_t seed = 1;
  int32_t token_id_lo = 1000;  // prompt token ids are drawn from [lo, hi)
  int32_t token_id_hi = 100000;
  std::vector<TenantSpec> tenants;
};

// Flags (all optional; a spec file's values are overridden by the flags given):
//   --spec FILE.json  --protocol grpc|openai  --target HOST:PORT  --client-threads N  --label S  --duration S  --max-requests N  --warmup S
//   --drain S  --timeout S  --seed N  --token-ids LO:HI
// Tenants from flags when there is no spec file:
//   --tenants N  --api-keys K1,K2,..  --names A,B,..  --rate R (per tenant)
//   --concurrency C (closed loop, split round-robin over the tenants)  --prompt-tokens A:B
//   --output-tokens A:B  --prompt-kind ids|text|chat  --shared-prefix N
//   --priority-mix emergency=1,interactive=6,batch=3  --think S  --reject-backoff S
// With or without a spec file:
//   --flood-tenant NAME|INDEX  --flood-factor K
absl::StatusOr<WorkloadSpec> ParseWorkload(int argc, char** argv);

// The JSON spec: {"protocol": "grpc"|"openai", "target", "client_threads", "label", "duration_s", "max_requests", "warmup_s", "drain_s",
// "request_timeout_s", "seed", "token_id_range": [lo, hi], "tenants": [{"name", "api_key",
// "rate" | "concurrency", "flood_factor", "priority_mix": {"batch": 1}, "prompt_tokens": [a, b],
// "output_tokens": [a, b], "prompt_kind": "ids"|"text"|"chat", "shared_prefix_tokens", "ignore_eos",
// "start_s", "think_s", "reject_backoff_s", "max_requests"}]}. Unknown keys are errors.
absl::StatusOr<WorkloadSpec> ParseWorkloadJson(const std::string& json_text);

absl::Status ValidateWorkload(const WorkloadSpec& spec);

const char* PriorityLabel(v1::Priority p);
const char* ProtocolName(Protocol p);

}  // namespace dsinfer::loadgen
