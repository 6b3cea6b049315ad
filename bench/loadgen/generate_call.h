// One Generate stream (gRPC callback API) and what it observed: when it started, when each
// message with tokens arrived, how it ended. Callbacks run on gRPC threads; a call touches only
// its own record, and hands it over once, in OnDone.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "dsinfer/v1/dsinfer.grpc.pb.h"

namespace dsinfer::loadgen {

using Clock = std::chrono::steady_clock;

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
  int64_t messages = 0;        // all messages, with or without tokens
  int32_t final_messages = 0;  // messages carrying a finish reason
  bool final_was_last = true;  // no message followed the one with the finish reason
  v1::FinishReason finish_reason = v1::FINISH_REASON_UNSPECIFIED;
  int64_t usage_completion_tokens = -1;
  double usage_queue_s = -1;
  std::string request_id;  // server-assigned, from the first message
  grpc::StatusCode code = grpc::StatusCode::UNKNOWN;
  std::string status_message;
  int64_t retry_after_ms = -1;  // trailing metadata on RESOURCE_EXHAUSTED

  bool admitted() const { return messages > 0; }
  double ttft_s() const { return message_s.empty() ? -1 : message_s.front(); }
  double e2e_s() const { return std::chrono::duration<double>(end - start).count(); }
};

class GenerateCall : public grpc::ClientReadReactor<v1::GenerateResponse> {
 public:
  // `on_done` receives the finished record exactly once, from OnDone; the call deletes itself
  // right after (the driver never touches it again once on_done ran).
  GenerateCall(CallRecord record, v1::GenerateRequest request, const std::string& api_key,
               double timeout_s, std::function<void(GenerateCall*, CallRecord&&)> on_done);

  void Start(v1::Inference::Stub* stub);
  // Safe from any thread while the call is registered with the driver.
  void Cancel() { ctx_.TryCancel(); }

  void OnReadDone(bool ok) override;
  void OnDone(const grpc::Status& status) override;

 private:
  CallRecord record_;
  v1::GenerateRequest request_;
  v1::GenerateResponse response_;
  grpc::ClientContext ctx_;
  std::function<void(GenerateCall*, CallRecord&&)> on_done_;
};

}  // namespace dsinfer::loadgen
