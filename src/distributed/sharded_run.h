// Starting a sharded model: the leader (rank 0) spawns the ranks of its own node as local
// processes (`dsinfer worker ... --rank R`), meets every rank at the rendezvous, loads its shard
// and returns the ShardedExecutor the engine drives. Workers call RunWorkerRank.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "src/distributed/sharded_executor.h"
#include "src/model/deepseek_model.h"

namespace dsinfer {

struct ParallelOptions {
  int tp = 1;               // ranks in total
  int ep = 1;               // expert-parallel groups
  int ranks_per_node = 0;   // ranks the leader starts on its node (0: all tp)
  // "" : a private file: store for ranks on this node; else file:DIR or grpc:HOST:PORT.
  std::string rendezvous = "";
  std::string bind_address = "127.0.0.1";  // this node's address for the Gloo transport
  double timeout_s = 60;

  int local_ranks() const { return ranks_per_node > 0 ? ranks_per_node : tp; }
  // Threads per rank when none are set: the node's cores shared by its ranks.
  int DefaultThreads() const;
};

struct ShardLoad {
  std::string model_dir;
  Precision precision = Precision::kBF16;
  int threads = 0;
  ProgressFn progress = nullptr;
};

// `dsinfer worker` with the model, precision, threads, layout, timeout and bind address of a
// rank (SelfExecutable() runs it); the caller appends --rendezvous, the launcher --rank.
std::vector<std::string> WorkerArgv(const ShardLoad& load, const ParallelOptions& parallel);

// Starts ranks 1 .. local_ranks()-1 as `WorkerArgv` processes on this node.
absl::StatusOr<std::unique_ptr<ShardedExecutor>> StartShardedLeader(
    const ShardLoad& load, const ParallelOptions& parallel, int32_t num_kv_blocks);

// One worker rank: connect, load the shard, serve the leader's steps until it says shutdown.
absl::Status RunWorkerRank(const ShardLoad& load, const ParallelOptions& parallel, int rank);

}  // namespace dsinfer
