// The expert-parallel MoE layer, dispatch / combine as DeepEP does it (DeepSeek-V3 report,
// section 3.4), written over the backend's collectives:
//   1. every rank routes its own slice of the step's tokens (ShardLayout::PartBegin);
//   2. dispatch: each token goes once to every rank of each expert group that holds one of its
//      experts, with its top-k ids (-1 where the expert is not that group's) and weights;
//   3. each rank runs its experts (its slice of their intermediate dim) on what it received,
//      summing a row's experts weighted, in ascending expert order;
//   4. combine: the partial outputs go back to the token's rank, which adds them in rank order
//      (= ascending expert groups) and its replicated shared experts;
//   5. all-gather of the token slices gives every rank the whole [n, hidden] output.
#include <vector>

#include "src/core/status_macros.h"
#include "src/model/deepseek_program.h"

namespace dsinfer {

absl::Status DeepseekProgram::MoeParallel(int64_t layer, Tensor xn, Tensor xr, Tensor out) {
  const ModelConfig& c = config_;
  const ShardLayout& lay = layout_;
  const DeepseekLayerWeights& L = weights_.layers[layer];
  const int64_t n = xn.rows, D = c.hidden_size, K = router_.top_k;
  const int W = lay.tp;
  const int64_t t0 = ShardLayout::PartBegin(n, W, lay.rank);
  const int64_t nl = ShardLayout::PartBegin(n, W, lay.rank + 1) - t0;

  // 1. Route this rank's tokens; the plan of the dispatch is made on the host.
  ASSIGN_OR_RETURN(Tensor ids, ops_.Scratch(nl, K, ElemType::kI32));
  ASSIGN_OR_RETURN(Tensor wts, ops_.Scratch(nl, K, ElemType::kF32));
  RETURN_IF_ERROR(ops_.MoeRoute(layer, xr.Rows(t0, nl), *L.router, L.router_bias.get(), router_,
                                ids, wts));
  std::vector<int32_t> h_ids(nl * K);
  std::vector<float> h_wts(nl * K);
  RETURN_IF_ERROR(ops_.CopyToHost(ids, h_ids.data()));
  RETURN_IF_ERROR(ops_.CopyToHost(wts, h_wts.data()));
  RETURN_IF_ERROR(ops_.Sync());

  // 2. Dispatch rows in destination-rank order; sent_tok remembers the order.
  std::vector<int32_t> sent_tok, send_ids;
  std::vector<float> send_wts;
  std::vector<int64_t> send_rows(W, 0), recv_rows(W, 0);
  for (int d = 0; d < W; ++d) {
    const int group = d / lay.moe_tp();
    for (int64_t t = 0; t < nl; ++t) {
      bool any = false;
      for (int64_t k = 0; k < K; ++k) any |= lay.ExpertGroup(c, h_ids[t * K + k]) == group;
      if (!any) continue;
      for (int64_t k = 0; k < K; ++k) {
        const int32_t id = h_ids[t * K + k];
        send_ids.push_back(lay.ExpertGroup(c, id) == group ? id : -1);
        send_wts.push_back(h_wts[t * K + k]);
      }
      sent_tok.push_back(static_cast<int32_t>(t));
      ++send_rows[d];
    }
  }
  RETURN_IF_ERROR(ops_.ExchangeCounts(send_rows, absl::MakeSpan(recv_rows)));
  int64_t received = 0;
  for (int64_t r : recv_rows) received += r;
  const int64_t sent = static_cast<int64_t>(sent_tok.size());
  ASSIGN_OR_RETURN(Tensor sx, ops_.Scratch(sent, D, xn.dtype));
  ASSIGN_OR_RETURN(Tensor sids, ops_.Scratch(sent, K, ElemType::kI32));
  ASSIGN_OR_RETURN(Tensor swts, ops_.Scratch(sent, K, ElemType::kF32));
  RETURN_IF_ERROR(ops_.GatherRows(xn.Rows(t0, nl), sent_tok, sx));
  RETURN_IF_ERROR(ops_.CopyFromHost(send_ids.data(), sids));
  RETURN_IF_ERROR(ops_.CopyFromHost(send_wts.data(), swts));
  ASSIGN_OR_RETURN(Tensor rx, ops_.Scratch(received, D, xn.dtype));
  ASSIGN_OR_RETURN(Tensor rids, ops_.Scratch(received, K, ElemType::kI32));
  ASSIGN_OR_RETURN(Tensor rwts, ops_.Scratch(received, K, ElemType::kF32));
  RETURN_IF_ERROR(ops_.AllToAllRows(sx, send_rows, rx, recv_rows));
  RETURN_IF_ERROR(ops_.AllToAllRows(sids, send_rows, rids, recv_rows));
  RETURN_IF_ERROR(ops_.AllToAllRows(swts, send_rows, rwts, recv_rows));

  // 3. This rank's experts on the received rows.
  ASSIGN_OR_RETURN(Tensor partial, ops_.Scratch(received, D, ElemType::kF32));
  RETURN_IF_ERROR(ops_.Moe(rx, rids, rwts, *L.experts, nullptr, nullptr, partial,
                           /*accumulate=*/false));

  // 4. Combine back to the tokens' ranks, then the shared experts on this rank's tokens.
  ASSIGN_OR_RETURN(Tensor back, ops_.Scratch(sent, D, ElemType::kF32));
  RETURN_IF_ERROR(ops_.AllToAllRows(partial, recv_rows, back, send_rows));
  ASSIGN_OR_RETURN(Tensor local, ops_.Scratch(nl, D, ElemType::kF32));
  RETURN_IF_ERROR(ops_.Zero(local));
  RETURN_IF_ERROR(ops_.ScatterAddRows(back, sent_tok, local));
  if (L.shared_gate_up && nl > 0) {
    RETURN_IF_ERROR(ops_.Mlp(xn.Rows(t0, nl), *L.shared_gate_up, *L.shared_down, local,
                             /*accumulate=*/true));
  }

  // 5. Every rank gets every token's output.
  std::vector<int64_t> slice_rows(W);
  for (int r = 0; r < W; ++r)
    slice_rows[r] = ShardLayout::PartBegin(n, W, r + 1) - ShardLayout::PartBegin(n, W, r);
  return ops_.AllGatherRows(local, slice_rows, out);
}

}  // namespace dsinfer
