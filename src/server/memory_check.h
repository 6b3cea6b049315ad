// Start-up size checks, before anything large is allocated: a config.json whose sizes disagree
// with the checkpoint, or whose weights cannot fit the memory there is, is refused at once with
// the field named, instead of a std::bad_alloc abort (or a 20 s allocation that then fails).
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "src/config/model_config.h"
#include "src/model/model_weights.h"

namespace dsinfer {

// Bytes the CPU loader allocates for the whole model's weights at `precision` (f32 for norms,
// the router and kv_b as it keeps them). A double: absurd configs overflow int64.
double ModelWeightBytes(const ModelConfig& model, Precision precision);

// "1.5 GiB", "16.0 PiB".
std::string HumanBytes(double bytes);

// The checkpoint's embedding table against config.json's vocab_size and hidden_size, then the
// weights (times `share`, the part this node holds) against `available_bytes`. INVALID_ARGUMENT
// naming the config.json field, or RESOURCE_EXHAUSTED naming the fields of the largest part.
absl::Status CheckModelFits(const ModelConfig& model, const std::string& model_dir,
                            Precision precision, double share, int64_t available_bytes);

}  // namespace dsinfer
