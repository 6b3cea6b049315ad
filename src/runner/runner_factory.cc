#include "src/runner/runner_factory.h"

#include <algorithm>
#include <optional>
#include <thread>

#include "absl/strings/str_cat.h"
#include "src/backend_cpu/cpu_ops.h"
#include "src/comm/bootstrap.h"
#include "src/core/status_macros.h"
#include "src/distributed/launcher.h"
#include "src/distributed/sharded_runner.h"
#ifdef DSINFER_HAVE_CUDA
#include "src/backend_cuda/cuda_ops.h"
#endif

namespace dsinfer {
namespace {

ShardedOptions Timeouts(const ParallelOptions& p) {
  ShardedOptions o;
  o.step_timeout = std::chrono::milliseconds(static_cast<int64_t>(p.timeout_s * 1000));
  return o;
}

// The backend's ops for rank `rank` of `comm` (null: one process).
absl::StatusOr<std::unique_ptr<BackendOps>> MakeOps(const RunnerOptions& o, int rank,
                                                    Communicator* comm) {
  RETURN_IF_ERROR(CheckBackend(o.backend));
  if (o.backend == "cpu") {
    const int threads =
        o.threads > 0 ? o.threads : (o.parallel.tp > 1 ? o.parallel.DefaultThreads() : 0);
    return MakeCpuOps({.precision = o.precision, .keep_fp8 = o.keep_fp8,
                       .fp8_activations = o.fp8_activations, .threads = threads, .comm = comm});
  }
#ifdef DSINFER_HAVE_CUDA
  if (o.precision != Precision::kBF16)
    return absl::InvalidArgumentError("dtype: the cuda backend runs bf16 (set dtype bf16)");
  const CudaRunnerOptions& c = o.cuda;
  return MakeCudaOps({.device = c.device >= 0 ? c.device : rank,
                      .keep_fp8 = o.keep_fp8,
                      .kv_cache_fraction = c.kv_cache_fraction,
                      .max_batched_tokens = c.max_batched_tokens,
                      .max_seqs = c.max_seqs,
                      .max_logit_rows = c.max_logit_rows,
                      .chunk_tokens = c.chunk_tokens,
                      .tensor_core_attention = c.tensor_core_attention,
                      .attention_split_tokens = c.attention_split_tokens,
                      .cuda_graphs = c.cuda_graphs,
                      .comm = comm,
                      .ranks_on_node = o.parallel.local_ranks()});
#else
  return absl::UnimplementedError("unreachable");
#endif
}

absl::StatusOr<std::unique_ptr<ProgramRunner>> LoadShard(const RunnerOptions& o, int rank,
                                                         Communicator* comm, int32_t blocks) {
  ASSIGN_OR_RETURN(auto ops, MakeOps(o, rank, comm));
  ProgramRunnerOptions ro{.model_dir = o.model_dir,
                          .precision = o.precision,
                          .layout = {.rank = rank, .tp = o.parallel.tp, .ep = o.parallel.ep},
                          .num_kv_blocks = blocks,
                          .kv_sizer = o.kv_sizer,
                          .mtp = o.mtp,
                          .mtp_draft_tokens = o.mtp_draft_tokens,
                          .progress = o.progress};
  return ProgramRunner::Create(std::move(ops), ro);
}

absl::StatusOr<std::unique_ptr<ModelRunner>> StartShardedLeader(const RunnerOptions& o) {
  const ParallelOptions& p = o.parallel;
  if (p.tp % p.local_ranks() != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tp (", p.tp, ") is not a multiple of ranks_per_node (", p.local_ranks(), ")"));
  }
  // Check the layout against the model before starting anything.
  ASSIGN_OR_RETURN(ModelConfig config, LoadModelConfig(o.model_dir));
  RETURN_IF_ERROR((ShardLayout{.rank = 0, .tp = p.tp, .ep = p.ep}.Validate(config)));
  RETURN_IF_ERROR(CheckBackend(o.backend));

  auto dir = std::make_unique<std::optional<TempDir>>();
  std::string rendezvous = p.rendezvous;
  if (rendezvous.empty()) {
    ASSIGN_OR_RETURN(TempDir d, TempDir::Make("dsinfer-rendezvous-"));
    rendezvous = "file:" + d.path();
    dir->emplace(std::move(d));
  }
  auto ranks = std::make_unique<LocalRanks>();
  std::vector<std::string> worker_argv = WorkerArgv(o);
  worker_argv.push_back("--rendezvous");
  worker_argv.push_back(rendezvous);
  std::vector<int> local;
  for (int r = 1; r < p.local_ranks(); ++r) local.push_back(r);
  RETURN_IF_ERROR(ranks->Spawn(worker_argv, local));

  GlooOptions go{.rank = 0, .size = p.tp, .bind_address = p.bind_address,
                 .timeout = std::chrono::milliseconds(static_cast<int64_t>(p.timeout_s * 1000))};
  ASSIGN_OR_RETURN(std::unique_ptr<Communicator> comm, ConnectRanks(rendezvous, go));
  RunnerOptions leader = o;
  if (leader.num_kv_blocks <= 0 && leader.kv_sizer) {
    // Every rank of this node holds the whole latent cache: share the node's memory.
    const KvSizer sizer = o.kv_sizer;
    const int local_ranks = p.local_ranks();
    leader.kv_sizer = [sizer, local_ranks](const KvCacheSpec& spec, int64_t available) {
      return sizer(spec, available / local_ranks);
    };
  }
  ASSIGN_OR_RETURN(auto shard, LoadShard(leader, 0, comm.get(), leader.num_kv_blocks));
  ASSIGN_OR_RETURN(auto runner, ShardedRunner::Create(std::move(comm), std::move(shard), Timeouts(p)));
  runner->AdoptLocalRanks(std::move(ranks), std::move(dir));
  return std::unique_ptr<ModelRunner>(std::move(runner));
}

}  // namespace

int ParallelOptions::DefaultThreads() const {
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  return std::max(1, cores / std::max(1, local_ranks()));
}

absl::Status CheckBackend(const std::string& backend) {
  if (backend == "cpu") return absl::OkStatus();
  if (backend != "cuda")
    return absl::InvalidArgumentError(
        absl::StrCat("backend \"", backend, "\" is not one of cpu, cuda"));
#ifdef DSINFER_HAVE_CUDA
  return absl::OkStatus();
#else
  return absl::UnimplementedError("backend cuda: this dsinfer was built without CUDA");
#endif
}

absl::StatusOr<std::unique_ptr<ModelRunner>> MakeModelRunner(const RunnerOptions& o) {
  if (o.parallel.tp < 1 || o.parallel.ep < 1 || o.parallel.tp % o.parallel.ep != 0)
    return absl::InvalidArgumentError("tp must be >= 1 and ep must divide tp");
  if (o.parallel.tp > 1) return StartShardedLeader(o);
  ASSIGN_OR_RETURN(auto runner, LoadShard(o, 0, nullptr, o.num_kv_blocks));
  return std::unique_ptr<ModelRunner>(std::move(runner));
}

std::vector<std::string> WorkerArgv(const RunnerOptions& o) {
  const ParallelOptions& p = o.parallel;
  std::vector<std::string> argv = {p.worker_executable.empty() ? SelfExecutable()
                                                               : p.worker_executable,
                                   "worker",
                                   "--model", o.model_dir,
                                   "--device", o.backend,
                                   "--dtype", PrecisionName(o.precision),
                                   "--threads", std::to_string(o.threads),
                                   "--tp", std::to_string(p.tp),
                                   "--ep", std::to_string(p.ep),
                                   "--ranks-per-node", std::to_string(p.local_ranks()),
                                   "--timeout", absl::StrCat(p.timeout_s),
                                   "--bind", p.bind_address};
  if (!o.keep_fp8) argv.push_back("--dequantize-fp8");
  if (o.mtp) {
    // Every rank runs the MTP layer's collectives (and its chained drafts) with the leader.
    argv.insert(argv.end(), {"--mtp", "--mtp-draft-tokens", std::to_string(o.mtp_draft_tokens)});
  }
  return argv;
}

absl::Status RunWorkerRank(const RunnerOptions& o, int rank) {
  const ParallelOptions& p = o.parallel;
  if (rank < 1 || rank >= p.tp)
    return absl::InvalidArgumentError(absl::StrCat("--rank ", rank, " is not in [1, ", p.tp, ")"));
  if (p.rendezvous.empty()) return absl::InvalidArgumentError("a worker needs --rendezvous");
  GlooOptions go{.rank = rank, .size = p.tp, .bind_address = p.bind_address,
                 .timeout = std::chrono::milliseconds(static_cast<int64_t>(p.timeout_s * 1000))};
  ASSIGN_OR_RETURN(std::unique_ptr<Communicator> comm, ConnectRanks(p.rendezvous, go));
  ASSIGN_OR_RETURN(auto shard, LoadShard(o, rank, comm.get(), /*blocks=*/-1));
  return RunShardedWorker(*comm, *shard, Timeouts(p));
}

}  // namespace dsinfer
