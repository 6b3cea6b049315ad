// One Generate stream: a ServerWriteReactor between a gRPC call and a request of the server's
// api::Model (submitted and cancelled through it, src/api/model_internal.h).
//
// Invariants (see README.md):
// - The engine thread only queues: a delta is merged into the stream's pending message under
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

#include "dsinfer/model.h"
#include "dsinfer/v1/dsinfer.pb.h"
#include "src/engine/engine.h"

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
  // The request's callbacks (engine thread).
  void OnDelta(const api::Delta& delta);
  void OnResult(const api::Result& result);
  // With mu_ held: what to do next. Returns true when `to_write` was filled or `finish` set;
  // the caller performs the gRPC operation after unlocking.
  struct Next {
    bool write = false;
    bool finish = false;
  };
  Next NextLocked();
  void Perform(Next next);
  void FinishEarly(const absl::Status& status);
  // The gRPC status of an error; RESOURCE_EXHAUSTED adds `retry-after-ms` trailing metadata
  // (before Finish; nothing else touches it meanwhile).
  grpc::Status ErrorStatus(const absl::Status& status);
  // Why gRPC cancelled the call: its deadline passed, or the client went away.
  CancelReason WhyCancelled() const;

  InferenceService* const service_;
  grpc::CallbackServerContext* const context_;
  std::shared_ptr<GenerateReactor> self_;  // gRPC's reference, dropped in OnDone

  std::mutex mu_;
  std::optional<api::RequestHandle> handle_;  // once Submit returned
  bool id_sent_ = false;        // request_id went out on a message
  bool writing_ = false;        // a write is in flight
  bool finish_started_ = false;
  bool cancelled_ = false;                       // OnCancel ran
  CancelReason cancel_reason_ = CancelReason::kClient;
  bool done_ = false;                            // OnDone ran
  std::optional<v1::GenerateResponse> pending_;  // merged deltas not yet written
  std::optional<grpc::Status> final_status_;     // set by the request's result
  grpc::ByteBuffer in_flight_;                   // the message being written
  grpc::Status finish_status_;
};

}  // namespace dsinfer
