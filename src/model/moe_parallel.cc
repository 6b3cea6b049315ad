// The expert-parallel MoE layer, dispatch / combine as DeepEP does it (DeepSeek-V3 report,
// section 3.4), over the Communicator's all-to-all-v:
//   1. every rank routes its own slice of the step's tokens (ShardLayout::PartBegin);
//   2. dispatch: each token goes once to every rank of each expert group that holds one of its
//      experts, as a record [hidden (D f32) | top_k expert ids (-1 = not this group) | weights];
//   3. each rank runs its experts (its slice of their intermediate dim) on what it received,
//      summing a record's experts weighted, in ascending expert order;
//   4. combine: the partial outputs go back to the token's rank, which adds them in rank order
//      (= ascending expert groups) and its replicated shared experts;
//   5. all-gather of the token slices gives every rank the whole [n, D] output.
#include <cstring>

#include "src/core/status_macros.h"
#include "src/model/deepseek_model.h"

namespace dsinfer {

absl::Status DeepseekModel::MoeParallel(int64_t layer, const float* xn, int64_t n, float* out) {
  const ModelConfig& c = config_;
  const ShardLayout& lay = weights_->layout;
  const MoeWeights& m = weights_->layers[layer].moe;
  const int64_t D = c.hidden_size, E = c.n_routed_experts, K = c.num_experts_per_tok;
  const int W = lay.tp;
  const int64_t t0 = ShardLayout::PartBegin(n, W, lay.rank);
  const int64_t nl = ShardLayout::PartBegin(n, W, lay.rank + 1) - t0;
  const int64_t rec = D + 2 * K;  // floats per dispatch record

  std::vector<int32_t> ids;
  std::vector<float> wts;
  Route(layer, xn + t0 * D, nl, &ids, &wts);
  for (int32_t id : ids) pending_load_[layer * E + id] += 1.f;

  // 2. Dispatch records, destinations in rank order; sent_tok remembers the order.
  std::vector<float> send;
  std::vector<int32_t> sent_tok;
  std::vector<int64_t> send_count(W, 0), recv_count(W, 0);
  for (int d = 0; d < W; ++d) {
    const int group = d / lay.moe_tp();
    for (int64_t t = 0; t < nl; ++t) {
      bool any = false;
      for (int64_t k = 0; k < K; ++k) any |= lay.ExpertGroup(c, ids[t * K + k]) == group;
      if (!any) continue;
      const size_t at = send.size();
      send.resize(at + rec);
      float* r = send.data() + at;
      std::memcpy(r, xn + (t0 + t) * D, D * sizeof(float));
      for (int64_t k = 0; k < K; ++k) {
        const int32_t id = ids[t * K + k];
        const int32_t mine = lay.ExpertGroup(c, id) == group ? id : -1;
        std::memcpy(r + D + k, &mine, sizeof(int32_t));
        r[D + K + k] = wts[t * K + k];
      }
      sent_tok.push_back(static_cast<int32_t>(t));
      ++send_count[d];
    }
  }
  RETURN_IF_ERROR(comm_->AllToAll(send_count.data(), recv_count.data(), sizeof(int64_t)));
  int64_t received = 0;
  std::vector<int64_t> send_bytes(W), recv_bytes(W), back_send(W), back_recv(W);
  for (int d = 0; d < W; ++d) {
    received += recv_count[d];
    send_bytes[d] = send_count[d] * rec * static_cast<int64_t>(sizeof(float));
    recv_bytes[d] = recv_count[d] * rec * static_cast<int64_t>(sizeof(float));
    back_send[d] = recv_count[d] * D * static_cast<int64_t>(sizeof(float));
    back_recv[d] = send_count[d] * D * static_cast<int64_t>(sizeof(float));
  }
  std::vector<float> recv(received * rec);
  RETURN_IF_ERROR(comm_->AllToAllV(send.data(), send_bytes, recv.data(), recv_bytes));

  // 3. This rank's experts on the received records.
  ExpertAssignment assigned(E);
  for (int64_t i = 0; i < received; ++i) {
    const float* r = recv.data() + i * rec;
    for (int64_t k = 0; k < K; ++k) {
      int32_t id;
      std::memcpy(&id, r + D + k, sizeof(int32_t));
      if (id < 0) continue;
      if (id >= E || m.experts[id].inter == 0) {
        return absl::InternalError("moe dispatch: record for an expert this rank does not hold");
      }
      assigned[id].push_back({static_cast<int32_t>(i), r[D + K + k]});
    }
  }
  std::vector<float> partial(received * D, 0.f);
  RunExperts(m, assigned, recv.data(), rec, partial.data());

  // 4. Combine back to the tokens' ranks.
  std::vector<float> back(sent_tok.size() * D);
  RETURN_IF_ERROR(comm_->AllToAllV(partial.data(), back_send, back.data(), back_recv));
  std::vector<float> local(nl * D, 0.f);
  for (size_t i = 0; i < sent_tok.size(); ++i) {
    float* dst = local.data() + sent_tok[i] * D;
    const float* src = back.data() + i * D;
    for (int64_t j = 0; j < D; ++j) dst[j] += src[j];
  }
  if (c.n_shared_experts > 0 && nl > 0)
    Mlp(m.shared, xn + t0 * D, nl, local.data(), /*accumulate=*/true);

  // 5. Every rank gets every token's output.
  std::vector<int64_t> slice_bytes(W);
  for (int r = 0; r < W; ++r)
    slice_bytes[r] = (ShardLayout::PartBegin(n, W, r + 1) - ShardLayout::PartBegin(n, W, r)) * D *
                     static_cast<int64_t>(sizeof(float));
  return comm_->AllGatherV(local.data(), out, slice_bytes);
}

}  // namespace dsinfer
