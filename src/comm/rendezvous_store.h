// Multi-node rendezvous over gRPC: the leader hosts a RendezvousServer (an in-memory key-value
// map whose Get waits for keys), every rank (the leader too) reaches it through a GrpcStore, the
// gloo::rendezvous::Store that gloo's connectFullMesh exchanges pair addresses through.
// The idea is PyTorch's TCPStore (a store hosted by rank 0, blocking get with a timeout, clients
// that retry until the leader is up), built on gRPC instead of a home-made socket protocol.
//
// Invariants
// - Set overwrites; Get returns all of its keys or none (never a partial set).
// - A wait ends with the values or DEADLINE_EXCEEDED (naming the missing keys, or the leader as
//   unreachable); never later than its timeout plus a short grace. A stopping leader answers
//   UNAVAILABLE, which clients retry until their timeout (the leader may be restarting).
// - With a token, every call must carry it (`x-dsinfer-rendezvous-token` metadata); the token
//   travels in clear text, so this keeps stray processes out of a private network, no more.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "gloo/rendezvous/store.h"

namespace dsinfer {

inline constexpr char kRendezvousTokenHeader[] = "x-dsinfer-rendezvous-token";

// The leader's side. Get waits on the server without holding a thread (gRPC callback API); one
// timer thread expires the waits.
class RendezvousServer {
 public:
  RendezvousServer();
  ~RendezvousServer();  // Stop()
  RendezvousServer(const RendezvousServer&) = delete;
  RendezvousServer& operator=(const RendezvousServer&) = delete;

  // Listens on "host:port" ("host:0" picks a free port) and returns the bound port. A non-empty
  // token is required of every call.
  absl::StatusOr<int> Start(absl::string_view listen, std::string token = "");
  // Fails pending waits with UNAVAILABLE and shuts the server down. Idempotent.
  void Stop();

  int port() const { return port_; }

 private:
  class Service;
  std::unique_ptr<Service> service_;
  int port_ = 0;
};

struct RendezvousClientOptions {
  std::string token;
  // How long get, wait without a timeout, and set (while the leader is not up yet) may take.
  std::chrono::milliseconds timeout = std::chrono::seconds(30);
};

// A rank's side, with absl::Status results. Every call retries while the leader is unreachable
// (gRPC reconnect backoff, 100 ms up to 1 s) until its timeout.
class RendezvousClient {
 public:
  explicit RendezvousClient(std::string leader, RendezvousClientOptions options = {});
  ~RendezvousClient();

  absl::Status Set(absl::string_view key, absl::string_view value);
  // The values of `keys` (in order) once they all exist; DEADLINE_EXCEEDED after `timeout`.
  absl::StatusOr<std::vector<std::string>> Get(absl::Span<const std::string> keys,
                                               std::chrono::milliseconds timeout);
  absl::Status Wait(absl::Span<const std::string> keys, std::chrono::milliseconds timeout);

  const std::string& leader() const { return leader_; }
  const RendezvousClientOptions& options() const { return options_; }

 private:
  struct Stub;
  absl::StatusOr<std::vector<std::string>> Fetch(absl::Span<const std::string> keys,
                                                 std::chrono::milliseconds timeout, bool wait_only);
  std::string leader_;
  RendezvousClientOptions options_;
  std::unique_ptr<Stub> stub_;
};

// gloo's view of the store. Failures throw gloo::IoException (what gloo's own FileStore throws)
// with a message naming the leader and the keys; connectFullMesh passes them on to its caller.
class GrpcStore final : public gloo::rendezvous::Store {
 public:
  explicit GrpcStore(std::string leader, RendezvousClientOptions options = {});

  void set(const std::string& key, const std::vector<char>& data) override;
  std::vector<char> get(const std::string& key) override;
  void wait(const std::vector<std::string>& keys) override;
  void wait(const std::vector<std::string>& keys,
            const std::chrono::milliseconds& timeout) override;

  RendezvousClient& client() { return client_; }

 private:
  RendezvousClient client_;
};

}  // namespace dsinfer
