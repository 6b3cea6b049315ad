// What ProgramRunner needs of a model family's program (DeepseekProgram: MLA + MoE;
// DenseProgram: qwen2 / llama), the family dispatch (which program, which KV row, which
// weights), and the pieces every family shares (loading a described weight, the output head).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include "absl/status/statusor.h"
#include "src/config/model_config.h"
#include "src/kv_cache/kv_cache_spec.h"
#include "src/model/backend_ops.h"
#include "src/model/shard_layout.h"
#include "src/model/step_input.h"
#include "src/weights/weight_store.h"

namespace dsinfer {

class ModelProgram {
 public:
  virtual ~ModelProgram() = default;
  virtual const ModelConfig& config() const = 0;
  virtual const ShardLayout& layout() const = 0;
  virtual int64_t weight_bytes() const = 0;      // this rank's weight memory
  virtual int64_t fp8_weight_bytes() const = 0;  // of which FP8 codes and scales
  // Runs every layer over the step `ops` has begun; the final hidden states [N, hidden] (f32).
  virtual absl::StatusOr<Tensor> Layers(const StepInput& step) = 0;
  // Logits [rows, vocab] (f32) of the step's logit rows [first, first + rows).
  virtual absl::StatusOr<Tensor> Logits(const StepInput& step, Tensor x, int64_t first,
                                        int64_t rows) = 0;
  // Multi-token prediction (DeepSeek-V3's MTP module, config.mtp_layers = 1). MtpLogits runs
  // the MTP block over every row of the step `ops` has begun: row i pairs a hidden state
  // h [N, hidden] (f32) with next_tokens[i], the token after row i's, and writes the block's
  // own cache layer at the row's position. h is the main model's (Layers' result, kMainHidden)
  // or, for a chained draft step, the previous MTP step's hidden_out rows (kMtpHidden). Returns
  // the MTP logits [rows.size(), vocab] (f32) of the given rows, the model's guess at the token
  // after next_tokens[row]; hidden_out (when not null) gets those rows' MTP state
  // [rows.size(), hidden] (f32) for the next chained step. Both are scratch.
  enum class MtpInput { kMainHidden, kMtpHidden };
  virtual bool has_mtp() const { return false; }
  virtual absl::StatusOr<Tensor> MtpLogits(const StepInput& step, Tensor h, MtpInput input,
                                           absl::Span<const int32_t> next_tokens,
                                           absl::Span<const int32_t> rows, Tensor* hidden_out) {
    return absl::UnimplementedError("this model family has no MTP layer");
  }
  // The most scratch bytes a step of N tokens and R logit rows takes (mirrors the Scratch calls).
  virtual int64_t ScratchBytes(int64_t max_tokens, int64_t max_logit_rows) const = 0;
  // Everything a backend with fixed workspaces must reserve for such steps.
  virtual WorkspaceNeeds Needs(int64_t max_tokens, int64_t max_logit_rows,
                               int64_t max_seqs) const = 0;
};

// ---- family dispatch (config.IsDense(): qwen2 / llama, else DeepSeek) ----------------------
// The KV row of the family: MLA's latent row (whole on every rank) or GQA's [K | V] row (this
// rank's KV heads). Every sizing path uses it.
KvCacheSpec ModelKvCacheSpec(const ModelConfig& c, KvDType dtype,
                             const ShardLayout& layout = {});
// Every weight rank layout.rank loads, in load order (empty descriptions skipped).
// `mtp_head`: a loaded MTP module has its own shared_head.head (HasMtpHead).
void ForEachModelWeight(const ModelConfig& c, const ShardLayout& layout, bool tied_lm_head,
                        const std::function<void(const WeightDesc&)>& f, bool mtp_head = true);
// Bytes of rank layout.rank's weights as the checkpoint stores them (see DeepseekStoredBytes;
// dense families without a store: bf16).
absl::StatusOr<int64_t> ModelStoredBytes(const ModelConfig& c, const ShardLayout& layout,
                                         const WeightStore* store, bool fp8_kept = true);
absl::StatusOr<std::unique_ptr<ModelProgram>> LoadModelProgram(const ModelConfig& c,
                                                               const ShardLayout& layout,
                                                               const WeightStore& store,
                                                               BackendOps& ops);

// ---- shared pieces ---------------------------------------------------------------------------
// Loads `d` (nothing when it has no parts) into *out, adding its memory to the counters; errors
// name the weight's key.
absl::Status LoadDescribed(const WeightDesc& d, BackendOps& ops, WeightReader& reader,
                           std::unique_ptr<BackendWeight>* out, int64_t* bytes,
                           int64_t* fp8_bytes);

// Final norm and lm_head on the logit rows [first, first + R) of x; a vocabulary-parallel
// layout's logits are gathered over its ranks.
absl::StatusOr<Tensor> HeadLogits(BackendOps& ops, const ModelConfig& c,
                                  const ShardLayout& layout, const BackendWeight& final_norm,
                                  const BackendWeight& lm_head, float eps, Tensor x,
                                  int64_t first, int64_t R);
// Scratch bytes HeadLogits takes, plus the runner's copy of sampled rows for logprobs.
int64_t HeadScratchBytes(const ModelConfig& c, const ShardLayout& layout, ElemType gemm,
                         int64_t lm_head_rows, int64_t R);

}  // namespace dsinfer
