// How the ranks of one deployment find each other: a rendezvous spec names the store that
// carries the Gloo addresses (and, on GPUs, the NCCL unique id broadcast over Gloo).
//   file:DIR        a directory every rank can see (ranks on one host; the launcher makes it)
//   grpc:HOST:PORT  the leader's rendezvous server (ranks on several hosts; rendezvous_store.h)
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "src/comm/gloo_communicator.h"

namespace dsinfer {

absl::StatusOr<std::unique_ptr<Communicator>> ConnectRanks(const std::string& rendezvous,
                                                           const GlooOptions& options);

}  // namespace dsinfer
