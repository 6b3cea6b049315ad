#include "src/server/memory_check.h"

#include <array>
#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "src/core/status_macros.h"
#include "src/weights/weight_store.h"

namespace dsinfer {
namespace {

struct Part {
  const char* what;
  std::string fields;  // the config.json fields that size it
  double bytes = 0;
};

// The loader's allocations (src/model/model_weights.cc), grouped by what sizes them.
std::array<Part, 4> Parts(const ModelConfig& c, Precision precision) {
  const double e = precision == Precision::kBF16 ? 2 : 4;
  const double D = static_cast<double>(c.hidden_size), V = static_cast<double>(c.vocab_size);
  const double L = static_cast<double>(c.num_hidden_layers);
  const double H = static_cast<double>(c.num_attention_heads);
  const double qk = static_cast<double>(c.qk_nope_head_dim + c.qk_rope_head_dim);
  std::array<Part, 4> parts = {
      Part{"the embeddings and output head",
           absl::StrCat("vocab_size (", c.vocab_size, ") x hidden_size (", c.hidden_size, ")")},
      Part{"attention",
           absl::StrCat("num_hidden_layers (", c.num_hidden_layers, ") x num_attention_heads (",
                        c.num_attention_heads, ") x hidden_size (", c.hidden_size, ")")},
      Part{"routed and shared experts",
           absl::StrCat("num_hidden_layers (", c.num_hidden_layers, ") x n_routed_experts (",
                        c.n_routed_experts, ") x moe_intermediate_size (", c.moe_intermediate_size,
                        ") x hidden_size (", c.hidden_size, ")")},
      Part{"dense MLPs",
           absl::StrCat("num_hidden_layers (", c.num_hidden_layers, ") x intermediate_size (",
                        c.intermediate_size, ") x hidden_size (", c.hidden_size, ")")}};
  parts[0].bytes = (c.tie_word_embeddings ? 1 : 2) * V * D * e;
  const double qa = c.q_lora_rank > 0 ? static_cast<double>(c.q_lora_rank) : H * qk;
  const double kv_a = static_cast<double>(c.kv_lora_rank + c.qk_rope_head_dim);
  const double per_layer_attn =
      (qa + kv_a) * D * e + (c.q_lora_rank > 0 ? H * qk * c.q_lora_rank * e : 0) +
      H * static_cast<double>(c.qk_nope_head_dim + c.v_head_dim) * c.kv_lora_rank * 4 +
      D * H * c.v_head_dim * e + 2 * D * 4;
  parts[1].bytes = L * per_layer_attn;
  double moe_layers = 0;
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) moe_layers += c.IsMoeLayer(l) ? 1 : 0;
  const double I = static_cast<double>(c.moe_intermediate_size);
  const double E = static_cast<double>(c.n_routed_experts);
  parts[2].bytes =
      moe_layers * (E * D * 4 + E * 3 * I * D * e + c.n_shared_experts * 3 * I * D * e);
  parts[3].bytes = (L - moe_layers) * 3 * static_cast<double>(c.intermediate_size) * D * e;
  return parts;
}

}  // namespace

double ModelWeightBytes(const ModelConfig& model, Precision precision) {
  double total = 0;
  for (const Part& p : Parts(model, precision)) total += p.bytes;
  return total;
}

std::string HumanBytes(double bytes) {
  static const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  int u = 0;
  while (bytes >= 1024 && u < 6) {
    bytes /= 1024;
    ++u;
  }
  return absl::StrFormat(u == 0 ? "%.0f %s" : "%.1f %s", bytes, kUnits[u]);
}

absl::Status CheckModelFits(const ModelConfig& model, const std::string& model_dir,
                            Precision precision, double share, int64_t available_bytes) {
  // Shapes first: the cheapest and most precise answer (headers only, nothing is read).
  ASSIGN_OR_RETURN(std::unique_ptr<WeightStore> store, WeightStore::Open(model_dir));
  if (absl::StatusOr<const TensorInfo*> embed = store->Get("model.embed_tokens.weight");
      embed.ok() && (*embed)->shape.size() == 2) {
    const std::vector<int64_t>& shape = (*embed)->shape;
    if (shape[0] != model.vocab_size) {
      return absl::InvalidArgumentError(absl::StrCat("vocab_size: config.json says ",
                                                     model.vocab_size,
                                                     " but the checkpoint's "
                                                     "model.embed_tokens.weight has ",
                                                     shape[0], " rows"));
    }
    if (shape[1] != model.hidden_size) {
      return absl::InvalidArgumentError(absl::StrCat("hidden_size: config.json says ",
                                                     model.hidden_size,
                                                     " but the checkpoint's "
                                                     "model.embed_tokens.weight has ",
                                                     shape[1], " columns"));
    }
  }
  const std::array<Part, 4> parts = Parts(model, precision);
  double total = 0;
  const Part* largest = &parts[0];
  for (const Part& p : parts) {
    total += p.bytes;
    if (p.bytes > largest->bytes) largest = &p;
  }
  total *= share;
  if (total > static_cast<double>(available_bytes)) {
    return absl::ResourceExhaustedError(
        absl::StrCat(largest->fields, ": the weights need ", HumanBytes(total), " in ",
                     precision == Precision::kBF16 ? "bf16" : "f32", " (", largest->what, " alone ",
                     HumanBytes(largest->bytes * share), "); ",
                     HumanBytes(static_cast<double>(available_bytes)), " of memory is available"));
  }
  return absl::OkStatus();
}

}  // namespace dsinfer
