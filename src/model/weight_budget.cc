#include "src/model/weight_budget.h"

#include <array>
#include <cmath>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "src/core/memory_info.h"
#include "src/core/status_macros.h"
#include "src/model/deepseek_weights.h"
#include "src/model/model_program.h"

namespace dsinfer {
namespace {

enum Group { kEmbedding, kAttention, kExperts, kDenseMlp, kGroups };

Group GroupOf(const WeightDesc& d) {
  if (d.key == "embed" || d.key == "lm_head") return kEmbedding;
  if (absl::StrContains(d.key, ".mlp.")) return kDenseMlp;
  if (absl::StrContains(d.key, ".experts") || absl::StrContains(d.key, ".shared.") ||
      absl::StrContains(d.key, ".router"))
    return kExperts;
  return kAttention;  // attention and the layers' norms
}

std::array<std::pair<std::string, std::string>, kGroups> GroupNames(const ModelConfig& c) {
  return {{{"the embeddings and output head",
            absl::StrCat("vocab_size (", c.vocab_size, ") x hidden_size (", c.hidden_size, ")")},
           {"attention", absl::StrCat("num_hidden_layers (", c.num_hidden_layers,
                                      ") x num_attention_heads (", c.num_attention_heads,
                                      ") x hidden_size (", c.hidden_size, ")")},
           {"routed and shared experts",
            absl::StrCat("num_hidden_layers (", c.num_hidden_layers, ") x n_routed_experts (",
                         c.n_routed_experts, ") x moe_intermediate_size (",
                         c.moe_intermediate_size, ") x hidden_size (", c.hidden_size, ")")},
           {"dense MLPs", absl::StrCat("num_hidden_layers (", c.num_hidden_layers,
                                       ") x intermediate_size (", c.intermediate_size,
                                       ") x hidden_size (", c.hidden_size, ")")}}};
}

void ForEachWeightOf(const ModelConfig& c, const ShardLayout& layout, const WeightStore& store,
                     const std::function<void(const WeightDesc&)>& f) {
  ForEachModelWeight(c, layout, c.tie_word_embeddings && !store.Has("lm_head.weight"), f,
                     HasMtpHead(c, &store));
}

}  // namespace

absl::Status CheckModelShapes(const ModelConfig& c, const ShardLayout& layout,
                              const WeightStore& store) {
  RETURN_IF_ERROR(layout.Validate(c));
  // The embedding first: it names the two fields every other shape depends on.
  if (absl::StatusOr<const TensorInfo*> embed = store.Get("model.embed_tokens.weight");
      embed.ok() && (*embed)->shape.size() == 2) {
    const std::vector<int64_t>& shape = (*embed)->shape;
    if (shape[0] != c.vocab_size) {
      return absl::InvalidArgumentError(absl::StrCat(
          "vocab_size: config.json says ", c.vocab_size,
          " but the checkpoint's model.embed_tokens.weight has ", shape[0], " rows"));
    }
    if (shape[1] != c.hidden_size) {
      return absl::InvalidArgumentError(absl::StrCat(
          "hidden_size: config.json says ", c.hidden_size,
          " but the checkpoint's model.embed_tokens.weight has ", shape[1], " columns"));
    }
  }
  absl::Status st;
  ForEachWeightOf(c, layout, store, [&](const WeightDesc& d) {
    for (const TensorPart& p : d.parts) {
      if (!st.ok()) return;
      // Packed FP4 tensors are compared by their values' shape (twice the stored columns).
      absl::StatusOr<std::vector<int64_t>> t = store.LogicalShape(p.name);
      if (!t.ok()) {
        st = absl::Status(t.status().code(), absl::StrCat(d.key, ": ", t.status().message()));
      } else if (*t != p.shape) {
        st = absl::InvalidArgumentError(absl::StrCat(
            d.key, ": config.json implies ", p.name, " of shape [", absl::StrJoin(p.shape, ", "),
            "] but the checkpoint has [", absl::StrJoin(*t, ", "), "]"));
      } else if (d.role == WeightRole::kExperts && c.fp8.experts_fp4 && !store.IsFp4(p.name)) {
        st = absl::InvalidArgumentError(absl::StrCat(
            "expert_dtype: config.json says fp4 but the checkpoint's ", p.name, " is ",
            DTypeName(*store.StoredType(p.name)), ", not packed FP4 with E8M0 scales"));
      }
    }
  });
  return st;
}

HeldWeightBytes ModelHeldBytes(const ModelConfig& c, const ShardLayout& layout,
                               const WeightStore& store, Precision precision, bool keep_fp8) {
  std::array<double, kGroups> bytes{};
  const double bn = static_cast<double>(c.fp8.block_n), bk = static_cast<double>(c.fp8.block_k);
  ForEachWeightOf(c, layout, store, [&](const WeightDesc& d) {
    const bool f32_role = d.role == WeightRole::kLinearF32 || d.role == WeightRole::kVector ||
                          d.role == WeightRole::kMlaKvB;
    const bool may_fp8 = keep_fp8 && (d.role == WeightRole::kLinear || d.role == WeightRole::kExperts);
    for (const TensorPart& p : d.parts) {
      const double rows = static_cast<double>(p.rows()), cols = static_cast<double>(p.cols());
      absl::StatusOr<DType> t = store.StoredType(p.name);
      double b;
      if (may_fp8 && store.IsFp4(p.name)) {
        b = rows * cols / 2 + rows * std::ceil(cols / 32);
      } else if (may_fp8 && t.ok() && *t == DType::kF8E4M3) {
        b = rows * cols + std::ceil(rows / bn) * std::ceil(cols / bk) * 4;
      } else {
        b = rows * cols * (f32_role || precision == Precision::kF32 ? 4 : 2);
      }
      bytes[GroupOf(d)] += b;
    }
  });
  HeldWeightBytes out;
  const auto names = GroupNames(c);
  for (int g = 0; g < kGroups; ++g) {
    out.total += bytes[g];
    if (bytes[g] > out.largest) {
      out.largest = bytes[g];
      out.largest_what = names[g].first;
      out.largest_fields = names[g].second;
    }
  }
  return out;
}

absl::Status CheckWeightsFit(const HeldWeightBytes& held, Precision precision,
                             int64_t available_bytes) {
  if (held.total <= static_cast<double>(available_bytes)) return absl::OkStatus();
  return absl::ResourceExhaustedError(absl::StrCat(
      held.largest_fields, ": the weights need ", HumanBytes(held.total), " in ",
      PrecisionName(precision), " (", held.largest_what, " alone ", HumanBytes(held.largest),
      "); ", HumanBytes(static_cast<double>(available_bytes)), " of memory is available"));
}

}  // namespace dsinfer
