// What one forward step runs: the new tokens of several sequences (decode tokens and prefill
// chunks mixed), each with its position and the block table of its paged latent KV cache.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/types/span.h"

namespace dsinfer {

struct SequenceInput {
  absl::Span<const int32_t> tokens;       // new tokens of this step (>= 1)
  int64_t start_pos = 0;                  // tokens of this sequence already in the cache
  absl::Span<const int32_t> block_table;  // must cover start_pos + tokens.size() tokens
  bool all_logits = false;                // logits for every new token, else only the last
};

// Derived once per step and shared by every layer (the "plan" of the step).
struct ForwardPlan {
  int64_t num_tokens = 0;
  std::vector<int32_t> positions;      // [num_tokens]
  std::vector<int64_t> token_offset;   // [num_seqs] first row of each sequence
  std::vector<int32_t> decode_seqs;    // sequences attended in absorbed (decode) form
  std::vector<int32_t> prefill_seqs;   // sequences attended in expanded (prefill) form
  std::vector<int32_t> decode_tables;  // [decode_seqs, max_blocks] padded block tables
  std::vector<int32_t> decode_lens;    // [decode_seqs] tokens attended
  int64_t max_blocks = 0;
  std::vector<int64_t> logit_rows;     // token rows whose logits are returned, in order
};

}  // namespace dsinfer
