// The CPU implementation of Communicator: Gloo (the CPU collective library PyTorch uses) over
// TCP, one process per rank. Ranks meet through a gloo::rendezvous::Store: a FileStore in a
// shared directory for ranks on one host, the leader's gRPC store across hosts (bootstrap.h).
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "src/comm/communicator.h"

namespace gloo {
class Context;
namespace rendezvous {
class Store;
}
}  // namespace gloo

namespace dsinfer {

struct GlooOptions {
  int rank = 0;
  int size = 1;
  std::string bind_address = "127.0.0.1";  // this rank's address for the TCP transport
  std::chrono::milliseconds timeout{60000};
};

class GlooCommunicator : public Communicator {
 public:
  // Connects the full mesh of `options.size` ranks through `store` (every rank calls it).
  static absl::StatusOr<std::unique_ptr<GlooCommunicator>> Create(gloo::rendezvous::Store& store,
                                                                  const GlooOptions& options);
  ~GlooCommunicator() override;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  const char* backend_name() const override { return "gloo"; }
  bool healthy() const override { return healthy_; }

  absl::Status AllReduceSum(void* data, int64_t count, CommDType dtype) override;
  absl::Status AllGatherV(const void* in, void* out,
                          absl::Span<const int64_t> bytes_per_rank) override;
  absl::Status AllToAllV(const void* in, absl::Span<const int64_t> send_bytes, void* out,
                         absl::Span<const int64_t> recv_bytes) override;
  absl::Status AllToAll(const void* in, void* out, int64_t bytes_per_rank) override;
  absl::Status Broadcast(void* data, int64_t bytes, int root) override;
  absl::Status Barrier() override;
  void set_timeout(std::chrono::milliseconds timeout) override { timeout_ = timeout; }

 private:
  GlooCommunicator(std::shared_ptr<gloo::Context> context, int rank, int size,
                   std::chrono::milliseconds timeout);
  // Runs one collective, turning Gloo's exceptions into UNAVAILABLE (and healthy() false).
  template <typename Fn>
  absl::Status Run(const char* op, CommStats::Op& stat, int64_t bytes, Fn&& fn);

  std::shared_ptr<gloo::Context> context_;
  int rank_, size_;
  std::chrono::milliseconds timeout_;
  bool healthy_ = true;
};

}  // namespace dsinfer
