#include "src/model/program_runner.h"

#include "absl/strings/str_cat.h"
#include "src/core/status_macros.h"
#include "src/model/weight_budget.h"
#include "src/sampling/speculative.h"

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
    if (o.mtp_draft_tokens < 1 || o.mtp_draft_tokens > kMaxMtpDraftTokens) {
      return absl::InvalidArgumentError(absl::StrCat("mtp_draft_tokens: ", o.mtp_draft_tokens,
                                                     " is not in [1, ", kMaxMtpDraftTokens, "]"));
    }
    config.mtp_layers = 1;  // the one MTP layer; k > 1 drafts chain it
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
  r->mtp_draft_tokens_ = o.mtp_draft_tokens;
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
  // MTP steps run eagerly (Step): nothing to capture.
  if (!ops_->can_replay() || program_->has_mtp()) return absl::OkStatus();
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
    if (static_cast<int64_t>(seqs[s].draft_sampling.size()) != seqs[s].num_draft) {
      return absl::InvalidArgumentError(absl::StrCat("sequence ", s, ": ", seqs[s].num_draft,
                                                     " drafts need as many draft_sampling rows"));
    }
  }
  ASSIGN_OR_RETURN(StepInput step, BuildStepInput(seqs, limits_));
  RETURN_IF_ERROR(ops_->BeginStep(step));
  // A rank without outputs of an MTP model still samples: the MTP layer's inputs (and its
  // collectives) follow the sampled tokens, which every rank draws alike from gathered logits.
  StepResult rank_result;
  if (result == nullptr && program_->has_mtp()) result = &rank_result;
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
  // MTP steps draft after the logits, which a replayed step does not: they run eagerly.
  const int64_t key = replay_failed_ || program_->has_mtp() ? -1 : ops_->ReplayKey(step);
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
  // next[i]: the token after row i's, as the sequence now stands. Rows of rejected drafts get
  // stand-ins: their MTP cache rows are rewritten when those positions are computed again.
  std::vector<int32_t> next(step.num_tokens, 0), rows;
  std::vector<size_t> which;     // per draft row: its sequence
  std::vector<int32_t> newest;   // per draft row: the last token produced, and its position
  std::vector<int64_t> newest_pos;
  for (size_t s = 0; s < seqs.size(); ++s) {
    const RunnerSequence& in = seqs[s];
    const int64_t n = static_cast<int64_t>(in.tokens.size()), off = step.token_offset[s];
    for (int64_t i = 0; i + 1 < n; ++i) next[off + i] = in.tokens[i + 1];
    const SequenceResult* r = result != nullptr ? &result->seqs[s] : nullptr;
    if (!in.sample || r == nullptr || r->token < 0) {
      next[off + n - 1] = std::max(in.next_token, 0);
      continue;
    }
    // The row of the token before the last one produced: accepted drafts move it right.
    const int64_t accepted = static_cast<int64_t>(r->bonus_tokens.size());
    const int64_t last = off + n - 1 - in.num_draft + accepted;
    const int32_t produced = accepted == 0 ? r->token : r->bonus_tokens.back();
    next[last] = produced;
    next[off + n - 1] = produced;  // the last row's own successor, or a rejected row's stand-in
    rows.push_back(static_cast<int32_t>(last));
    which.push_back(s);
    newest.push_back(produced);
    newest_pos.push_back(in.start_pos + (last - off) + 1);
  }
  // All rows of all_logits sequences too (after the draft rows), for result->mtp_logits.
  const size_t num_drafts = rows.size();
  for (size_t s = 0; s < seqs.size() && result != nullptr; ++s) {
    if (!seqs[s].all_logits) continue;
    for (size_t i = 0; i < seqs[s].tokens.size(); ++i)
      rows.push_back(static_cast<int32_t>(step.token_offset[s] + i));
  }
  const int64_t mark = ops_->ScratchMark();
  const bool chain = mtp_draft_tokens_ > 1 && num_drafts > 0;
  Tensor hidden;
  ASSIGN_OR_RETURN(Tensor all, program_->MtpLogits(step, x, ModelProgram::MtpInput::kMainHidden,
                                                   next, rows, chain ? &hidden : nullptr));
  if (rows.size() > num_drafts) {
    const int64_t V = all.cols, n = static_cast<int64_t>(rows.size() - num_drafts);
    result->mtp_logits.resize(n * V);
    RETURN_IF_ERROR(ops_->CopyToHost(all.Rows(static_cast<int64_t>(num_drafts), n),
                                     result->mtp_logits.data()));
  }
  std::vector<int32_t> drafts(num_drafts);
  RETURN_IF_ERROR(GreedyDrafts(all.Rows(0, static_cast<int64_t>(num_drafts)), drafts.data()));
  for (size_t i = 0; i < num_drafts; ++i) result->seqs[which[i]].drafts = {drafts[i]};
  std::vector<float> state;  // [num_drafts, hidden] MTP states of the chain, on the host
  if (chain) {
    state.resize(num_drafts * hidden.cols);
    RETURN_IF_ERROR(ops_->CopyToHost(hidden.Rows(0, static_cast<int64_t>(num_drafts)),
                                     state.data()));
    RETURN_IF_ERROR(ops_->Sync());
  }
  ops_->ScratchRelease(mark);
  if (chain) RETURN_IF_ERROR(ChainDrafts(seqs, which, newest, newest_pos, std::move(state), result));
  return absl::OkStatus();
}

absl::Status ProgramRunner::GreedyDrafts(Tensor logits, int32_t* drafts) {
  if (logits.rows == 0) return absl::OkStatus();
  if (sample_vocab_ > 0 && sample_vocab_ < logits.cols) logits = logits.Cols(0, sample_vocab_);
  std::vector<int32_t> idx(logits.rows);
  for (int64_t i = 0; i < logits.rows; ++i) idx[i] = static_cast<int32_t>(i);
  const std::vector<SamplingRow> greedy(logits.rows);  // temperature 0: argmax
  RETURN_IF_ERROR(ops_->Sample(logits, idx, greedy, drafts));
  return ops_->Sync();
}

// Draft j (2..k) of a sequence: the MTP layer once more, at the position after the previous
// draft's row, pairing that row's MTP state with the previous draft (DeepSeek-V3's sequential
// MTP with the one layer reused). Each round is a decode step of its own over the sequences
// still drafting (their block tables must cover the row; the context must not end).
absl::Status ProgramRunner::ChainDrafts(absl::Span<const RunnerSequence> seqs,
                                        std::vector<size_t> which, std::vector<int32_t> newest,
                                        std::vector<int64_t> pos, std::vector<float> state,
                                        StepResult* result) {
  const int64_t D = program_->config().hidden_size;
  for (int32_t j = 2; j <= mtp_draft_tokens_; ++j) {
    // Round j's rows: position pos + j - 2 holds the token before draft j - 1.
    std::vector<size_t> keep;
    for (size_t i = 0; i < which.size(); ++i) {
      const RunnerSequence& in = seqs[which[i]];
      const int64_t p = pos[i] + j - 2;
      if (p + 1 <= limits_.max_positions &&
          static_cast<int64_t>(in.block_table.size()) * limits_.block_size >= p + 1) {
        keep.push_back(i);
      }
    }
    if (keep.empty()) break;
    const int64_t A = static_cast<int64_t>(keep.size());
    std::vector<int32_t> row_tokens(A), next(A), rows(A);
    std::vector<float> h(A * D);
    std::vector<RunnerSequence> round(A);
    for (int64_t a = 0; a < A; ++a) {
      const size_t i = keep[a];
      const std::vector<int32_t>& d = result->seqs[which[i]].drafts;
      row_tokens[a] = j == 2 ? newest[i] : d[j - 3];
      next[a] = d[j - 2];
      rows[a] = static_cast<int32_t>(a);
      std::copy(state.begin() + i * D, state.begin() + (i + 1) * D, h.begin() + a * D);
    }
    for (int64_t a = 0; a < A; ++a) {
      round[a] = RunnerSequence{.tokens = absl::MakeConstSpan(&row_tokens[a], 1),
                                .start_pos = pos[keep[a]] + j - 2,
                                .block_table = seqs[which[keep[a]]].block_table};
    }
    ASSIGN_OR_RETURN(chain_step_, BuildStepInput(round, limits_));
    RETURN_IF_ERROR(ops_->BeginStep(chain_step_));
    ASSIGN_OR_RETURN(Tensor hin, ops_->Scratch(A, D, ElemType::kF32));
    RETURN_IF_ERROR(ops_->CopyFromHost(h.data(), hin));
    Tensor hout;
    const bool more = j < mtp_draft_tokens_;
    ASSIGN_OR_RETURN(Tensor logits,
                     program_->MtpLogits(chain_step_, hin, ModelProgram::MtpInput::kMtpHidden,
                                         next, rows, more ? &hout : nullptr));
    std::vector<int32_t> drafts(A);
    RETURN_IF_ERROR(GreedyDrafts(logits, drafts.data()));
    std::vector<size_t> which2(A);
    std::vector<int32_t> newest2(A);
    std::vector<int64_t> pos2(A);
    for (int64_t a = 0; a < A; ++a) {
      const size_t i = keep[a];
      result->seqs[which[i]].drafts.push_back(drafts[a]);
      which2[a] = which[i];
      newest2[a] = newest[i];
      pos2[a] = pos[i];
    }
    if (more) {
      state.resize(A * D);
      RETURN_IF_ERROR(ops_->CopyToHost(hout, state.data()));
      RETURN_IF_ERROR(ops_->Sync());
    }
    which = std::move(which2);
    newest = std::move(newest2);
    pos = std::move(pos2);
  }
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
    if (const int64_t m = seqs[s].num_draft; m > 0) {
      // Row j of the m + 1 from the token before the drafts verifies draft j + 1 (the last
      // one gives the bonus token).
      if (step.last_logit[s] - m < r0) {
        return absl::InternalError("a drafted sequence's logit rows span two chunks");
      }
      for (int64_t j = 0; j <= m; ++j) {
        rows.push_back(static_cast<int32_t>(step.last_logit[s] - m + j - r0));
        params.push_back(j == 0 ? seqs[s].sampling : seqs[s].draft_sampling[j - 1]);
        which.push_back(s);
      }
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
    // Speculative sampling with greedy drafts (q = one-hot at d): draft d accepted with
    // probability min(1, p(d) / q(d)) = p(d), else a resample from norm(max(0, p - q)) = p
    // without d. One sample x ~ p does both: accept iff x == d, and x is the resample
    // otherwise; left to right over the k drafts (src/sampling/speculative.h states the rule
    // and tests it).
    const int64_t m = in.num_draft;
    const std::vector<int32_t> produced = AcceptGreedyDrafts(
        in.tokens.subspan(in.tokens.size() - m), absl::MakeConstSpan(tokens).subspan(i, m + 1));
    out.token = produced[0];
    out.bonus_tokens.assign(produced.begin() + 1, produced.end());
    i += m;
  }
  return absl::OkStatus();
}

}  // namespace dsinfer
