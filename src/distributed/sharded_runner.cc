#include "src/distributed/sharded_runner.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "src/core/status_macros.h"
#include "src/distributed/step_message.h"

namespace dsinfer {
namespace {

constexpr int kLeader = 0;

// Receives the next header (and payload) from the leader.
absl::Status ReceiveHeader(Communicator& comm, RankHeader* h, std::vector<char>* payload) {
  RETURN_IF_ERROR(comm.Broadcast(h, sizeof(*h), kLeader));
  if (h->payload_bytes < 0 || h->payload_bytes > (int64_t{1} << 32)) {
    return absl::InternalError(absl::StrCat("leader sent a bad payload size ", h->payload_bytes));
  }
  payload->resize(static_cast<size_t>(h->payload_bytes));
  return comm.Broadcast(payload->data(), h->payload_bytes, kLeader);
}

// Every rank reports whether it accepts the leader's init; returns the ranks that refused.
absl::StatusOr<std::vector<int>> GatherRefusals(Communicator& comm, bool ok) {
  const char mine = ok ? 1 : 0;
  std::vector<char> all(comm.size());
  std::vector<int64_t> sizes(comm.size(), 1);
  RETURN_IF_ERROR(comm.AllGatherV(&mine, all.data(), sizes));
  std::vector<int> refused;
  for (int r = 0; r < comm.size(); ++r)
    if (!all[r]) refused.push_back(r);
  return refused;
}

}  // namespace

std::string ShardFingerprint(const ProgramRunner& r) {
  const ModelConfig& c = r.config();
  const ShardLayout& l = r.layout();
  return absl::StrCat(c.model_type, " layers=", c.num_hidden_layers, " hidden=", c.hidden_size,
                      " heads=", c.num_attention_heads, " experts=", c.n_routed_experts,
                      " vocab=", c.vocab_size, " backend=", r.backend_name(),
                      " dtype=", r.dtype_name(), " tp=", l.tp, " ep=", l.ep,
                      " mtp=", r.mtp_draft_tokens());
}

ShardedRunner::ShardedRunner(std::unique_ptr<Communicator> comm,
                             std::unique_ptr<ProgramRunner> local, const ShardedOptions& options)
    : comm_(std::move(comm)),
      local_(std::move(local)),
      options_(options),
      last_activity_(std::chrono::steady_clock::now()) {}

absl::StatusOr<std::unique_ptr<ShardedRunner>> ShardedRunner::Create(
    std::unique_ptr<Communicator> comm, std::unique_ptr<ProgramRunner> local,
    const ShardedOptions& options) {
  if (comm->rank() != kLeader) return absl::InvalidArgumentError("the leader must be rank 0");
  if (local->layout().rank != kLeader || local->layout().tp != comm->size())
    return absl::InvalidArgumentError("the leader's shard must be rank 0 of the communicator");
  std::unique_ptr<ShardedRunner> ex(new ShardedRunner(std::move(comm), std::move(local), options));
  ex->comm_->set_timeout(options.step_timeout);
  std::vector<char> init(sizeof(int64_t));
  const int64_t blocks = ex->local_->num_kv_blocks();
  std::memcpy(init.data(), &blocks, sizeof(blocks));
  const std::string fp = ShardFingerprint(*ex->local_);
  init.insert(init.end(), fp.begin(), fp.end());
  {
    std::lock_guard<std::mutex> lock(ex->mu_);
    RETURN_IF_ERROR(ex->Send(static_cast<uint32_t>(RankOp::kInit), init));
    ASSIGN_OR_RETURN(std::vector<int> refused, GatherRefusals(*ex->comm_, true));
    if (!refused.empty()) {
      return absl::FailedPreconditionError(
          absl::StrCat("ranks ", absl::StrJoin(refused, ", "),
                       " loaded a different model, precision or layout than the leader (",
                       fp, ")"));
    }
  }
  ex->heartbeat_ = std::thread([p = ex.get()] { p->Heartbeat(); });
  return ex;
}

ShardedRunner::~ShardedRunner() { Shutdown(); }

absl::Status ShardedRunner::failure() const {
  std::lock_guard<std::mutex> lock(fail_mu_);
  return failure_;
}

absl::Status ShardedRunner::Fail(absl::Status st) {
  std::lock_guard<std::mutex> lock(fail_mu_);
  if (failure_.ok()) {
    failure_ = absl::UnavailableError(
        absl::StrCat("the model's ranks are no longer complete: ", st.message()));
  }
  return failure_;
}

absl::Status ShardedRunner::Send(uint32_t op, const std::vector<char>& payload) {
  RankHeader h{.op = op, .payload_bytes = static_cast<int64_t>(payload.size())};
  absl::Status st = comm_->Broadcast(&h, sizeof(h), kLeader);
  if (st.ok() && !payload.empty())
    st = comm_->Broadcast(const_cast<char*>(payload.data()), h.payload_bytes, kLeader);
  return st;
}

absl::Status ShardedRunner::Step(absl::Span<const RunnerSequence> seqs, StepResult* result) {
  std::lock_guard<std::mutex> lock(mu_);
  if (absl::Status f = failure(); !f.ok()) return f;
  if (stopped_) return absl::UnavailableError("the model's ranks have been shut down");
  last_activity_ = std::chrono::steady_clock::now();
  if (absl::Status st =
          Send(static_cast<uint32_t>(RankOp::kForward), EncodeStep(seqs, sample_vocab_));
      !st.ok())
    return Fail(st);
  absl::Status st = local_->Step(seqs, result);
  last_activity_ = std::chrono::steady_clock::now();
  // Validation errors are the same on every rank and leave the group usable; a collective that
  // failed does not.
  if (!st.ok() && !comm_->healthy()) return Fail(st);
  return st;
}

absl::Status ShardedRunner::Health() const { return failure(); }

void ShardedRunner::Heartbeat() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopped_ && failure().ok()) {
    cv_.wait_for(lock, options_.ping_interval);
    if (stopped_ || !failure().ok()) break;
    if (std::chrono::steady_clock::now() - last_activity_ < options_.ping_interval) continue;
    absl::Status st = Send(static_cast<uint32_t>(RankOp::kPing), {});
    if (st.ok()) st = comm_->Barrier();
    if (!st.ok()) Fail(st).IgnoreError();  // remembered; Health() reports it
    last_activity_ = std::chrono::steady_clock::now();
  }
}

void ShardedRunner::Shutdown() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!stopped_) {
      stopped_ = true;
      if (failure().ok()) Send(static_cast<uint32_t>(RankOp::kShutdown), {}).IgnoreError();
    }
  }
  cv_.notify_all();
  if (heartbeat_.joinable()) heartbeat_.join();
  if (local_ranks_) local_ranks_->Wait(/*timeout_s=*/10).IgnoreError();
}

CommStats ShardedRunner::comm_stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return comm_->stats();
}

void ShardedRunner::ResetCommStats() {
  std::lock_guard<std::mutex> lock(mu_);
  comm_->ResetStats();
}

absl::Status RunShardedWorker(Communicator& comm, ProgramRunner& runner,
                              const ShardedOptions& options) {
  if (comm.rank() == kLeader) return absl::InvalidArgumentError("rank 0 is the leader");
  RankHeader h;
  std::vector<char> payload;
  comm.set_timeout(options.first_wait);
  RETURN_IF_ERROR(ReceiveHeader(comm, &h, &payload));
  if (h.op != static_cast<uint32_t>(RankOp::kInit) ||
      payload.size() < sizeof(int64_t)) {
    return absl::InternalError("the leader's first message is not an init");
  }
  int64_t blocks = 0;
  std::memcpy(&blocks, payload.data(), sizeof(blocks));
  const std::string leader_fp(payload.begin() + sizeof(int64_t), payload.end());
  const std::string fp = ShardFingerprint(runner);
  comm.set_timeout(options.step_timeout);
  RETURN_IF_ERROR(GatherRefusals(comm, fp == leader_fp).status());
  if (fp != leader_fp) {
    return absl::FailedPreconditionError(absl::StrCat(
        "rank ", comm.rank(), " loaded \"", fp, "\" but the leader runs \"", leader_fp, "\""));
  }
  if (blocks < 1 || blocks > INT32_MAX)
    return absl::InternalError(absl::StrCat("the leader sent a bad KV block count ", blocks));
  RETURN_IF_ERROR(runner.AllocateKvCache(static_cast<int32_t>(blocks)));
  // Between steps the leader pings every ping_interval; silence for this long means it is gone.
  const auto idle_timeout = options.step_timeout + 3 * options.ping_interval;
  for (;;) {
    comm.set_timeout(idle_timeout);
    RETURN_IF_ERROR(ReceiveHeader(comm, &h, &payload));
    comm.set_timeout(options.step_timeout);
    switch (static_cast<RankOp>(h.op)) {
      case RankOp::kShutdown:
        return absl::OkStatus();
      case RankOp::kPing:
        RETURN_IF_ERROR(comm.Barrier());
        break;
      case RankOp::kForward: {
        ASSIGN_OR_RETURN(DecodedStep step, DecodeStep(payload));
        // The leader's sampled vocabulary: an MTP rank samples the same tokens to draft from.
        runner.LimitSampledVocabulary(step.sample_vocab);
        absl::Status st = runner.Step(step.seqs, nullptr);
        if (!st.ok() && !comm.healthy()) return st;  // else the leader reports it
        break;
      }
      default:
        return absl::InternalError(absl::StrCat("unknown op ", h.op, " from the leader"));
    }
  }
}

}  // namespace dsinfer
