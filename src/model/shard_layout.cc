#include "src/model/shard_layout.h"

#include "absl/strings/str_cat.h"

namespace dsinfer {
namespace {

absl::Status Divides(int64_t parts, int64_t n, const char* what, const char* flag) {
  if (n % parts == 0) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(what, " (", n, ") is not divisible by ", flag, " (", parts, ")"));
}

}  // namespace

absl::Status ShardLayout::Validate(const ModelConfig& c) const {
  if (tp < 1 || ep < 1) return absl::InvalidArgumentError("tp and ep must be at least 1");
  if (tp % ep != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("ep (", ep, ") must divide tp (", tp, "): ep groups split the tp ranks"));
  }
  if (rank < 0 || rank >= tp) {
    return absl::InvalidArgumentError(absl::StrCat("rank ", rank, " is not in [0, ", tp, ")"));
  }
  if (tp == 1) return absl::OkStatus();
  if (absl::Status s = Divides(tp, c.num_attention_heads, "num_attention_heads", "tp"); !s.ok())
    return s;
  if (c.IsDense()) {
    if (ep != 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          "ep (", ep, "): model_type ", c.model_type, " has no routed experts; use ep 1"));
    }
    const int64_t kv = c.num_key_value_heads;
    if (kv % tp != 0 && tp % kv != 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "num_key_value_heads (", kv, ") and tp (", tp, "): one must divide the other"));
    }
  }
  if (c.IsV4()) {
    // The grouped output projection splits by whole groups; the shared expert by its
    // intermediate dim over every rank (not only within an expert group).
    if (absl::Status s = Divides(tp, c.v4.o_groups, "o_groups", "tp"); !s.ok()) return s;
    if (c.moe_intermediate_size % tp != 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "moe_intermediate_size (", c.moe_intermediate_size, ") is not divisible by tp (", tp,
          "): model_type ", c.model_type, " splits its shared expert over every rank"));
    }
  }
  bool any_dense = false;
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) any_dense |= !c.IsMoeLayer(l);
  if (any_dense) {
    if (absl::Status s = Divides(tp, c.intermediate_size, "intermediate_size", "tp"); !s.ok())
      return s;
  }
  if (c.n_routed_experts > 0) {
    if (absl::Status s = Divides(ep, c.n_routed_experts, "n_routed_experts", "ep"); !s.ok())
      return s;
    if (absl::Status s =
            Divides(moe_tp(), c.moe_intermediate_size, "moe_intermediate_size", "tp / ep");
        !s.ok())
      return s;
  }
  if (c.vocab_size < tp) {
    return absl::InvalidArgumentError(
        absl::StrCat("vocab_size (", c.vocab_size, ") is smaller than tp (", tp, ")"));
  }
  return absl::OkStatus();
}

}  // namespace dsinfer
