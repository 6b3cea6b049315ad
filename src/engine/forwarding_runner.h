// A runner that forwards every call to another, borrowed or owned. Wrappers derive from it and
// override only what they change (the offline generator's vocabulary limit, tests' gates).
#pragma once

#include <memory>

#include "src/engine/model_runner.h"

namespace dsinfer {

class ForwardingRunner : public ModelRunner {
 public:
  explicit ForwardingRunner(ModelRunner& inner) : inner_(inner) {}
  explicit ForwardingRunner(std::unique_ptr<ModelRunner> owned)
      : owned_(std::move(owned)), inner_(*owned_) {}

  const ModelConfig& config() const override { return inner_.config(); }
  const KvCacheSpec& kv_cache_spec() const override { return inner_.kv_cache_spec(); }
  int32_t num_kv_blocks() const override { return inner_.num_kv_blocks(); }
  const char* backend_name() const override { return inner_.backend_name(); }
  const char* dtype_name() const override { return inner_.dtype_name(); }
  absl::Status Step(absl::Span<const RunnerSequence> seqs, StepResult* result) override {
    return inner_.Step(seqs, result);
  }
  const ExpertLoad& expert_load() const override { return inner_.expert_load(); }
  absl::Status Health() const override { return inner_.Health(); }
  int tensor_parallel_size() const override { return inner_.tensor_parallel_size(); }
  int expert_parallel_size() const override { return inner_.expert_parallel_size(); }
  int64_t weight_bytes() const override { return inner_.weight_bytes(); }
  int64_t max_step_tokens() const override { return inner_.max_step_tokens(); }
  absl::Status WarmUp(int64_t max_batch) override { return inner_.WarmUp(max_batch); }
  void LimitSampledVocabulary(int64_t n) override { inner_.LimitSampledVocabulary(n); }
  bool has_mtp() const override { return inner_.has_mtp(); }
  int32_t mtp_draft_tokens() const override { return inner_.mtp_draft_tokens(); }

 protected:
  ModelRunner& inner() const { return inner_; }

 private:
  std::unique_ptr<ModelRunner> owned_;  // null when borrowed
  ModelRunner& inner_;
};

}  // namespace dsinfer
