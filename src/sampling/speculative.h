// Speculative sampling's verification rule (Leviathan et al. 2023, "Fast Inference from
// Transformers via Speculative Decoding", section 2.3; Chen et al. 2023, "Accelerating Large
// Language Model Decoding with Speculative Sampling", algorithm 2): a draft token x drawn from
// the draft model's distribution q is accepted with probability min(1, p(x) / q(x)), where p is
// the target model's distribution; otherwise the token is drawn from norm(max(0, p - q)). The
// token that comes out is distributed exactly as p, whatever q is.
//
// The MTP drafts of src/model are greedy (q is one-hot at the draft d): the rule is then
// "accept with probability p(d), else draw from p without d", which one draw x ~ p decides
// (accept iff x == d; x is the resample otherwise). ProgramRunner verifies that way.
//
// k greedy drafts d_1..d_k (the MTP layer chained) are verified left to right (Leviathan et
// al., algorithm 1, with one-hot q): row j's sample x_j ~ p(. | prefix, d_1..d_j) decides d_{j+1}
// only when d_1..d_j were accepted, so every sample used was drawn in the sequence's true
// context; the first x_j that differs from d_{j+1} (or x_k: the bonus token) ends the step.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/types/span.h"

namespace dsinfer {

struct DraftVerdict {
  bool accepted = false;
  int32_t token = -1;  // the draft when accepted, else the resampled token
};

// p, q: probabilities over the same vocabulary (each summing to 1); draft: the token drawn from
// q (q[draft] > 0); u_accept, u_resample: independent uniform draws in [0, 1).
DraftVerdict VerifyDraft(absl::Span<const float> p, absl::Span<const float> q, int32_t draft,
                         double u_accept, double u_resample);

// Greedy drafts d_1..d_k and the samples x_0..x_k of the k + 1 verified rows (x_j from the row
// after d_j; x_0 from the row before d_1): the tokens the step produces, x_0..x_a where a is the
// number of drafts accepted (x_j == d_{j+1} for every j < a).
std::vector<int32_t> AcceptGreedyDrafts(absl::Span<const int32_t> drafts,
                                        absl::Span<const int32_t> samples);

}  // namespace dsinfer
