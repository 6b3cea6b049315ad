// Dispatch / combine of a routed token slice (moe_dispatch.h):
//   1. the caller routed its slice (ids, weights) on this rank;
//   2. dispatch: each row goes once to every rank of each expert group that holds one of its
//      experts, with its top-k ids (-1 where the expert is not that group's) and weights;
//   3. each rank runs its experts (its slice of their intermediate dim) on what it received;
//   4. combine: the partial outputs go back to the row's rank, which adds them in rank order.
#include "src/model/moe_dispatch.h"

#include <vector>

#include "src/core/status_macros.h"

namespace dsinfer {

absl::Status DispatchCombine(BackendOps& ops, const ModelConfig& c, const ShardLayout& lay,
                             Tensor x, Tensor ids, Tensor wts, const RankExpertsFn& experts,
                             Tensor local) {
  const int64_t nl = x.rows, D = x.cols, K = ids.cols;
  const int W = lay.tp;
  // The plan of the dispatch is made on the host.
  std::vector<int32_t> h_ids(nl * K);
  std::vector<float> h_wts(nl * K);
  RETURN_IF_ERROR(ops.CopyToHost(ids, h_ids.data()));
  RETURN_IF_ERROR(ops.CopyToHost(wts, h_wts.data()));
  RETURN_IF_ERROR(ops.Sync());

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
  RETURN_IF_ERROR(ops.ExchangeCounts(send_rows, absl::MakeSpan(recv_rows)));
  int64_t received = 0;
  for (int64_t r : recv_rows) received += r;
  const int64_t sent = static_cast<int64_t>(sent_tok.size());
  // sx / sids / swts: [sent, hidden | top_k] what goes out; rx / rids / rwts: what came in.
  ASSIGN_OR_RETURN(Tensor sx, ops.Scratch(sent, D, x.dtype));
  ASSIGN_OR_RETURN(Tensor sids, ops.Scratch(sent, K, ElemType::kI32));
  ASSIGN_OR_RETURN(Tensor swts, ops.Scratch(sent, K, ElemType::kF32));
  RETURN_IF_ERROR(ops.GatherRows(x, sent_tok, sx));
  RETURN_IF_ERROR(ops.CopyFromHost(send_ids.data(), sids));
  RETURN_IF_ERROR(ops.CopyFromHost(send_wts.data(), swts));
  ASSIGN_OR_RETURN(Tensor rx, ops.Scratch(received, D, x.dtype));
  ASSIGN_OR_RETURN(Tensor rids, ops.Scratch(received, K, ElemType::kI32));
  ASSIGN_OR_RETURN(Tensor rwts, ops.Scratch(received, K, ElemType::kF32));
  RETURN_IF_ERROR(ops.AllToAllRows(sx, send_rows, rx, recv_rows));
  RETURN_IF_ERROR(ops.AllToAllRows(sids, send_rows, rids, recv_rows));
  RETURN_IF_ERROR(ops.AllToAllRows(swts, send_rows, rwts, recv_rows));

  // 3. This rank's experts on the received rows.
  ASSIGN_OR_RETURN(Tensor partial, ops.Scratch(received, D, ElemType::kF32));
  RETURN_IF_ERROR(experts(rx, rids, rwts, partial));

  // 4. Combine back to the rows' ranks.
  ASSIGN_OR_RETURN(Tensor back, ops.Scratch(sent, D, ElemType::kF32));
  RETURN_IF_ERROR(ops.AllToAllRows(partial, recv_rows, back, send_rows));
  RETURN_IF_ERROR(ops.Zero(local));
  return ops.ScatterAddRows(back, sent_tok, local);
}

int64_t DispatchScratchBytes(int64_t n, int tp, int64_t D, int64_t K, ElemType g) {
  const ElemType f = ElemType::kF32, i32 = ElemType::kI32;
  const int64_t nl = (n + tp - 1) / tp, sent = tp * nl, recv = n;
  auto S = ScratchBytesOf;
  return S(sent, D, g) + S(sent, K, i32) + S(sent, K, f) + S(recv, D, g) + S(recv, K, i32) +
         S(recv, K, f) + S(recv, D, f) + S(sent, D, f);
}

}  // namespace dsinfer
