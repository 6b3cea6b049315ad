// Communicator over NCCL for GPU ranks: device pointers, all work on the communicator's stream.
// Built only with the CUDA backend (DSINFER_HAVE_CUDA) and NCCL.
//
// Design (the idea of PyTorch's ProcessGroupNCCL watchdog, our own code):
// - The communicator is non-blocking (ncclConfig_t::blocking = 0), so neither init, nor the lazy
//   peer connection of the first send/recv, nor an enqueue can hang on a dead peer.
// - Each call enqueues, then polls ncclCommGetAsyncError and cudaStreamQuery until the work is
//   done or the timeout passes. On timeout or an asynchronous error the communicator is aborted
//   (ncclCommAbort), healthy() turns false and this and every later call fail with UNAVAILABLE.
//   The watchdog is inline (the calling thread), so no other thread ever touches the ncclComm_t.
// - Calls are host-synchronous: when a call returns OK, the result is in device memory and the
//   stream has no NCCL work pending. Work the caller queued earlier on the same stream runs
//   first; pass the compute stream at creation to order the collectives with the kernels.
#pragma once

#include <cuda_runtime_api.h>
#include <nccl.h>

#include <array>
#include <atomic>
#include <chrono>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "src/comm/communicator.h"

namespace dsinfer {

struct NcclCommunicatorOptions {
  // Timeout of init and of every collective until set_timeout changes it.
  std::chrono::milliseconds timeout = std::chrono::minutes(10);
  // The stream the collectives run on; nullptr: the communicator creates (and owns) a blocking
  // stream (ordered after work on the legacy default stream).
  cudaStream_t stream = nullptr;
};

// The ncclUniqueId as it travels over the control channel.
using NcclUniqueIdBytes = std::array<char, NCCL_UNIQUE_ID_BYTES>;

class NcclCommunicator final : public Communicator {
 public:
  // Joins the group: every one of the `size` ranks calls this with the same id (collective;
  // fails with UNAVAILABLE when the others do not show up within options.timeout).
  static absl::StatusOr<std::unique_ptr<NcclCommunicator>> Create(
      int rank, int size, const NcclUniqueIdBytes& id, int device,
      const NcclCommunicatorOptions& options = {});
  ~NcclCommunicator() override;
  NcclCommunicator(const NcclCommunicator&) = delete;
  NcclCommunicator& operator=(const NcclCommunicator&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  const char* backend_name() const override { return "nccl"; }
  bool healthy() const override { return comm_ != nullptr; }

  absl::Status AllReduceSum(void* data, int64_t count, CommDType dtype) override;
  absl::Status AllGatherV(const void* in, void* out,
                          absl::Span<const int64_t> bytes_per_rank) override;
  absl::Status AllToAllV(const void* in, absl::Span<const int64_t> send_bytes, void* out,
                         absl::Span<const int64_t> recv_bytes) override;
  absl::Status AllToAll(const void* in, void* out, int64_t bytes_per_rank) override;
  absl::Status Broadcast(void* data, int64_t bytes, int root) override;
  absl::Status Barrier() override;
  void set_timeout(std::chrono::milliseconds timeout) override { timeout_ms_ = timeout.count(); }

  int device() const { return device_; }
  cudaStream_t stream() const { return stream_; }

 private:
  NcclCommunicator(int rank, int size, int device, cudaStream_t stream, bool owns_stream,
                   std::chrono::milliseconds timeout);

  // OK while healthy; the error that broke the communicator afterwards.
  absl::Status CheckUsable(absl::string_view op) const;
  // The inline watchdog: waits until NCCL has enqueued `op` (and, with query_stream, until the
  // stream has run it) or the timeout passes.
  absl::Status WaitDone(absl::string_view op, bool query_stream);
  // Turns a failed NCCL call into a Status; aborts the communicator when the group is broken.
  absl::Status Fail(ncclResult_t result, absl::string_view op);
  absl::Status FailCuda(cudaError_t err, absl::string_view op);
  absl::Status FailTimeout(absl::string_view op);
  void Abort(absl::Status why);
  // Runs `op` (its NCCL calls enqueue on stream_), then waits; records stats on success.
  template <typename Enqueue>
  absl::Status Run(absl::string_view op, CommStats::Op* stat, int64_t bytes, Enqueue&& enqueue);

  const int rank_, size_, device_;
  cudaStream_t stream_;
  const bool owns_stream_;
  std::atomic<int64_t> timeout_ms_;
  ncclComm_t comm_ = nullptr;  // null once aborted
  float* barrier_scratch_ = nullptr;
  absl::Status broken_;  // why comm_ was aborted
};

// Bootstraps a group over a host-side control channel (the Gloo communicator): rank 0 creates
// the unique id, broadcasts its bytes over `control`, then every rank joins with
// NcclCommunicator::Create(control.rank(), control.size(), id, device). Collective over
// `control`'s ranks.
absl::StatusOr<std::unique_ptr<NcclCommunicator>> CreateNcclCommunicator(
    Communicator& control, int device, const NcclCommunicatorOptions& options = {});

}  // namespace dsinfer
