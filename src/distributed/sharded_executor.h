// Leader / worker control of a model sharded over ranks (tensor + expert parallelism). The
// leader (rank 0) owns the scheduler; its ShardedExecutor broadcasts every step's sequences to
// the workers, then all ranks run the same Forward in lockstep, their collectives inside it.
// A heartbeat (broadcast + barrier) runs while the leader is idle, so a rank that dies is noticed
// within ping_interval + step_timeout even without traffic: Health() turns UNAVAILABLE, Forward
// fails fast, and the server reports not-ready (invariants: README.md).
#pragma once

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "src/comm/communicator.h"
#include "src/distributed/launcher.h"
#include "src/engine/executor.h"
#include "src/model/deepseek_model.h"

namespace dsinfer {

struct ShardedOptions {
  std::chrono::milliseconds step_timeout{60000};   // a collective waiting longer fails
  std::chrono::milliseconds ping_interval{1000};   // leader heartbeat while idle
  std::chrono::milliseconds first_wait{3600000};   // workers: leader loading its own shard
};

// Identifies model, precision and layout; ranks refuse to run with a leader that differs.
std::string ShardFingerprint(const DeepseekModel& model);

class ShardedExecutor : public Executor {
 public:
  // Rank 0 of comm. Hands num_kv_blocks and the fingerprint to the workers and checks theirs.
  static absl::StatusOr<std::unique_ptr<ShardedExecutor>> Create(
      std::unique_ptr<Communicator> comm, std::unique_ptr<DeepseekModel> model,
      int32_t num_kv_blocks, const ShardedOptions& options = {});
  ~ShardedExecutor() override;

  const ModelConfig& config() const override { return model_->config(); }
  int32_t num_kv_blocks() const override { return cache_.num_blocks(); }
  const char* backend_name() const override { return "cpu"; }
  const char* dtype_name() const override {
    return model_->precision() == Precision::kBF16 ? "bf16" : "f32";
  }
  absl::Status Forward(absl::Span<const SequenceInput> seqs, std::vector<float>* logits) override;
  const ExpertLoad& expert_load() const override { return model_->expert_load(); }
  absl::Status Health() const override;
  int tensor_parallel_size() const override { return model_->layout().tp; }
  int expert_parallel_size() const override { return model_->layout().ep; }

  // Tells the workers to exit (they return OK) and stops the heartbeat. Idempotent.
  void Shutdown();
  CommStats comm_stats() const;
  void ResetCommStats();
  // Local rank processes (and their rendezvous directory) that Shutdown waits for.
  void AdoptLocalRanks(std::unique_ptr<LocalRanks> ranks,
                       std::unique_ptr<std::optional<TempDir>> dir) {
    local_ranks_ = std::move(ranks);
    rendezvous_dir_ = std::move(dir);
  }
  const ShardLayout& layout() const { return model_->layout(); }
  std::vector<pid_t> local_rank_pids() const {
    return local_ranks_ ? local_ranks_->pids() : std::vector<pid_t>();
  }

 private:
  ShardedExecutor(std::unique_ptr<Communicator> comm, std::unique_ptr<DeepseekModel> model,
                  int32_t num_kv_blocks, const ShardedOptions& options);
  absl::Status Send(uint32_t op, const std::vector<char>& payload);  // mu_ held
  void Heartbeat();
  absl::Status Fail(absl::Status st);  // remembers the first failure
  absl::Status failure() const;

  std::unique_ptr<Communicator> comm_;
  std::unique_ptr<DeepseekModel> model_;
  LatentCacheStorage cache_;
  ShardedOptions options_;
  mutable std::mutex mu_;  // one collective sequence at a time (steps, pings, shutdown)
  std::condition_variable cv_;
  mutable std::mutex fail_mu_;  // guards failure_ only (Health() never waits for a step)
  absl::Status failure_;
  bool stopped_ = false;
  std::chrono::steady_clock::time_point last_activity_;
  std::thread heartbeat_;
  std::unique_ptr<LocalRanks> local_ranks_;
  std::unique_ptr<std::optional<TempDir>> rendezvous_dir_;
};

// Worker ranks: the handshake, then every step the leader sends, until it says shutdown (OK) or
// is gone (UNAVAILABLE). The model must be this rank's shard on comm.
absl::Status RunShardedWorker(Communicator& comm, DeepseekModel& model,
                              const ShardedOptions& options = {});

}  // namespace dsinfer
