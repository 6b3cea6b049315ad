// A ModelRunner made of a family's program over one backend's ops: builds and validates the
// step input once, runs the program (or replays a captured step), and produces the outputs
// where the logits are (sampling, logprobs; full logits only when asked).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "absl/status/statusor.h"
#include "src/engine/model_runner.h"
#include "src/model/backend_ops.h"
#include "src/model/model_program.h"
#include "src/model/precision.h"
#include "src/model/shard_layout.h"
#include "src/weights/weight_store.h"

namespace dsinfer {

// Chooses the KV cache's block count from what one block needs and the memory the backend has
// left after the weights (num_kv_blocks > 0 in the options overrides it).
using KvSizer = std::function<absl::StatusOr<int32_t>(const KvCacheSpec& spec,
                                                      int64_t available_bytes)>;

struct ProgramRunnerOptions {
  std::string model_dir;
  Precision precision = Precision::kBF16;
  ShardLayout layout = {};
  int32_t num_kv_blocks = 0;  // > 0: exactly this many; < 0: none yet (AllocateKvCache later)
  KvSizer kv_sizer;           // 0: this decides (required then)
  // Load the checkpoint's MTP layer and draft with it (DeepSeek families, any backend and
  // layout), mtp_draft_tokens (1 .. kMaxMtpDraftTokens) per sequence and step: the layer chained.
  bool mtp = false;
  int32_t mtp_draft_tokens = 1;
  ProgressFn progress = nullptr;
};

class ProgramRunner : public ModelRunner {
 public:
  static absl::StatusOr<std::unique_ptr<ProgramRunner>> Create(std::unique_ptr<BackendOps> ops,
                                                               const ProgramRunnerOptions& opts);

  const ModelConfig& config() const override { return program_->config(); }
  const KvCacheSpec& kv_cache_spec() const override { return spec_; }
  int32_t num_kv_blocks() const override { return ops_->num_kv_blocks(); }
  const char* backend_name() const override { return ops_->name(); }
  const char* dtype_name() const override { return PrecisionName(precision_); }
  // The KV cache of a runner created without one (a sharded layout's worker ranks).
  absl::Status AllocateKvCache(int32_t num_blocks);
  // result may be null (ranks other than the leader of a sharded layout: no outputs).
  absl::Status Step(absl::Span<const RunnerSequence> seqs, StepResult* result) override;
  const ExpertLoad& expert_load() const override { return ops_->expert_load(); }
  int tensor_parallel_size() const override { return program_->layout().tp; }
  int expert_parallel_size() const override { return program_->layout().ep; }
  int64_t weight_bytes() const override { return program_->weight_bytes(); }
  int64_t max_step_tokens() const override { return ops_->max_step_tokens(); }
  absl::Status WarmUp(int64_t max_batch) override;
  void LimitSampledVocabulary(int64_t n) override { sample_vocab_ = n; }
  bool has_mtp() const override { return program_->has_mtp(); }
  int32_t mtp_draft_tokens() const override { return has_mtp() ? mtp_draft_tokens_ : 0; }
  int64_t scratch_peak() const { return ops_->scratch_peak(); }
  int64_t ScratchBound(int64_t tokens, int64_t logit_rows) const {
    return program_->ScratchBytes(tokens, logit_rows);
  }
  int64_t fp8_weight_bytes() const { return program_->fp8_weight_bytes(); }
  const ShardLayout& layout() const { return program_->layout(); }

 private:
  ProgramRunner(std::unique_ptr<BackendOps> ops, Precision precision)
      : ops_(std::move(ops)), precision_(precision) {}
  // A decode step that replays (or is captured as) one step of layers and logits.
  absl::StatusOr<Tensor> RunReplayable(const StepInput& step, int64_t key);
  // Full logits, sampling and logprobs of logit rows [first, first + logits.rows).
  absl::Status Outputs(absl::Span<const RunnerSequence> seqs, const StepInput& step,
                       Tensor logits, int64_t first, StepResult* result);
  // MTP: runs the MTP layer over the step (x: the final hidden states) and puts each sampled
  // sequence's greedy drafts in result.
  absl::Status Draft(absl::Span<const RunnerSequence> seqs, const StepInput& step, Tensor x,
                     StepResult* result);
  // Argmax over the sampled vocabulary of each row of logits.
  absl::Status GreedyDrafts(Tensor logits, int32_t* drafts);
  // Drafts 2 .. k: the MTP layer again per draft, over the sequences `which` (their last token
  // produced `newest` at position `pos`; `state` their MTP states [which.size(), hidden]).
  absl::Status ChainDrafts(absl::Span<const RunnerSequence> seqs, std::vector<size_t> which,
                           std::vector<int32_t> newest, std::vector<int64_t> pos,
                           std::vector<float> state, StepResult* result);

  std::unique_ptr<BackendOps> ops_;
  Precision precision_;
  std::unique_ptr<ModelProgram> program_;  // the config's family
  KvCacheSpec spec_;
  StepLimits limits_;
  std::set<int64_t> seen_keys_;               // steps run once (eagerly) before capture
  std::map<int64_t, Tensor> replay_logits_;   // captured steps: where their logits land
  bool replay_failed_ = false;
  int64_t sample_vocab_ = 0;  // ids sampled from [0, sample_vocab_) (0: all)
  int32_t mtp_draft_tokens_ = 1;
  StepInput chain_step_;  // a chained draft round's step (the backend keeps a pointer to it)
};

}  // namespace dsinfer
