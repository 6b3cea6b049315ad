// What the driver needs from a protocol: start one streaming generation, cancel it, and get
// its record back exactly once. Two transports share the workload, driver and report: gRPC
// (`dsinfer.v1.Inference/Generate`, grpc_transport.cc) and the OpenAI API over HTTP/1.1 + SSE
// (`/v1/completions`, openai_transport.cc). Only how bytes move differs between them.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "bench/loadgen/workload.h"

namespace dsinfer::loadgen {

using Clock = std::chrono::steady_clock;

// One request, protocol-neutral: built once by the driver, then encoded by the transport.
struct LoadRequest {
  std::vector<int32_t> token_ids;  // the prompt as ids (when `text` is empty)
  std::string text;                // the prompt as text
  bool text_prompt = false;
  bool chat = false;  // `text` as one user message
  int32_t max_tokens = 0;
  bool ignore_eos = true;
  v1::Priority priority = v1::PRIORITY_UNSPECIFIED;
  std::string client_request_id;
};

struct CallRecord {
  // Set by the driver.
  int64_t seq = 0;  // unique per run, in start order
  int32_t tenant = 0;
  int32_t client = -1;  // closed-loop client index; -1 for open-loop arrivals
  v1::Priority priority = v1::PRIORITY_UNSPECIFIED;
  int32_t prompt_tokens = 0;
  int32_t max_tokens = 0;
  bool ignore_eos = true;

  // Observed.
  Clock::time_point start;
  Clock::time_point end;
  std::vector<double> message_s;        // arrival of each message with tokens, seconds after start
  std::vector<int32_t> message_tokens;  // tokens in that message
  int64_t tokens = 0;
  int64_t messages = 0;        // all messages (SSE events), with or without tokens
  int32_t final_messages = 0;  // messages carrying a finish reason
  // No message followed the final one (OpenAI: no content or finish chunk; the usage chunk
  // comes after it by design).
  bool final_was_last = true;
  v1::FinishReason finish_reason = v1::FINISH_REASON_UNSPECIFIED;
  int64_t usage_completion_tokens = -1;
  double usage_queue_s = -1;  // gRPC only (the OpenAI usage has no queue time)
  std::string request_id;     // server-assigned, from the first message
  // gRPC's status, or for HTTP the code the answer maps to (transport.h: HttpStatusCode).
  absl::StatusCode code = absl::StatusCode::kUnknown;
  int http_status = 0;  // OpenAI mode: the response's HTTP status; 0: none arrived
  std::string status_message;
  int64_t retry_after_ms = -1;  // `retry-after-ms` trailer (gRPC) or `Retry-After` (HTTP)

  bool admitted() const { return messages > 0; }
  double ttft_s() const { return message_s.empty() ? -1 : message_s.front(); }
  double e2e_s() const { return std::chrono::duration<double>(end - start).count(); }
};

class StreamCall {
 public:
  virtual ~StreamCall() = default;
  // Sets `record.start` and sends the request; called once. The call may end (and `on_done`
  // run) before Start returns.
  virtual void Start() = 0;
  // Ends the stream early (its record then says CANCELLED). Thread-safe; the driver calls it
  // only before the call's `on_done` has returned.
  virtual void Cancel() = 0;
};

// Called exactly once per started call, from a transport thread, with the call still alive;
// the call never touches the driver again after it returns, and the driver never touches the
// call again after it returns.
using CallDone = std::function<void(StreamCall*, CallRecord&&)>;

class Transport {
 public:
  virtual ~Transport() = default;
  // One stream for `record.tenant` (its API key, its connections), not yet started: the driver
  // registers it, then calls Start. It ends within the spec's request timeout
  // (DEADLINE_EXCEEDED) or when cancelled.
  virtual StreamCall* NewCall(CallRecord record, const LoadRequest& request,
                              const CallDone& on_done) = 0;
};

std::unique_ptr<Transport> MakeGrpcTransport(const WorkloadSpec& spec);
// Resolves the target once; fails when it cannot be resolved.
absl::StatusOr<std::unique_ptr<Transport>> MakeOpenAiTransport(const WorkloadSpec& spec);
absl::StatusOr<std::unique_ptr<Transport>> MakeTransport(const WorkloadSpec& spec);

// The gRPC status code an HTTP answer stands for, so both protocols are counted alike
// (429 → RESOURCE_EXHAUSTED, 503 → UNAVAILABLE, 401 → UNAUTHENTICATED, ...).
absl::StatusCode HttpStatusCode(int http_status);
// The same for an error event inside a started stream (the OpenAI error's `code` string).
absl::StatusCode OpenAiErrorCode(const std::string& code);

}  // namespace dsinfer::loadgen
