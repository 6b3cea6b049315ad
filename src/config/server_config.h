// Server configuration (YAML): listeners, TLS, scheduler and KV-cache limits, tenants.
// Validated once here; see src/config/README.md for the rules. The rest of dsinfer trusts it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "src/config/priority.h"

namespace dsinfer {

// One county service (or other client) sharing the deployment. Limits of 0 mean "no limit of
// this tenant's own"; the global scheduler limits still apply.
struct TenantConfig {
  std::string id;       // 1-64 of [A-Za-z0-9_.-]; also the `tenant` metric label
  double weight = 1.0;  // fair-share weight, > 0
  Priority max_priority = Priority::kInteractive;   // highest class the tenant may request
  int32_t max_concurrent = 0;                       // running sequences
  int32_t max_queued = 0;                           // waiting requests
  int64_t tokens_per_minute = 0;                    // prompt + generated tokens
  std::vector<std::string> api_key_sha256;          // lower-case hex SHA-256 of each key
  std::vector<std::string> client_cert_identities;  // mTLS: certificate subject CN or SAN
};

// gRPC and the OpenAI API (openai_listen) serve TLS when enabled, from the same files with the
// same client-certificate rules; http_listen (/metrics, probes) only with on_http_listen.
struct TlsConfig {
  bool enabled = false;
  std::string cert_file, key_file, client_ca_file;
  bool require_client_cert = false;
  // TLS on http_listen too (server certificate only: kubelet probes present no client one).
  bool on_http_listen = false;
};

struct SchedulerConfig {
  int64_t max_batched_tokens = 2048;  // tokens per engine step (prefill chunks + decodes)
  int32_t max_running = 64;           // sequences in the running batch
  int32_t max_waiting = 1024;         // queued requests, all tenants
  double max_queue_seconds = 30;      // a request waiting longer is rejected
  int64_t prefill_chunk = 512;        // prompt tokens of one sequence per step
  // Times one request may yield its running slot (recomputed later) so that a higher class or a
  // tenant below its share of the running batch can run; 0: only emergency preempts for a slot.
  int32_t max_preemptions_per_request = 2;
  // Step share: while another tenant of its class is active (now or within
  // share_window_seconds), a tenant runs at most its slot share of sequences per step.
  bool step_share = true;
  double share_window_seconds = 5;
};

struct KvCacheConfig {
  int32_t num_blocks = 0;        // 0: derive from memory_bytes, else from memory_fraction
  int64_t memory_bytes = 0;      // 0: memory_fraction of the memory left after weights
  double memory_fraction = 0.9;  // (0, 1]
  bool prefix_caching = true;
  // false: a tenant's prompts only match its own cached prefixes (no cross-tenant timing signal).
  bool share_prefix_across_tenants = false;
};

// Model sharded over ranks (tensor + expert parallelism); tp 1 is one process.
struct ParallelConfig {
  int32_t tp = 1;              // ranks in total
  int32_t ep = 1;              // expert-parallel groups; divides tp
  int32_t ranks_per_node = 0;  // ranks per node (the leader starts its node's); 0: tp
  std::string rendezvous_listen = "127.0.0.1:29500";  // leader's rendezvous port (multi-node)
  std::string leader_address;  // workers on other nodes: the leader's rendezvous host:port
  std::string bind_address;    // this node's address for collectives (env DSINFER_BIND_ADDRESS)
  double timeout_seconds = 60; // a rank silent this long is gone
};

// Limits of the HTTP listeners (ops endpoint and OpenAI API; src/http/README.md). Every one is
// bounded: a client that sends slowly, sends too much or opens many connections costs a bounded
// share of the server and never delays /healthz.
struct HttpConfig {
  int64_t max_header_bytes = 16 << 10;    // request line + headers; beyond: 431
  int64_t max_body_bytes = 4 << 20;       // beyond: 413
  double header_timeout_seconds = 10;     // the whole header must arrive within this (slowloris)
  double body_timeout_seconds = 30;       // the whole body, after the header
  double idle_timeout_seconds = 30;       // keep-alive: wait for the next request this long
  double write_timeout_seconds = 30;      // one write to the client (a stalled reader is cut)
  int32_t max_connections = 1024;         // per listener; beyond: closed at once
  int32_t max_connections_per_address = 64;  // per client IP and listener; beyond: closed at once
  int32_t threads = 1;                    // event-loop threads per listener
};

struct ServerConfig {
  std::string model_path;
  std::string dtype = "bf16";   // compute precision: bf16 | f32
  std::string backend = "cpu";  // cpu | cuda
  int32_t threads = 0;          // CPU worker threads; 0 = one per core
  // FP8 checkpoints: dequantise the FP8 weights to the compute dtype at load (twice the weight
  // memory; for checking FP8 kernels against dequantised math). Default: they stay FP8.
  bool dequantize_fp8 = false;
  bool mtp = false;  // MTP speculative decoding (DeepSeek checkpoints with an MTP layer)
  int32_t mtp_draft_tokens = 1;  // with mtp: drafts per sequence and step (the layer chained)
  std::string grpc_listen = "0.0.0.0:50051";
  std::string http_listen = "0.0.0.0:9090";  // /metrics, /healthz, /readyz
  // The OpenAI-compatible API (/v1/models, /v1/chat/completions, /v1/completions); empty: off.
  // Its own listener, so API traffic never shares connection limits with the health probes.
  std::string openai_listen;
  HttpConfig http;
  TlsConfig tls;
  SchedulerConfig scheduler;
  KvCacheConfig kv_cache;
  ParallelConfig parallel;
  std::vector<TenantConfig> tenants;
  bool allow_unauthenticated = false;
  // Tenant of unauthenticated requests. Always names an entry of `tenants` when
  // allow_unauthenticated is true (the parser adds tenant "anonymous" if there are no tenants).
  std::string default_tenant;
  double drain_grace_seconds = 30;
  bool log_request_content = false;  // must stay false: request content never enters logs
  std::string log_level = "info";    // debug | info | warning | error
};

// Parses and validates. Every problem is collected; the InvalidArgument message lists them one
// per line, each naming the full key path (`tenants[2].max_priority: ...`).
absl::StatusOr<ServerConfig> ParseServerConfig(std::string_view yaml_text);

// Reads `path`; errors are prefixed with it. Relative model_path and TLS file paths are resolved
// against the directory of `path`.
absl::StatusOr<ServerConfig> LoadServerConfig(const std::string& path);

}  // namespace dsinfer
