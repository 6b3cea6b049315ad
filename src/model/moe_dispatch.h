// The expert-parallel MoE exchange shared by the DeepSeek and V4 programs: dispatch / combine as
// DeepEP does it (DeepSeek-V3 report, section 3.4), written over the backend's collectives.
// The caller routes its own slice of the step's tokens (ShardLayout::PartBegin); the exchange
// sends each row once to every rank of each expert group that holds one of its experts, runs
// that rank's experts on what it received, and brings the partial outputs back.
#pragma once

#include <cstdint>
#include <functional>

#include "absl/status/status.h"
#include "src/config/model_config.h"
#include "src/model/backend_ops.h"
#include "src/model/shard_layout.h"

namespace dsinfer {

// A rank's experts on received rows: partial [rows, hidden] f32 = Σ_k wts[:, k] · expert(x) over
// the ids this rank holds (others are -1), summed in ascending expert id, no shared experts.
using RankExpertsFn =
    std::function<absl::Status(Tensor x, Tensor ids, Tensor wts, Tensor partial)>;

// x [n, hidden] (GEMM dtype): this rank's token slice; ids / wts [n, top_k]: its routing (global
// expert ids). local [n, hidden] f32 = the slice's routed-expert sum, added in rank order
// (= ascending expert groups). Scratch: DispatchScratchBytes.
absl::Status DispatchCombine(BackendOps& ops, const ModelConfig& c, const ShardLayout& layout,
                             Tensor x, Tensor ids, Tensor wts, const RankExpertsFn& experts,
                             Tensor local);

// The most scratch DispatchCombine takes in a step of n tokens (a slice is at most ceil(n / tp)
// rows; a rank sends each of them at most once per rank and receives at most n rows).
int64_t DispatchScratchBytes(int64_t n, int tp, int64_t hidden, int64_t top_k, ElemType gemm);

}  // namespace dsinfer
