#include "src/engine/batch_generator.h"

#include <algorithm>
#include <chrono>

#include "absl/strings/str_cat.h"
#include "src/core/status_macros.h"
#include "src/kv_cache/block_pool.h"

namespace dsinfer {
namespace {

double Seconds(std::chrono::steady_clock::time_point a, std::chrono::steady_clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

struct Running {
  BlockTable table;
  int64_t pos = 0;  // tokens in the cache
  int32_t next = -1;
  bool done = false;
};

}  // namespace

absl::StatusOr<std::vector<GenerationResult>> GenerateOnExecutor(
    Executor& executor, absl::Span<const GenerationRequest> requests,
    const GenerationOptions& options, GenerationStats* stats,
    const std::function<void(size_t, int32_t)>& on_token) {
  const ModelConfig& cfg = executor.config();
  int64_t blocks = 0;
  for (size_t r = 0; r < requests.size(); ++r) {
    const GenerationRequest& req = requests[r];
    if (req.prompt.empty())
      return absl::InvalidArgumentError(absl::StrCat("request ", r, ": empty prompt"));
    if (req.max_tokens < 1)
      return absl::InvalidArgumentError(absl::StrCat("request ", r, ": max_tokens must be >= 1"));
    RETURN_IF_ERROR(ValidateSamplingParams(req.sampling));
    const int64_t total = static_cast<int64_t>(req.prompt.size()) + req.max_tokens;
    if (total > cfg.max_position_embeddings) {
      return absl::InvalidArgumentError(absl::StrCat(
          "request ", r, ": prompt of ", req.prompt.size(), " tokens plus max_tokens ",
          req.max_tokens, " exceeds the context length ", cfg.max_position_embeddings));
    }
    blocks += BlocksForTokens(total);
  }
  if (blocks > executor.num_kv_blocks()) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "the requests need ", blocks, " KV blocks; the executor has ", executor.num_kv_blocks()));
  }
  GenerationStats local;
  GenerationStats& st = stats ? *stats : local;
  BlockPool pool(executor.num_kv_blocks());
  std::vector<GenerationResult> results(requests.size());
  std::vector<Running> run(requests.size());
  std::vector<Sampler> samplers;
  samplers.reserve(requests.size());
  for (size_t r = 0; r < requests.size(); ++r) {
    samplers.emplace_back(requests[r].sampling, requests[r].prompt);
    RETURN_IF_ERROR(run[r].table.Reserve(
        pool, static_cast<int64_t>(requests[r].prompt.size()) + requests[r].max_tokens));
  }
  const int64_t V = cfg.vocab_size;
  const int64_t sample_vocab = options.sample_vocab > 0 ? std::min(options.sample_vocab, V) : V;
  auto accept = [&](size_t r, float* logits) {
    Running& s = run[r];
    const GenerationRequest& req = requests[r];
    const int32_t tok = samplers[r].Sample(absl::MakeSpan(logits, sample_vocab));
    results[r].tokens.push_back(tok);
    if (on_token) on_token(r, tok);
    const bool eos =
        req.stop_at_eos && std::find(cfg.eos_token_ids.begin(), cfg.eos_token_ids.end(), tok) !=
                               cfg.eos_token_ids.end();
    if (eos || samplers[r].IsStop(tok)) {
      s.done = true;
      results[r].finish_reason = "stop";
    } else if (static_cast<int64_t>(results[r].tokens.size()) >= req.max_tokens) {
      s.done = true;
      results[r].finish_reason = "length";
    }
    s.next = tok;
  };

  std::vector<float> logits;
  auto t0 = std::chrono::steady_clock::now();
  {
    std::vector<size_t> pending(requests.size());
    for (size_t r = 0; r < requests.size(); ++r) pending[r] = r;
    while (!pending.empty()) {
      std::vector<SequenceInput> step;
      std::vector<size_t> members;
      for (size_t r : pending) {
        const auto& prompt = requests[r].prompt;
        const int64_t n = std::min<int64_t>(options.prefill_chunk,
                                            static_cast<int64_t>(prompt.size()) - run[r].pos);
        step.push_back({.tokens = absl::MakeConstSpan(prompt.data() + run[r].pos, n),
                        .start_pos = run[r].pos,
                        .block_table = run[r].table.blocks()});
        members.push_back(r);
        if (!options.batch_prefill) break;
      }
      RETURN_IF_ERROR(executor.Forward(step, &logits));
      std::vector<size_t> still;
      for (size_t i = 0; i < members.size(); ++i) {
        const size_t r = members[i];
        run[r].pos += static_cast<int64_t>(step[i].tokens.size());
        st.prefill_tokens += static_cast<int64_t>(step[i].tokens.size());
        if (run[r].pos == static_cast<int64_t>(requests[r].prompt.size()))
          accept(r, logits.data() + i * V);
      }
      for (size_t r : pending)
        if (run[r].pos < static_cast<int64_t>(requests[r].prompt.size())) still.push_back(r);
      pending.swap(still);
    }
  }
  auto t1 = std::chrono::steady_clock::now();
  st.prefill_seconds += Seconds(t0, t1);
  if (options.on_decode_start) options.on_decode_start();
  t1 = std::chrono::steady_clock::now();

  for (;;) {
    std::vector<SequenceInput> step;
    std::vector<size_t> members;
    for (size_t r = 0; r < run.size(); ++r) {
      if (run[r].done) continue;
      step.push_back({.tokens = absl::MakeConstSpan(&run[r].next, 1),
                      .start_pos = run[r].pos,
                      .block_table = run[r].table.blocks()});
      members.push_back(r);
    }
    if (step.empty()) break;
    RETURN_IF_ERROR(executor.Forward(step, &logits));
    ++st.decode_steps;
    st.decode_tokens += static_cast<int64_t>(members.size());
    for (size_t i = 0; i < members.size(); ++i) {
      run[members[i]].pos += 1;
      accept(members[i], logits.data() + i * V);
    }
  }
  st.decode_seconds += Seconds(t1, std::chrono::steady_clock::now());
  for (auto& s : run) s.table.Release(pool);
  return results;
}

namespace {

// Runs a DeepseekModel the caller keeps, with a latent cache of its own (the CLI and tests
// own the model; CpuExecutor would take it over).
class BorrowedModelExecutor : public Executor {
 public:
  BorrowedModelExecutor(DeepseekModel& model, int32_t blocks)
      : model_(model), cache_(model.MakeCache(blocks)) {}
  const ModelConfig& config() const override { return model_.config(); }
  int32_t num_kv_blocks() const override { return cache_.num_blocks(); }
  const char* backend_name() const override { return "cpu"; }
  const char* dtype_name() const override {
    return model_.precision() == Precision::kBF16 ? "bf16" : "f32";
  }
  absl::Status Forward(absl::Span<const SequenceInput> seqs, std::vector<float>* logits) override {
    return model_.Forward(seqs, cache_, logits);
  }
  const ExpertLoad& expert_load() const override { return model_.expert_load(); }

 private:
  DeepseekModel& model_;
  LatentCacheStorage cache_;
};

}  // namespace

absl::StatusOr<std::vector<GenerationResult>> GenerateBatch(
    DeepseekModel& model, absl::Span<const GenerationRequest> requests,
    const GenerationOptions& options, GenerationStats* stats,
    const std::function<void(size_t, int32_t)>& on_token) {
  // A cache exactly as large as the requests need (GenerateOnExecutor validates them).
  int64_t blocks = 0;
  for (const GenerationRequest& r : requests)
    blocks += BlocksForTokens(static_cast<int64_t>(r.prompt.size()) + std::max<int64_t>(r.max_tokens, 0));
  BorrowedModelExecutor executor(model, static_cast<int32_t>(std::max<int64_t>(blocks, 1)));
  return GenerateOnExecutor(executor, requests, options, stats, on_token);
}

}  // namespace dsinfer
