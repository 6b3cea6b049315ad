// Offline generation over any Executor (the CLI's --device cuda path, GPU tests and benchmarks):
// the same prefill-then-decode loop as engine/batch_generator.h's GenerateBatch, which drives a
// DeepseekModel directly. Block tables come from a BlockPool over the executor's KV blocks.
#pragma once

#include <functional>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "src/engine/batch_generator.h"
#include "src/engine/executor.h"

namespace dsinfer {

absl::StatusOr<std::vector<GenerationResult>> GenerateOnExecutor(
    Executor& executor, absl::Span<const GenerationRequest> requests,
    const GenerationOptions& options = {}, GenerationStats* stats = nullptr,
    const std::function<void(size_t request, int32_t token)>& on_token = nullptr);

}  // namespace dsinfer
