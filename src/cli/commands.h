// dsinfer subcommands. Each prints JSON on stdout and returns a Status; main() prints errors on
// stderr and exits non-zero.
#pragma once

#include "absl/status/status.h"

namespace dsinfer::cli {

absl::Status RunLogits(int argc, char** argv);
absl::Status RunGenerate(int argc, char** argv);
absl::Status RunBench(int argc, char** argv);
absl::Status RunTokenize(int argc, char** argv);
absl::Status RunDetokenize(int argc, char** argv);
absl::Status RunPlan(int argc, char** argv);  // commands_plan.cc: capacity planner
absl::Status RunWorker(int argc, char** argv);

}  // namespace dsinfer::cli
