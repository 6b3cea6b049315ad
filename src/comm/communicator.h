// The collectives a sharded model step needs, over one group of ranks. Two real
// implementations: Gloo over TCP for CPU processes (gloo_communicator.h) and NCCL for GPUs
// (nccl_communicator.h, device pointers, on the communicator's stream).
//
// Invariants
// - Every rank of the group calls the same collectives in the same order with matching sizes;
//   a rank that is gone or late past the timeout makes every call fail with UNAVAILABLE, never
//   hang, and the communicator is unusable afterwards (healthy() turns false).
// - Buffers are host pointers for Gloo, device pointers for NCCL; "bytes" sizes are per rank.
// - Results are identical on every rank (all-reduce sums in one fixed order per element).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/types/span.h"

namespace dsinfer {

enum class CommDType : uint8_t { kF32, kBF16 };

// Bytes this rank sent and time spent per kind of collective since construction.
struct CommStats {
  struct Op {
    int64_t calls = 0;
    int64_t bytes = 0;  // payload bytes this rank contributed (send side)
    double seconds = 0;
  };
  Op all_reduce, all_gather, all_to_all, broadcast;
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual const char* backend_name() const = 0;  // "gloo" | "nccl"
  virtual bool healthy() const = 0;

  // In place: data[i] = sum over ranks of data[i] (count elements of dtype).
  virtual absl::Status AllReduceSum(void* data, int64_t count, CommDType dtype) = 0;
  // out = concatenation over ranks of each rank's `in` (bytes_per_rank[r] bytes from rank r;
  // in holds bytes_per_rank[rank()] bytes). Sizes may be zero.
  virtual absl::Status AllGatherV(const void* in, void* out,
                                  absl::Span<const int64_t> bytes_per_rank) = 0;
  // Rank r sends send_bytes[d] bytes (contiguous in `in`, destinations in rank order) to each
  // rank d and receives recv_bytes[s] bytes from each rank s into `out` (sources in rank order).
  // Both sides must agree on the sizes (exchange them first with AllToAll).
  virtual absl::Status AllToAllV(const void* in, absl::Span<const int64_t> send_bytes, void* out,
                                 absl::Span<const int64_t> recv_bytes) = 0;
  // Fixed-size all-to-all: block d (bytes_per_rank bytes) of `in` goes to rank d; block s of
  // `out` comes from rank s.
  virtual absl::Status AllToAll(const void* in, void* out, int64_t bytes_per_rank) = 0;
  virtual absl::Status Broadcast(void* data, int64_t bytes, int root) = 0;
  virtual absl::Status Barrier() = 0;

  // Timeout of the next collectives (idle workers wait long for the next step; steps do not).
  virtual void set_timeout(std::chrono::milliseconds timeout) = 0;

  const CommStats& stats() const { return stats_; }
  void ResetStats() { stats_ = CommStats(); }

 protected:
  CommStats stats_;
};

}  // namespace dsinfer
