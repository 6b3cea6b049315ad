// The serving subcommands: `dsinfer serve` runs the gRPC server, `dsinfer client` talks to one.
#pragma once

#include "absl/status/status.h"

namespace dsinfer::cli {

absl::Status RunServe(int argc, char** argv);
absl::Status RunClient(int argc, char** argv);

}  // namespace dsinfer::cli
