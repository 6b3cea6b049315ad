// One step's inputs, validated and laid out once for every backend (the "plan" of the step):
// token ids, positions, cache slots, block tables, which rows need logits, and which sequences
// attend in decode (one new token after a prefix) or prefill form. Every layer of every backend
// reads this; nothing else re-derives it.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "src/engine/model_runner.h"

namespace dsinfer {

struct StepLimits {
  int64_t vocab_size = 0;
  int64_t max_positions = 0;  // the model's context length
  int32_t num_blocks = 0;     // KV cache blocks (block ids must be below)
  int64_t block_size = 64;
};

struct StepInput {
  int64_t num_tokens = 0, num_seqs = 0;
  std::vector<int32_t> tokens;        // [N]
  std::vector<int32_t> positions;     // [N]
  std::vector<int32_t> slots;         // [N] cache row of each new token: block * bs + pos % bs
  std::vector<int64_t> token_offset;  // [S] first row of each sequence
  std::vector<int32_t> n_new;         // [S] new tokens
  std::vector<int32_t> start_pos;     // [S] tokens cached before the step
  std::vector<int32_t> tables;        // blocks covering each sequence after the step, concatenated
  std::vector<int32_t> table_offset;  // [S] first entry of each sequence in tables
  std::vector<int32_t> logit_rows;    // [R] token rows whose logits are computed, in order
                                      // (a drafted sequence: its last 1 + num_draft)
  std::vector<int32_t> last_logit;    // [S] index into logit_rows of each sequence's last token
  // Decode form: sequences with one new token after a cached prefix, and drafted sequences (the
  // token and its k drafts: k + 1 decode queries, so verifying drafts costs what decodes cost
  // instead of re-expanding the whole prefix). Each decode query attends its own causal prefix.
  std::vector<int32_t> decode_seqs;    // sequences in decode form
  std::vector<int32_t> prefill_seqs;   // the others
  std::vector<int32_t> decode_rows;    // [Q] token row of each decode query
  std::vector<int32_t> decode_tables;  // [Q, max_blocks] padded block tables
  std::vector<int32_t> decode_lens;    // [Q] tokens attended (its own included)
  int64_t max_blocks = 0;
  bool all_decode = false;  // every sequence has exactly one new token, after a prefix

  absl::Span<const int32_t> table(int64_t s) const {
    const int64_t end = s + 1 < num_seqs ? table_offset[s + 1] : static_cast<int64_t>(tables.size());
    return absl::MakeConstSpan(tables.data() + table_offset[s], end - table_offset[s]);
  }
};

// InvalidArgument naming the sequence and the field that is wrong.
absl::StatusOr<StepInput> BuildStepInput(absl::Span<const RunnerSequence> seqs,
                                         const StepLimits& limits);

}  // namespace dsinfer
