// absl::Status -> grpc::Status at the RPC border. Both use the canonical status codes, so the
// code carries over unchanged; the message is what the client sees.
#pragma once

#include <grpcpp/support/status.h>

#include <string>

#include "absl/status/status.h"

namespace dsinfer {

inline grpc::Status ToGrpcStatus(const absl::Status& s) {
  if (s.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), std::string(s.message()));
}

}  // namespace dsinfer
