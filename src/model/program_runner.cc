#include "src/model/program_runner.h"

#include "absl/strings/str_cat.h"
#include "src/core/status_macros.h"
#include "src/model/weight_budget.h"

namespace dsinfer {

absl::StatusOr<std::unique_ptr<ProgramRunner>> ProgramRunner::Create(
    std::unique_ptr<BackendOps> ops, const ProgramRunnerOptions& o) {
  ASSIGN_OR_RETURN(ModelConfig config, LoadModelConfig(o.model_dir));
  if (o.mtp) {
    if (config.IsDense()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "mtp: model_type ", config.model_type, " has no multi-token-prediction layer"));
    }
    if (config.num_nextn_predict_layers < 1) {
      return absl::InvalidArgumentError(
          "mtp: the checkpoint has no MTP layer (num_nextn_predict_layers is 0)");
    }
    if (std::string(ops->name()) != "cpu") {
      return absl::UnimplementedError(absl::StrCat(
          "mtp: speculative decoding runs on the cpu backend only; the ", ops->name(),
          " backend has no MTP step yet"));
    }
    if (!o.layout.single()) {
      return absl::UnimplementedError(absl::StrCat(
          "mtp: speculative decoding runs on one rank; tp is ", o.layout.tp));
    }
    config.mtp_layers = 1;  // depth 1: one-token drafts
  }
  if (config.dsa.enabled && !ops->has_sparse_attention()) {
    return absl::UnimplementedError(absl::StrCat(
        "model_type deepseek_v32 (DeepSeek Sparse Attention): the ", ops->name(),
        " backend has no indexer and sparse MLA ops"));
  }
  ASSIGN_OR_RETURN(auto store, WeightStore::Open(o.model_dir, o.progress));
  store->SetFp8BlockSize(config.fp8.block_n, config.fp8.block_k);
  // Shapes and sizes are checked before anything large is allocated: the weights against the
  // memory the backend has, then the KV pool the sizer would choose against what they leave.
  RETURN_IF_ERROR(CheckModelShapes(config, o.layout, *store));
  // Where the memory cannot be read, only the allocations themselves can fail.
  if (absl::StatusOr<int64_t> available = ops->AvailableKvBytes(); available.ok()) {
    const HeldWeightBytes held =
        ModelHeldBytes(config, o.layout, *store, o.precision, ops->keeps_fp8());
    RETURN_IF_ERROR(CheckWeightsFit(held, o.precision, *available));
    if (o.num_kv_blocks == 0 && o.kv_sizer) {
      const int64_t left = std::max<int64_t>(0, *available - static_cast<int64_t>(held.total));
      RETURN_IF_ERROR(
          o.kv_sizer(ModelKvCacheSpec(config, ops->kv_dtype(), o.layout), left).status());
    }
  }
  std::unique_ptr<ProgramRunner> r(new ProgramRunner(std::move(ops), o.precision));
  ASSIGN_OR_RETURN(r->program_, LoadModelProgram(config, o.layout, *store, *r->ops_));
  store->FinishProgress();
  r->spec_ = ModelKvCacheSpec(r->program_->config(), r->ops_->kv_dtype(), o.layout);
  if (const int64_t T = r->ops_->max_step_tokens(); T > 0) {
    const int64_t R = std::min(T, std::max<int64_t>(r->ops_->max_logit_rows(), 1));
    const int64_t S = std::min(T, std::max<int64_t>(r->ops_->max_step_seqs(), 1));
    RETURN_IF_ERROR(r->ops_->Reserve(r->program_->Needs(T, R, S)));
  }
  int32_t blocks = o.num_kv_blocks;
  if (blocks < 0) return r;
  if (blocks == 0) {
    if (!o.kv_sizer) return absl::InvalidArgumentError("runner: no KV cache size given");
    ASSIGN_OR_RETURN(int64_t available, r->ops_->AvailableKvBytes());
    ASSIGN_OR_RETURN(blocks, o.kv_sizer(r->spec_, available));
  }
  RETURN_IF_ERROR(r->AllocateKvCache(blocks));
  return r;
}

absl::Status ProgramRunner::AllocateKvCache(int32_t num_blocks) {
  RETURN_IF_ERROR(ops_->AllocateKvCache(spec_, num_blocks));
  const ModelConfig& c = program_->config();
  limits_ = {.vocab_size = c.vocab_size,
             .max_positions = c.max_position_embeddings,
             .num_blocks = num_blocks,
             .block_size = spec_.block_size};
  return absl::OkStatus();
}

absl::Status ProgramRunner::WarmUp(int64_t max_batch) {
  if (!ops_->can_replay()) return absl::OkStatus();
  const int64_t limit = ops_->max_logit_rows() > 0 ? ops_->max_logit_rows() : max_batch;
  max_batch = std::min({max_batch, limit, static_cast<int64_t>(ops_->max_step_seqs())});
  // Decode steps of B dummy sequences (token 0 at position 1 of block 0): the first runs
  // eagerly, the second captures the step. They all write block 0, which no request holds yet.
  const std::vector<int32_t> token = {0}, table = {0};
  for (int64_t b = 1; b <= max_batch; ++b) {
    std::vector<RunnerSequence> seqs(b, RunnerSequence{.tokens = token, .start_pos = 1,
                                                       .block_table = table});
    for (int rep = 0; rep < 2; ++rep) RETURN_IF_ERROR(Step(seqs, nullptr));
  }
  ops_->ResetExpertLoad();
  return absl::OkStatus();
}

absl::StatusOr<Tensor> ProgramRunner::RunReplayable(const StepInput& step, int64_t key) {
  const int64_t R = static_cast<int64_t>(step.logit_rows.size());
  auto run = [&]() -> absl::StatusOr<Tensor> {
    ASSIGN_OR_RETURN(Tensor x, program_->Layers(step));
    return program_->Logits(step, x, 0, R);
  };
  if (ops_->HasReplay(key)) {
    RETURN_IF_ERROR(ops_->Replay(key));
    return replay_logits_.at(key);
  }
  if (seen_keys_.insert(key).second) return run();  // first time: eagerly
  // Second time: capture, then run what was captured.
  absl::Status st = ops_->BeginCapture(key);
  absl::StatusOr<Tensor> logits = st.ok() ? run() : absl::StatusOr<Tensor>(st);
  absl::Status end = ops_->EndCapture(key);
  if (logits.ok() && end.ok()) {
    replay_logits_[key] = *logits;
    RETURN_IF_ERROR(ops_->Replay(key));
    return logits;
  }
  // A step that cannot be captured runs eagerly from now on.
  replay_failed_ = true;
  RETURN_IF_ERROR(ops_->BeginStep(step));
  return run();
}

absl::Status ProgramRunner::Step(absl::Span<const RunnerSequence> seqs, StepResult* result) {
  for (size_t s = 0; s < seqs.size(); ++s) {
    if (seqs[s].num_draft > 0 && (!program_->has_mtp() || seqs[s].logprobs >= 0)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "sequence ", s, ": a draft needs a runner with MTP and no logprobs"));
    }
  }
  ASSIGN_OR_RETURN(StepInput step, BuildStepInput(seqs, limits_));
  RETURN_IF_ERROR(ops_->BeginStep(step));
  const int64_t R = static_cast<int64_t>(step.logit_rows.size());
  if (result != nullptr) {
    result->seqs.assign(seqs.size(), SequenceResult{});
    int64_t full_rows = 0;
    for (const RunnerSequence& s : seqs)
      if (s.all_logits) full_rows += static_cast<int64_t>(s.tokens.size());
    result->logits.assign(full_rows * program_->config().vocab_size, 0.f);
    result->mtp_logits.clear();
  }
  // Decode steps of a batch size seen before replay one captured step (layers and logits).
  const int64_t key = replay_failed_ ? -1 : ops_->ReplayKey(step);
  if (key >= 0) {
    ASSIGN_OR_RETURN(Tensor logits, RunReplayable(step, key));
    if (result == nullptr) return ops_->Sync();
    return Outputs(seqs, step, logits, 0, result);
  }
  ASSIGN_OR_RETURN(Tensor x, program_->Layers(step));
  // Logits in chunks of the backend's row limit (all of them where it has none).
  const int64_t chunk = ops_->max_logit_rows() > 0 ? ops_->max_logit_rows() : std::max<int64_t>(R, 1);
  for (int64_t r0 = 0; r0 < R; r0 += chunk) {
    const int64_t mark = ops_->ScratchMark();
    ASSIGN_OR_RETURN(Tensor logits, program_->Logits(step, x, r0, std::min(chunk, R - r0)));
    if (result != nullptr) RETURN_IF_ERROR(Outputs(seqs, step, logits, r0, result));
    ops_->ScratchRelease(mark);
  }
  if (program_->has_mtp()) RETURN_IF_ERROR(Draft(seqs, step, x, result));
  return ops_->Sync();
}

absl::Status ProgramRunner::Draft(absl::Span<const RunnerSequence> seqs, const StepInput& step,
                                  Tensor x, StepResult* result) {
  // next[i]: the token after row i's, as the sequence now stands. A rejected draft's row gets
  // a stand-in: its MTP cache row is rewritten when that position is computed again.
  std::vector<int32_t> next(step.num_tokens, 0), rows;
  std::vector<size_t> which;
  for (size_t s = 0; s < seqs.size(); ++s) {
    const RunnerSequence& in = seqs[s];
    const int64_t n = static_cast<int64_t>(in.tokens.size()), off = step.token_offset[s];
    for (int64_t i = 0; i + 1 < n; ++i) next[off + i] = in.tokens[i + 1];
    const SequenceResult* r = result != nullptr ? &result->seqs[s] : nullptr;
    if (!in.sample || r == nullptr || r->token < 0) {
      next[off + n - 1] = std::max(in.next_token, 0);
      continue;
    }
    int64_t last = off + n - 1;  // the row of the last token whose successor is now known
    if (in.num_draft > 0 && r->bonus_token < 0) {
      --last;  // rejected: the sampled token replaces the draft
      next[last] = r->token;
      next[off + n - 1] = r->token;
    } else {
      next[last] = in.num_draft > 0 ? r->bonus_token : r->token;
    }
    rows.push_back(static_cast<int32_t>(last));
    which.push_back(s);
  }
  // All rows of all_logits sequences too (after the draft rows), for result->mtp_logits.
  const size_t num_drafts = rows.size();
  for (size_t s = 0; s < seqs.size() && result != nullptr; ++s) {
    if (!seqs[s].all_logits) continue;
    for (size_t i = 0; i < seqs[s].tokens.size(); ++i)
      rows.push_back(static_cast<int32_t>(step.token_offset[s] + i));
  }
  const int64_t mark = ops_->ScratchMark();
  ASSIGN_OR_RETURN(Tensor all, program_->MtpLogits(step, x, next, rows));
  if (rows.size() > num_drafts) {
    const int64_t V = all.cols, n = static_cast<int64_t>(rows.size() - num_drafts);
    result->mtp_logits.resize(n * V);
    RETURN_IF_ERROR(ops_->CopyToHost(all.Rows(static_cast<int64_t>(num_drafts), n),
                                     result->mtp_logits.data()));
  }
  Tensor logits = all.Rows(0, static_cast<int64_t>(num_drafts));
  rows.resize(num_drafts);
  if (!rows.empty()) {
    if (sample_vocab_ > 0 && sample_vocab_ < logits.cols) logits = logits.Cols(0, sample_vocab_);
    std::vector<int32_t> idx(rows.size()), drafts(rows.size());
    for (size_t i = 0; i < rows.size(); ++i) idx[i] = static_cast<int32_t>(i);
    const std::vector<SamplingRow> greedy(rows.size());  // temperature 0: argmax
    RETURN_IF_ERROR(ops_->Sample(logits, idx, greedy, drafts.data()));
    RETURN_IF_ERROR(ops_->Sync());
    for (size_t i = 0; i < rows.size(); ++i) result->seqs[which[i]].draft = drafts[i];
  }
  ops_->ScratchRelease(mark);
  return absl::OkStatus();
}

absl::Status ProgramRunner::Outputs(absl::Span<const RunnerSequence> seqs, const StepInput& step,
                                    Tensor logits, int64_t r0, StepResult* result) {
  const int64_t V = logits.cols, r1 = r0 + logits.rows;
  // Full logits first (what the model computed, before any penalty): each all_logits sequence's
  // rows that fall in this chunk.
  int64_t at = 0;  // row of result->logits where the sequence's rows start
  for (size_t s = 0; s < seqs.size(); ++s) {
    if (!seqs[s].all_logits) continue;
    const int64_t n = static_cast<int64_t>(seqs[s].tokens.size());
    const int64_t first = step.last_logit[s] - n + 1;
    const int64_t lo = std::max(first, r0), hi = std::min(first + n, r1);
    if (lo < hi) {
      RETURN_IF_ERROR(ops_->CopyToHost(logits.Rows(lo - r0, hi - lo),
                                       result->logits.data() + (at + lo - first) * V));
    }
    at += n;
  }
  // Sampling and logprobs see only the ids that may be generated.
  if (sample_vocab_ > 0 && sample_vocab_ < V) logits = logits.Cols(0, sample_vocab_);
  std::vector<int32_t> rows, tokens;
  std::vector<SamplingRow> params;
  std::vector<size_t> which;
  int32_t top_n = -1;
  for (size_t s = 0; s < seqs.size(); ++s) {
    if (!seqs[s].sample || step.last_logit[s] < r0 || step.last_logit[s] >= r1) continue;
    if (seqs[s].num_draft > 0) {
      // The row before the draft verifies it; the draft's row gives the bonus token.
      if (step.last_logit[s] - 1 < r0) {
        return absl::InternalError("a drafted sequence's logit rows span two chunks");
      }
      rows.push_back(static_cast<int32_t>(step.last_logit[s] - 1 - r0));
      params.push_back(seqs[s].sampling);
      which.push_back(s);
      rows.push_back(static_cast<int32_t>(step.last_logit[s] - r0));
      params.push_back(seqs[s].draft_sampling);
      which.push_back(s);
      continue;
    }
    rows.push_back(static_cast<int32_t>(step.last_logit[s] - r0));
    params.push_back(seqs[s].sampling);
    which.push_back(s);
    top_n = std::max(top_n, seqs[s].logprobs);
  }
  if (rows.empty()) return ops_->Sync();
  tokens.resize(rows.size());
  if (top_n >= 0) {
    // Logprobs come from the unpenalised logits, so sampling runs on a copy of the rows.
    std::vector<int32_t> lp_rows, chosen, wants;
    std::vector<SequenceResult*> out;
    ASSIGN_OR_RETURN(Tensor copy, ops_->Scratch(static_cast<int64_t>(rows.size()), logits.cols,
                                                ElemType::kF32));
    RETURN_IF_ERROR(ops_->GatherRows(logits, rows, copy));
    std::vector<int32_t> copy_rows(rows.size());
    for (size_t i = 0; i < rows.size(); ++i) copy_rows[i] = static_cast<int32_t>(i);
    RETURN_IF_ERROR(ops_->Sample(copy, copy_rows, params, tokens.data()));
    RETURN_IF_ERROR(ops_->Sync());
    for (size_t i = 0; i < rows.size(); ++i) {
      if (seqs[which[i]].logprobs < 0) continue;
      lp_rows.push_back(rows[i]);
      chosen.push_back(tokens[i]);
      out.push_back(&result->seqs[which[i]]);
      wants.push_back(seqs[which[i]].logprobs);
    }
    RETURN_IF_ERROR(ops_->Logprobs(logits, lp_rows, chosen, top_n, out));
    for (size_t i = 0; i < out.size(); ++i)
      if (static_cast<int32_t>(out[i]->top.size()) > wants[i]) out[i]->top.resize(wants[i]);
  } else {
    RETURN_IF_ERROR(ops_->Sample(logits, rows, params, tokens.data()));
  }
  RETURN_IF_ERROR(ops_->Sync());
  for (size_t i = 0; i < rows.size(); ++i) {
    const RunnerSequence& in = seqs[which[i]];
    SequenceResult& out = result->seqs[which[i]];
    if (in.num_draft == 0) {
      out.token = tokens[i];
      continue;
    }
    // Speculative sampling with a greedy draft d (q = one-hot at d): accept with probability
    // min(1, p(d) / q(d)) = p(d), else resample from norm(max(0, p - q)) = p without d. One
    // sample x ~ p does both: accept iff x == d, and x is the resample otherwise
    // (src/sampling/speculative.h states the rule for any q and tests it).
    out.token = tokens[i];
    out.bonus_token = tokens[i] == in.tokens.back() ? tokens[i + 1] : -1;
    ++i;
  }
  return absl::OkStatus();
}

}  // namespace dsinfer
