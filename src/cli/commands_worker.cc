// dsinfer worker: ranks of a sharded model other than the leader.
//   --rank R ...           one rank (the leader starts its node's ranks like this)
//   --config FILE --node-rank N --leader HOST:PORT
//                          every rank of node N (ranks N·ranks_per_node ...), as processes;
//                          what a multi-node deployment (LeaderWorkerSet pod) runs
// A rank exits 0 when the leader shuts down and non-zero when the leader or another rank is
// gone; a node worker exits with its first failed rank.
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "src/cli/args.h"
#include "src/cli/commands.h"
#include "src/config/server_config.h"
#include "src/core/status_macros.h"
#include "src/distributed/launcher.h"
#include "src/runner/runner_factory.h"

namespace dsinfer::cli {
namespace {

absl::Status RunNode(const Args& args) {
  ASSIGN_OR_RETURN(std::string path, args.Required("config"));
  ASSIGN_OR_RETURN(ServerConfig cfg, LoadServerConfig(path));
  ASSIGN_OR_RETURN(int64_t node, args.Int("node-rank", -1));
  const ParallelConfig& q = cfg.parallel;
  const int per_node = q.ranks_per_node > 0 ? q.ranks_per_node : q.tp;
  const int nodes = q.tp / per_node;
  if (node < 1 || node >= nodes) {
    return absl::InvalidArgumentError(absl::StrCat("--node-rank ", node, " is not in [1, ", nodes,
                                                   ") (node 0 is the leader's `serve`)"));
  }
  std::string leader = args.Get("leader").value_or(q.leader_address);
  if (leader.empty()) {
    return absl::InvalidArgumentError("--leader HOST:PORT (or parallel.leader_address) is required");
  }
  std::string bind = args.Get("bind").value_or(q.bind_address);
  if (const char* env = std::getenv("DSINFER_BIND_ADDRESS"); env != nullptr && *env) bind = env;
  if (bind.empty()) {
    return absl::InvalidArgumentError(
        "a node worker needs its address for collectives: --bind, parallel.bind_address or "
        "DSINFER_BIND_ADDRESS");
  }
  RunnerOptions o{.model_dir = cfg.model_path, .backend = cfg.backend, .threads = cfg.threads};
  ASSIGN_OR_RETURN(o.precision, ParsePrecision(cfg.dtype));
  o.keep_fp8 = !cfg.dequantize_fp8;
  o.mtp = cfg.mtp;
  o.mtp_draft_tokens = cfg.mtp_draft_tokens;
  o.parallel = {.tp = q.tp, .ep = q.ep, .ranks_per_node = per_node, .bind_address = bind,
                .timeout_s = q.timeout_seconds};
  std::vector<std::string> argv = WorkerArgv(o);
  argv.push_back("--rendezvous");
  argv.push_back("grpc:" + leader);
  std::vector<int> ranks;
  for (int r = 0; r < per_node; ++r) ranks.push_back(static_cast<int>(node) * per_node + r);
  LocalRanks children;
  RETURN_IF_ERROR(children.Spawn(argv, ranks));
  int rank = 0;
  absl::Status st;
  while (children.WaitAny(&rank, &st)) {
    if (!st.ok()) return st;  // the others are killed with `children`
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status RunWorker(int argc, char** argv) {
  ASSIGN_OR_RETURN(Args args, Args::Parse(argc, argv, 2,
                                          {"model", "device", "dtype", "threads", "tp", "ep",
                                           "ranks-per-node", "rank", "rendezvous", "bind",
                                           "timeout", "config", "node-rank", "leader",
                                           "mtp-draft-tokens"},
                                          {"dequantize-fp8", "mtp"}));
  if (args.Has("config")) return RunNode(args);
  RunnerOptions o;
  ASSIGN_OR_RETURN(o.model_dir, args.Required("model"));
  o.backend = args.Get("device").value_or("cpu");
  ASSIGN_OR_RETURN(o.precision, ParsePrecision(args.Get("dtype").value_or("bf16")));
  ASSIGN_OR_RETURN(int64_t threads, args.Int("threads", 0));
  o.threads = static_cast<int>(threads);
  o.keep_fp8 = !args.Has("dequantize-fp8");
  o.mtp = args.Has("mtp");
  ASSIGN_OR_RETURN(int64_t drafts, args.Int("mtp-draft-tokens", 1));
  o.mtp_draft_tokens = static_cast<int32_t>(drafts);  // ProgramRunner::Create checks the range
  ParallelOptions& par = o.parallel;
  ASSIGN_OR_RETURN(int64_t tp, args.Int("tp", 1));
  ASSIGN_OR_RETURN(int64_t ep, args.Int("ep", 1));
  ASSIGN_OR_RETURN(int64_t per_node, args.Int("ranks-per-node", 0));
  ASSIGN_OR_RETURN(int64_t rank, args.Int("rank", -1));
  ASSIGN_OR_RETURN(par.rendezvous, args.Required("rendezvous"));
  ASSIGN_OR_RETURN(par.timeout_s, args.Float("timeout", 60));
  par.tp = static_cast<int>(tp);
  par.ep = static_cast<int>(ep);
  par.ranks_per_node = static_cast<int>(per_node);
  if (auto bind = args.Get("bind"); bind && !bind->empty()) par.bind_address = *bind;
  return RunWorkerRank(o, static_cast<int>(rank));
}

}  // namespace dsinfer::cli
