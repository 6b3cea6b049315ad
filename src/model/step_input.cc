#include "src/model/step_input.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace dsinfer {

absl::StatusOr<StepInput> BuildStepInput(absl::Span<const RunnerSequence> seqs,
                                         const StepLimits& limits) {
  StepInput st;
  if (seqs.empty()) return absl::InvalidArgumentError("forward: empty batch");
  const int64_t bs = limits.block_size;
  st.num_seqs = static_cast<int64_t>(seqs.size());
  for (size_t s = 0; s < seqs.size(); ++s) {
    const RunnerSequence& in = seqs[s];
    const int64_t n = static_cast<int64_t>(in.tokens.size());
    if (n == 0) return absl::InvalidArgumentError(absl::StrCat("sequence ", s, ": no tokens"));
    if (in.start_pos < 0 || in.start_pos + n > limits.max_positions) {
      return absl::InvalidArgumentError(
          absl::StrCat("sequence ", s, ": positions up to ", in.start_pos + n,
                       " exceed max_position_embeddings ", limits.max_positions));
    }
    const int64_t nb = (in.start_pos + n + bs - 1) / bs;
    if (static_cast<int64_t>(in.block_table.size()) < nb) {
      return absl::InvalidArgumentError(
          absl::StrCat("sequence ", s, ": block table holds ", in.block_table.size(),
                       " blocks, too few for ", in.start_pos + n, " tokens"));
    }
    for (int32_t b : in.block_table)
      if (b < 0 || b >= limits.num_blocks)
        return absl::InvalidArgumentError(
            absl::StrCat("sequence ", s, ": block id ", b, " out of range"));
    for (int32_t t : in.tokens)
      if (t < 0 || t >= limits.vocab_size)
        return absl::InvalidArgumentError(absl::StrCat("sequence ", s, ": token id ", t,
                                                       " outside the vocabulary [0, ",
                                                       limits.vocab_size, ")"));
    if (in.num_draft < 0 || in.num_draft > kMaxMtpDraftTokens || in.num_draft >= n ||
        (in.num_draft > 0 && !in.sample)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "sequence ", s, ": num_draft ", in.num_draft, " (0 .. ", kMaxMtpDraftTokens,
          ", below the ", n, " new tokens, with sample)"));
    }
    st.token_offset.push_back(st.num_tokens);
    st.n_new.push_back(static_cast<int32_t>(n));
    st.start_pos.push_back(static_cast<int32_t>(in.start_pos));
    st.table_offset.push_back(static_cast<int32_t>(st.tables.size()));
    st.tables.insert(st.tables.end(), in.block_table.begin(), in.block_table.begin() + nb);
    for (int64_t i = 0; i < n; ++i) {
      const int64_t pos = in.start_pos + i;
      st.tokens.push_back(in.tokens[i]);
      st.positions.push_back(static_cast<int32_t>(pos));
      st.slots.push_back(static_cast<int32_t>(in.block_table[pos / bs] * bs + pos % bs));
      if (in.all_logits || i >= n - 1 - in.num_draft) st.logit_rows.push_back(static_cast<int32_t>(st.num_tokens + i));
    }
    st.last_logit.push_back(static_cast<int32_t>(st.logit_rows.size()) - 1);
    st.num_tokens += n;
    if (in.start_pos > 0 && n == 1 + in.num_draft) {
      st.decode_seqs.push_back(static_cast<int32_t>(s));
      st.max_blocks = std::max<int64_t>(st.max_blocks, nb);
    } else {
      st.prefill_seqs.push_back(static_cast<int32_t>(s));
    }
  }
  st.all_decode = st.prefill_seqs.empty() && st.num_tokens == st.num_seqs;
  for (int32_t s : st.decode_seqs) {
    const RunnerSequence& in = seqs[s];
    for (int64_t i = 0; i < st.n_new[s]; ++i) {
      const int64_t len = in.start_pos + i + 1, nb = (len + bs - 1) / bs;
      const size_t at = st.decode_tables.size();
      st.decode_tables.resize(at + st.max_blocks, 0);
      std::copy(in.block_table.begin(), in.block_table.begin() + nb, st.decode_tables.begin() + at);
      st.decode_rows.push_back(static_cast<int32_t>(st.token_offset[s] + i));
      st.decode_lens.push_back(static_cast<int32_t>(len));
    }
  }
  return st;
}

}  // namespace dsinfer
