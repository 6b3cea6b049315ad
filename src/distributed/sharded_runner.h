// Leader / worker control of a model sharded over ranks (tensor + expert parallelism). The
// leader (rank 0) owns the scheduler; its ShardedRunner broadcasts every step's sequences to
// the workers, then all ranks run the same program step in lockstep, their collectives inside it
// (the leader alone produces outputs).
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
#include "src/engine/model_runner.h"
#include "src/model/program_runner.h"

namespace dsinfer {

struct ShardedOptions {
  std::chrono::milliseconds step_timeout{60000};   // a collective waiting longer fails
  std::chrono::milliseconds ping_interval{1000};   // leader heartbeat while idle
  std::chrono::milliseconds first_wait{3600000};   // workers: leader loading its own shard
};

// Identifies model, precision and layout; ranks refuse to run with a leader that differs.
std::string ShardFingerprint(const ProgramRunner& runner);

class ShardedRunner : public ModelRunner {
 public:
  // Rank 0 of comm, with its own shard already holding its KV cache. Hands the block count and
  // the fingerprint to the workers and checks theirs.
  static absl::StatusOr<std::unique_ptr<ShardedRunner>> Create(
      std::unique_ptr<Communicator> comm, std::unique_ptr<ProgramRunner> local,
      const ShardedOptions& options = {});
  ~ShardedRunner() override;

  const ModelConfig& config() const override { return local_->config(); }
  const KvCacheSpec& kv_cache_spec() const override { return local_->kv_cache_spec(); }
  int32_t num_kv_blocks() const override { return local_->num_kv_blocks(); }
  const char* backend_name() const override { return local_->backend_name(); }
  const char* dtype_name() const override { return local_->dtype_name(); }
  absl::Status Step(absl::Span<const RunnerSequence> seqs, StepResult* result) override;
  const ExpertLoad& expert_load() const override { return local_->expert_load(); }
  absl::Status Health() const override;
  int tensor_parallel_size() const override { return local_->layout().tp; }
  int expert_parallel_size() const override { return local_->layout().ep; }
  int64_t weight_bytes() const override { return local_->weight_bytes(); }
  int64_t max_step_tokens() const override { return local_->max_step_tokens(); }
  void LimitSampledVocabulary(int64_t n) override {
    sample_vocab_ = n;  // sent with every step
    local_->LimitSampledVocabulary(n);
  }
  bool has_mtp() const override { return local_->has_mtp(); }
  int32_t mtp_draft_tokens() const override { return local_->mtp_draft_tokens(); }

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
  const ShardLayout& layout() const { return local_->layout(); }
  std::vector<pid_t> local_rank_pids() const {
    return local_ranks_ ? local_ranks_->pids() : std::vector<pid_t>();
  }

 private:
  ShardedRunner(std::unique_ptr<Communicator> comm, std::unique_ptr<ProgramRunner> local,
                const ShardedOptions& options);
  absl::Status Send(uint32_t op, const std::vector<char>& payload);  // mu_ held
  void Heartbeat();
  absl::Status Fail(absl::Status st);  // remembers the first failure
  absl::Status failure() const;

  std::unique_ptr<Communicator> comm_;
  std::unique_ptr<ProgramRunner> local_;
  int64_t sample_vocab_ = 0;  // LimitSampledVocabulary's n, for the workers
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

// Worker ranks: the handshake (allocates the KV cache the leader sized), then every step the
// leader sends, until it says shutdown (OK) or is gone (UNAVAILABLE). The runner must be this
// rank's shard on comm, without a KV cache yet.
absl::Status RunShardedWorker(Communicator& comm, ProgramRunner& runner,
                              const ShardedOptions& options = {});

}  // namespace dsinfer
