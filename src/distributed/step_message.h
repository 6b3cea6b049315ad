// What the leader broadcasts to every rank before each collective step: a fixed header, then
// (for a forward step) the step's sequences in a flat little-endian encoding.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "src/engine/model_runner.h"

namespace dsinfer {

enum class RankOp : uint32_t { kInit = 1, kForward = 2, kPing = 3, kShutdown = 4 };

struct RankHeader {
  uint32_t op = 0;
  uint32_t reserved = 0;
  int64_t payload_bytes = 0;
};
static_assert(sizeof(RankHeader) == 16);

// The sequences of one step, owning their storage.
struct DecodedStep {
  std::vector<int32_t> tokens, tables, penalties;
  std::vector<SamplingRow> rows;     // each sequence's sampling, then its draft_sampling rows
  std::vector<RunnerSequence> seqs;  // spans into the vectors above
  int64_t sample_vocab = 0;          // the leader's LimitSampledVocabulary
};

// Everything a rank needs to run the step as the leader does: sampling too, so MTP ranks
// sample the same tokens (from the same gathered logits and uniforms) and draft from them.
std::vector<char> EncodeStep(absl::Span<const RunnerSequence> seqs, int64_t sample_vocab = 0);
// Rejects anything malformed (sizes that do not add up) with INVALID_ARGUMENT.
absl::StatusOr<DecodedStep> DecodeStep(absl::Span<const char> bytes);

}  // namespace dsinfer
