// One Generate stream: a ServerWriteReactor between a gRPC call and an engine request.
//
// Invariants (see README.md):
// - The engine thread only queues: an event is merged into the stream's pending message under
//   the stream mutex and, if no write is in flight, a write is started. It never waits.
// - One write in flight; OnWriteDone starts the next. A slow client therefore holds at most one
//   message in flight plus one pending message that grows by merging (tokens and text append).
// - Finish is called exactly once, after the last write completed: OK after the final message
//   (finish_reason + usage), or the engine's error status (RESOURCE_EXHAUSTED carries
//   `retry-after-ms` trailing metadata), or CANCELLED when the client went away.
// - OnCancel (client cancel, broken connection, deadline) cancels the engine request, which frees
//   its KV blocks within a step; a passed deadline is reported as DEADLINE_EXCEEDED.
// - Authentication comes before anything else: an unauthenticated caller learns nothing of the
//   server's state.
// - The object lives until both gRPC (OnDone) and the engine (its sink) have let go of it.
#pragma once

#include <grpcpp/server_context.h>
#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/server_callback.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>

#include "dsinfer/v1/dsinfer.pb.h"
#include "src/engine/engine.h"
#include "src/server/chat_output.h"

namespace dsinfer {

class InferenceService;

class GenerateReactor : public grpc::ServerWriteReactor<grpc::ByteBuffer>,
                        public std::enable_shared_from_this<GenerateReactor> {
 public:
  // Starts the call: parses, authenticates and validates the request, then submits it (or
  // finishes with the error). The reactor keeps itself alive until OnDone.
  static GenerateReactor* Start(InferenceService* service, grpc::CallbackServerContext* context,
                                const grpc::ByteBuffer& request);

  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

  GenerateReactor(InferenceService* service, grpc::CallbackServerContext* context);

 private:
  void Begin(const grpc::ByteBuffer& request);
  // The engine's sink (engine thread).
  void OnEngineEvent(EngineEvent event);
  // With mu_ held: what to do next. Returns true when `to_write` was filled or `finish` set;
  // the caller performs the gRPC operation after unlocking.
  struct Next {
    bool write = false;
    bool finish = false;
  };
  Next NextLocked();
  void Perform(Next next);
  void FinishEarly(const absl::Status& status);
  // Why gRPC cancelled the call: its deadline passed, or the client went away.
  CancelReason WhyCancelled() const;

  InferenceService* const service_;
  grpc::CallbackServerContext* const context_;
  std::shared_ptr<GenerateReactor> self_;  // gRPC's reference, dropped in OnDone

  std::mutex mu_;
  std::optional<uint64_t> id_;  // engine request id, once Submit returned
  bool id_sent_ = false;        // request_id went out on a message
  bool writing_ = false;        // a write is in flight
  bool finish_started_ = false;
  bool cancelled_ = false;                       // OnCancel ran
  CancelReason cancel_reason_ = CancelReason::kClient;
  bool done_ = false;                            // OnDone ran
  std::optional<v1::GenerateResponse> pending_;  // merged events not yet written
  // Chat input of a DeepSeek format: the text read as reasoning / content / tool calls. Set in
  // Begin before Submit; then used only under mu_ by the engine's sink.
  std::optional<ChatOutput> output_;
  std::optional<grpc::Status> final_status_;     // set by the last engine event
  grpc::ByteBuffer in_flight_;                   // the message being written
  grpc::Status finish_status_;
};

}  // namespace dsinfer
