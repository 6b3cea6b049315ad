#include "src/comm/bootstrap.h"

#include <cstdlib>
#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gloo/rendezvous/file_store.h"
#include "gloo/rendezvous/prefix_store.h"
#ifdef DSINFER_HAVE_RENDEZVOUS
#include "src/comm/rendezvous_store.h"
#endif

namespace dsinfer {

absl::StatusOr<std::unique_ptr<Communicator>> ConnectRanks(const std::string& rendezvous,
                                                           const GlooOptions& options) {
  if (absl::StartsWith(rendezvous, "file:")) {
    const std::string dir = rendezvous.substr(5);
    std::error_code ec;
    if (!std::filesystem::is_directory(dir, ec)) {
      return absl::InvalidArgumentError(
          absl::StrCat("rendezvous directory ", dir, " does not exist"));
    }
    gloo::rendezvous::FileStore file(dir);
    gloo::rendezvous::PrefixStore store("dsinfer", file);
    auto comm = GlooCommunicator::Create(store, options);
    if (!comm.ok()) return comm.status();
    return std::unique_ptr<Communicator>(std::move(*comm));
  }
  if (absl::StartsWith(rendezvous, "grpc:")) {
#ifdef DSINFER_HAVE_RENDEZVOUS
    const char* token = std::getenv("DSINFER_RENDEZVOUS_TOKEN");
    GrpcStore grpc(rendezvous.substr(5), {.token = token ? token : "", .timeout = options.timeout});
    gloo::rendezvous::PrefixStore store("dsinfer", grpc);
    auto comm = GlooCommunicator::Create(store, options);
    if (!comm.ok()) return comm.status();
    return std::unique_ptr<Communicator>(std::move(*comm));
#else
    return absl::UnimplementedError("grpc: rendezvous needs a build with gRPC");
#endif
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "rendezvous \"", rendezvous, "\" is neither file:DIR nor grpc:HOST:PORT"));
}

}  // namespace dsinfer
