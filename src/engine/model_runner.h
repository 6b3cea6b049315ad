// The engine's contract with a model: a runner executes one planned step over the paged KV cache
// it owns and returns the sampled token ids (and logprobs or full logits only when asked). It
// says what its cache needs (KvCacheSpec), so every sizing path uses one formula. Model-agnostic:
// nothing here knows DeepSeek's layers; a family's program and a backend's ops live behind it
// (src/model, src/backend_cpu, src/backend_cuda; built by src/runner's factory).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "src/config/model_config.h"
#include "src/kv_cache/kv_cache_spec.h"
#include "src/sampling/sampler.h"

namespace dsinfer {

// One sequence's part of a step: its new tokens (decode: one; prefill: a prompt chunk).
struct RunnerSequence {
  absl::Span<const int32_t> tokens;       // new tokens of this step (>= 1)
  int64_t start_pos = 0;                  // tokens of this sequence already in the cache
  absl::Span<const int32_t> block_table;  // must cover start_pos + tokens.size() tokens
  bool sample = false;                    // pick a token after the last new token
  SamplingRow sampling = {};              // how (with sample)
  int32_t logprobs = -1;                  // with sample: -1 none, else top-n alternatives (0..20)
  bool all_logits = false;                // return full logits of every new token
  // MTP speculative decoding (runners with has_mtp()): the last num_draft new tokens (0 ..
  // mtp_draft_tokens()) are drafts d_1..d_k. Row j of the k + 1 rows from the token before the
  // drafts on is sampled (the first with `sampling`, the others with draft_sampling[j - 1]);
  // left to right, draft d_j is accepted while the sample of the row before it equals it
  // (speculative sampling with greedy drafts, src/sampling/speculative.h), and the first sample
  // that differs, or the last row's (all accepted: the bonus token), ends the step's tokens.
  // Needs sample and no logprobs.
  int32_t num_draft = 0;
  absl::Span<const SamplingRow> draft_sampling = {};  // num_draft rows
  // The token after the last new one when it is known already (a prompt chunk before the last),
  // which the MTP layer pairs with the chunk's last row; -1: the token this step samples.
  int32_t next_token = -1;
};

struct TokenLogprob {
  int32_t token = 0;
  float logprob = 0;
};

struct SequenceResult {
  int32_t token = -1;                   // sampled token (sample), else -1
  float logprob = 0;                    // of `token` under the model (logprobs >= 0)
  std::vector<TokenLogprob> top;        // the n most likely tokens (logprobs > 0)
  // Drafted sequences: the tokens after `token`, one per accepted draft (`token` equals the
  // first draft, bonus_tokens[j] the draft after it ... ; the last one was sampled where the
  // drafts ended: a correction or the bonus token). Empty when the first draft was rejected.
  std::vector<int32_t> bonus_tokens;
  // MTP runners: the drafts for the tokens after the last one produced (up to
  // mtp_draft_tokens(), fewer where the block table or the context ends first).
  std::vector<int32_t> drafts;
};

struct StepResult {
  std::vector<SequenceResult> seqs;  // one per input sequence, in order
  // Full logits [rows, vocab] of the sequences with all_logits, in order (else empty).
  std::vector<float> logits;
  // MTP runners: the MTP layer's logits of the same rows (row i: its guess at the token after
  // the one following row i's token, that is after tokens[i + 1] or next_token).
  std::vector<float> mtp_logits;
};

// Tokens routed to each expert, per MoE layer, accumulated over steps.
struct ExpertLoad {
  std::vector<std::vector<int64_t>> tokens;  // [layer][expert]; empty rows for dense layers
};

class ModelRunner {
 public:
  virtual ~ModelRunner() = default;
  virtual const ModelConfig& config() const = 0;
  virtual const KvCacheSpec& kv_cache_spec() const = 0;
  virtual int32_t num_kv_blocks() const = 0;
  virtual const char* backend_name() const = 0;  // "cpu" | "cuda"
  virtual const char* dtype_name() const = 0;    // "f32" | "bf16" (weights: "+fp8" when kept)
  // Runs one step: appends every sequence's new tokens to its cache, samples where asked.
  virtual absl::Status Step(absl::Span<const RunnerSequence> seqs, StepResult* result) = 0;
  virtual const ExpertLoad& expert_load() const = 0;
  // UNAVAILABLE once the runner cannot run steps any more (a rank of a sharded model is gone).
  virtual absl::Status Health() const { return absl::OkStatus(); }
  virtual int tensor_parallel_size() const { return 1; }
  virtual int expert_parallel_size() const { return 1; }
  virtual int64_t weight_bytes() const { return 0; }  // this process's share
  // New tokens one step may carry (backends with fixed workspaces); 0: no limit.
  virtual int64_t max_step_tokens() const { return 0; }
  // Prepares decode steps of 1 .. max_batch sequences before serving (CUDA: captures their
  // graphs), so the first requests do not pay for it. Leaves the cache's contents undefined.
  virtual absl::Status WarmUp(int64_t max_batch) { return absl::OkStatus(); }
  // Samples and reports logprobs over ids [0, n) only, so ids past the tokenizer's vocabulary
  // (a model's padded embedding rows) are never generated; full logits stay whole. n <= 0 or
  // n >= vocab: every id. Set once, before the first step.
  virtual void LimitSampledVocabulary(int64_t n) = 0;
  // Whether steps produce MTP drafts (SequenceResult::drafts) and accept drafted sequences.
  virtual bool has_mtp() const { return false; }
  // MTP runners: the drafts each sampled sequence gets per step (k: the MTP layer chained k
  // times); a sampled sequence's block table may cover k - 1 positions past its new tokens,
  // where the chained drafts write the MTP layer's cache rows (fewer drafts where it does not).
  virtual int32_t mtp_draft_tokens() const { return has_mtp() ? 1 : 0; }
};

}  // namespace dsinfer
