// Start-up checks of a checkpoint (any family: the schema comes from model_program.h) before anything large is allocated: its tensor
// headers against the shapes config.json implies (nothing is read), then the bytes a backend
// will hold against the memory it has. A config.json whose sizes disagree with the checkpoint,
// or whose weights cannot fit, is refused at once naming the field, not with a std::bad_alloc
// abort or after a long allocation that then fails.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "src/config/model_config.h"
#include "src/model/precision.h"
#include "src/model/shard_layout.h"
#include "src/weights/weight_store.h"

namespace dsinfer {

// INVALID_ARGUMENT naming the config.json field (vocab_size, hidden_size) when the embedding
// disagrees, else the tensor and both shapes.
absl::Status CheckModelShapes(const ModelConfig& c, const ShardLayout& layout,
                              const WeightStore& store);

// What rank layout.rank holds, as the backends store weights: GEMM weights and the embedding
// in the run's precision (FP8 codes plus f32 block scales where kept), norms, router, bias and
// kv_b in f32. Grouped by the config.json fields that size them; doubles, as absurd configs
// overflow int64.
struct HeldWeightBytes {
  double total = 0;
  double largest = 0;         // the largest group
  std::string largest_what;   // "routed and shared experts"
  std::string largest_fields; // "num_hidden_layers (27) x n_routed_experts (64) x ..."
};
HeldWeightBytes ModelHeldBytes(const ModelConfig& c, const ShardLayout& layout,
                               const WeightStore& store, Precision precision, bool keep_fp8);

// RESOURCE_EXHAUSTED naming the fields of the largest group when `held` exceeds `available`.
absl::Status CheckWeightsFit(const HeldWeightBytes& held, Precision precision,
                             int64_t available_bytes);

}  // namespace dsinfer
