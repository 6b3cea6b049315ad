// The engine's view of a backend: runs one planned step over the paged latent KV cache it owns.
// The CPU executor wraps DeepseekModel; the CUDA executor implements the same interface.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "src/config/model_config.h"
#include "src/model/deepseek_model.h"
#include "src/model/step.h"

namespace dsinfer {

class Executor {
 public:
  virtual ~Executor() = default;
  virtual const ModelConfig& config() const = 0;
  virtual int32_t num_kv_blocks() const = 0;
  virtual const char* backend_name() const = 0;
  virtual const char* dtype_name() const = 0;
  // One row of logits [vocab] per sequence (its last new token), as DeepseekModel::Forward.
  virtual absl::Status Forward(absl::Span<const SequenceInput> seqs,
                               std::vector<float>* logits) = 0;
  // Tokens routed per expert so far ([layer][expert]; empty rows for dense layers).
  virtual const ExpertLoad& expert_load() const = 0;
  // UNAVAILABLE once the backend cannot run steps any more (a rank of a sharded model is gone).
  virtual absl::Status Health() const { return absl::OkStatus(); }
  virtual int tensor_parallel_size() const { return 1; }
  virtual int expert_parallel_size() const { return 1; }
};

// The CPU backend: the model plus a latent cache of num_kv_blocks blocks.
class CpuExecutor : public Executor {
 public:
  CpuExecutor(std::unique_ptr<DeepseekModel> model, int32_t num_kv_blocks)
      : model_(std::move(model)), cache_(model_->MakeCache(num_kv_blocks)) {}

  const ModelConfig& config() const override { return model_->config(); }
  int32_t num_kv_blocks() const override { return cache_.num_blocks(); }
  const char* backend_name() const override { return "cpu"; }
  const char* dtype_name() const override {
    return model_->precision() == Precision::kBF16 ? "bf16" : "f32";
  }
  absl::Status Forward(absl::Span<const SequenceInput> seqs, std::vector<float>* logits) override {
    return model_->Forward(seqs, cache_, logits);
  }
  const ExpertLoad& expert_load() const override { return model_->expert_load(); }
  DeepseekModel& model() { return *model_; }

 private:
  std::unique_ptr<DeepseekModel> model_;
  LatentCacheStorage cache_;
};

}  // namespace dsinfer
