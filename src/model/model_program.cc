#include "src/model/model_program.h"

#include "absl/strings/str_cat.h"
#include "src/core/status_macros.h"
#include "src/model/deepseek_program.h"
#include "src/model/deepseek_weights.h"
#include "src/model/dense_program.h"
#include "src/model/dense_weights.h"
#include "src/model/v4_program.h"
#include "src/model/v4_weights.h"

namespace dsinfer {

KvCacheSpec ModelKvCacheSpec(const ModelConfig& c, KvDType dtype, const ShardLayout& layout) {
  // V4: f32 whatever the backend's KV dtype, and whole on every rank (replicated K=V head).
  if (c.IsV4()) return V4KvCacheSpec(c);
  return c.IsDense() ? GqaKvCacheSpec(c, layout, dtype) : MlaKvCacheSpec(c, dtype);
}

void ForEachModelWeight(const ModelConfig& c, const ShardLayout& layout, bool tied_lm_head,
                        const std::function<void(const WeightDesc&)>& f, bool mtp_head) {
  if (c.IsDense()) return ForEachDenseWeight(MakeDenseSchema(c, layout, tied_lm_head), f);
  if (c.IsV4()) return ForEachV4Weight(MakeV4Schema(c, layout), f);
  ForEachWeight(MakeDeepseekSchema(c, layout, tied_lm_head, mtp_head), f);
}

absl::StatusOr<int64_t> ModelStoredBytes(const ModelConfig& c, const ShardLayout& layout,
                                         const WeightStore* store, bool fp8_kept) {
  if (c.IsV4()) return V4StoredBytes(c, layout, store);
  if (!c.IsDense()) return DeepseekStoredBytes(c, layout, store, fp8_kept);
  RETURN_IF_ERROR(layout.Validate(c));
  const bool tied = c.tie_word_embeddings && (store == nullptr || !store->Has("lm_head.weight"));
  int64_t total = 0;
  absl::Status st;
  ForEachDenseWeight(MakeDenseSchema(c, layout, tied), [&](const WeightDesc& d) {
    for (const TensorPart& p : d.parts) {
      DType t = DType::kBF16;  // the distills' release format
      if (store != nullptr) {
        absl::StatusOr<DType> stored = store->StoredType(p.name);
        if (!stored.ok()) {
          if (st.ok()) st = stored.status();
          continue;
        }
        t = *stored;
      }
      total += p.rows() * p.cols() * DTypeSize(t);
    }
  });
  RETURN_IF_ERROR(st);
  return total;
}

absl::StatusOr<std::unique_ptr<ModelProgram>> LoadModelProgram(const ModelConfig& c,
                                                               const ShardLayout& layout,
                                                               const WeightStore& store,
                                                               BackendOps& ops) {
  if (c.IsV4()) {
    ASSIGN_OR_RETURN(auto p, V4Program::Load(c, layout, store, ops));
    return std::unique_ptr<ModelProgram>(std::move(p));
  }
  if (c.IsDense()) {
    ASSIGN_OR_RETURN(auto p, DenseProgram::Load(c, layout, store, ops));
    return std::unique_ptr<ModelProgram>(std::move(p));
  }
  ASSIGN_OR_RETURN(auto p, DeepseekProgram::Load(c, layout, store, ops));
  return std::unique_ptr<ModelProgram>(std::move(p));
}

absl::Status LoadDescribed(const WeightDesc& d, BackendOps& ops, WeightReader& reader,
                           std::unique_ptr<BackendWeight>* out, int64_t* bytes,
                           int64_t* fp8_bytes) {
  if (d.parts.empty()) return absl::OkStatus();
  auto loaded = ops.LoadWeight(d, reader);
  if (!loaded.ok()) {
    return absl::Status(loaded.status().code(),
                        absl::StrCat(d.key, ": ", loaded.status().message()));
  }
  *out = std::move(*loaded);
  *bytes += (*out)->bytes;
  *fp8_bytes += (*out)->fp8_bytes;
  return absl::OkStatus();
}

absl::StatusOr<Tensor> HeadLogits(BackendOps& ops, const ModelConfig& c,
                                  const ShardLayout& layout, const BackendWeight& final_norm,
                                  const BackendWeight& lm_head, float eps, Tensor x,
                                  int64_t first, int64_t R) {
  const int64_t D = c.hidden_size;
  ASSIGN_OR_RETURN(Tensor last, ops.Scratch(R, D, ElemType::kF32));
  RETURN_IF_ERROR(ops.SelectLogitRows(x, first, last));
  ASSIGN_OR_RETURN(Tensor normed, ops.Scratch(R, D, ops.gemm_dtype()));
  RETURN_IF_ERROR(ops.RmsNorm(last, final_norm, eps, normed));
  ASSIGN_OR_RETURN(Tensor local, ops.Scratch(R, lm_head.rows, ElemType::kF32));
  RETURN_IF_ERROR(ops.Linear(normed, lm_head, local, false));
  if (layout.single()) return local;
  std::vector<int64_t> cols(layout.tp);
  for (int r = 0; r < layout.tp; ++r)
    cols[r] = ShardLayout::PartBegin(c.vocab_size, layout.tp, r + 1) -
              ShardLayout::PartBegin(c.vocab_size, layout.tp, r);
  ASSIGN_OR_RETURN(Tensor logits, ops.Scratch(R, c.vocab_size, ElemType::kF32));
  RETURN_IF_ERROR(ops.AllGatherCols(local, cols, logits));
  return logits;
}

int64_t HeadScratchBytes(const ModelConfig& c, const ShardLayout& layout, ElemType gemm,
                         int64_t lm_head_rows, int64_t R) {
  const ElemType f = ElemType::kF32;
  const int64_t D = c.hidden_size, V = c.vocab_size;
  int64_t b = ScratchBytesOf(R, D, f) + ScratchBytesOf(R, D, gemm) +
              ScratchBytesOf(R, lm_head_rows, f);
  if (!layout.single()) b += ScratchBytesOf(R, V, f);
  return b + ScratchBytesOf(R, V, f);  // the runner's copy of sampled rows for logprobs
}

}  // namespace dsinfer
