#include "src/distributed/sharded_run.h"

#include <algorithm>
#include <thread>

#include "absl/strings/str_cat.h"
#include "src/comm/bootstrap.h"
#include "src/core/status_macros.h"
#include "src/distributed/launcher.h"

namespace dsinfer {
namespace {

ShardedOptions Timeouts(const ParallelOptions& p) {
  ShardedOptions o;
  o.step_timeout = std::chrono::milliseconds(static_cast<int64_t>(p.timeout_s * 1000));
  return o;
}

absl::StatusOr<std::unique_ptr<DeepseekModel>> LoadShard(const ShardLoad& load,
                                                         const ParallelOptions& p, int rank,
                                                         Communicator* comm) {
  ModelOptions opts{.precision = load.precision,
                    .threads = load.threads > 0 ? load.threads : p.DefaultThreads(),
                    .progress = load.progress,
                    .layout = {.rank = rank, .tp = p.tp, .ep = p.ep},
                    .comm = comm};
  return DeepseekModel::Load(load.model_dir, opts);
}

}  // namespace

int ParallelOptions::DefaultThreads() const {
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  return std::max(1, cores / std::max(1, local_ranks()));
}

std::vector<std::string> WorkerArgv(const ShardLoad& load, const ParallelOptions& p) {
  return {SelfExecutable(), "worker",
          "--model", load.model_dir,
          "--dtype", load.precision == Precision::kBF16 ? "bf16" : "f32",
          "--threads", std::to_string(load.threads),
          "--tp", std::to_string(p.tp),
          "--ep", std::to_string(p.ep),
          "--timeout", absl::StrCat(p.timeout_s),
          "--bind", p.bind_address};
}

absl::StatusOr<std::unique_ptr<ShardedExecutor>> StartShardedLeader(
    const ShardLoad& load, const ParallelOptions& p, int32_t num_kv_blocks) {
  if (p.tp < 2) return absl::InvalidArgumentError("a sharded run needs tp >= 2");
  if (p.tp % p.local_ranks() != 0) {
    return absl::InvalidArgumentError(absl::StrCat("tp (", p.tp, ") is not a multiple of ranks_per_node (",
                                                   p.local_ranks(), ")"));
  }
  // Check the layout against the model before starting anything.
  ASSIGN_OR_RETURN(ModelConfig config, LoadModelConfig(load.model_dir));
  RETURN_IF_ERROR((ShardLayout{.rank = 0, .tp = p.tp, .ep = p.ep}.Validate(config)));

  auto dir = std::make_unique<std::optional<TempDir>>();
  std::string rendezvous = p.rendezvous;
  if (rendezvous.empty()) {
    ASSIGN_OR_RETURN(TempDir d, TempDir::Make("dsinfer-rendezvous-"));
    rendezvous = "file:" + d.path();
    dir->emplace(std::move(d));
  }
  auto ranks = std::make_unique<LocalRanks>();
  std::vector<std::string> worker_argv = WorkerArgv(load, p);
  worker_argv.push_back("--rendezvous");
  worker_argv.push_back(rendezvous);
  std::vector<int> local;
  for (int r = 1; r < p.local_ranks(); ++r) local.push_back(r);
  RETURN_IF_ERROR(ranks->Spawn(worker_argv, local));

  GlooOptions go{.rank = 0, .size = p.tp, .bind_address = p.bind_address,
                 .timeout = std::chrono::milliseconds(static_cast<int64_t>(p.timeout_s * 1000))};
  ASSIGN_OR_RETURN(std::unique_ptr<Communicator> comm, ConnectRanks(rendezvous, go));
  ASSIGN_OR_RETURN(auto model, LoadShard(load, p, 0, comm.get()));
  ASSIGN_OR_RETURN(auto ex, ShardedExecutor::Create(std::move(comm), std::move(model),
                                                    num_kv_blocks, Timeouts(p)));
  ex->AdoptLocalRanks(std::move(ranks), std::move(dir));
  return ex;
}

absl::Status RunWorkerRank(const ShardLoad& load, const ParallelOptions& p, int rank) {
  if (rank < 1 || rank >= p.tp)
    return absl::InvalidArgumentError(absl::StrCat("--rank ", rank, " is not in [1, ", p.tp, ")"));
  if (p.rendezvous.empty()) return absl::InvalidArgumentError("a worker needs --rendezvous");
  GlooOptions go{.rank = rank, .size = p.tp, .bind_address = p.bind_address,
                 .timeout = std::chrono::milliseconds(static_cast<int64_t>(p.timeout_s * 1000))};
  ASSIGN_OR_RETURN(std::unique_ptr<Communicator> comm, ConnectRanks(p.rendezvous, go));
  ASSIGN_OR_RETURN(auto model, LoadShard(load, p, rank, comm.get()));
  return RunShardedWorker(*comm, *model, Timeouts(p));
}

}  // namespace dsinfer
