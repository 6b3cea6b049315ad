// logits / generate / bench subcommands: run a model directory on the CPU backend (default) or,
// with --device cuda in a CUDA build, on the GPU through the Executor interface.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "src/cli/args.h"
#include "src/cli/commands.h"
#include "src/core/status_macros.h"
#include "src/engine/batch_generator.h"
#include "src/distributed/sharded_run.h"
#include "src/engine/executor.h"
#include "src/tokenizer/chat_template.h"
#include "src/tokenizer/tokenizer.h"
#include "src/weights/load_progress.h"
#ifdef DSINFER_HAVE_CUDA
#include "src/backend_cuda/cuda_executor.h"
#include "src/engine/batch_generator.h"
#endif

namespace dsinfer::cli {
namespace {

absl::StatusOr<std::unique_ptr<DeepseekModel>> LoadModel(const Args& args,
                                                         const char* default_dtype) {
  ASSIGN_OR_RETURN(std::string dir, args.Required("model"));
  ASSIGN_OR_RETURN(Precision precision, ParsePrecision(args.Get("dtype").value_or(default_dtype)));
  ASSIGN_OR_RETURN(int64_t threads, args.Int("threads", 0));
  if (threads < 0) return absl::InvalidArgumentError("--threads must be >= 0");
  ModelOptions opts{.precision = precision, .threads = static_cast<int>(threads),
                    .progress = StderrProgress("loading weights")};
  return DeepseekModel::Load(dir, opts);
}

const std::set<std::string> kModelFlags = {"model", "dtype", "threads", "device", "tp", "ep",
                                           "timeout"};

// --tp N [--ep M] [--timeout S]: N local rank processes (the model sharded over them).
absl::StatusOr<ParallelOptions> ParallelFromArgs(const Args& args) {
  ParallelOptions p;
  ASSIGN_OR_RETURN(int64_t tp, args.Int("tp", 1));
  ASSIGN_OR_RETURN(int64_t ep, args.Int("ep", 1));
  ASSIGN_OR_RETURN(p.timeout_s, args.Float("timeout", 60));
  if (tp < 1 || tp > 1024) return absl::InvalidArgumentError("--tp must be in [1, 1024]");
  if (ep < 1 || tp % ep != 0) return absl::InvalidArgumentError("--ep must divide --tp");
  if (p.timeout_s <= 0) return absl::InvalidArgumentError("--timeout must be > 0");
  p.tp = static_cast<int>(tp);
  p.ep = static_cast<int>(ep);
  return p;
}

// The model on the CPU: one process (tp 1) or sharded over --tp local ranks.
absl::StatusOr<std::unique_ptr<Executor>> LoadCpu(const Args& args, const char* default_dtype,
                                                  int32_t kv_blocks) {
  ASSIGN_OR_RETURN(ParallelOptions par, ParallelFromArgs(args));
  if (par.tp == 1) {
    if (args.Has("ep") && par.ep != 1) return absl::InvalidArgumentError("--ep needs --tp");
    ASSIGN_OR_RETURN(auto model, LoadModel(args, default_dtype));
    return std::unique_ptr<Executor>(new CpuExecutor(std::move(model), kv_blocks));
  }
  ASSIGN_OR_RETURN(std::string dir, args.Required("model"));
  ShardLoad load{.model_dir = dir};
  ASSIGN_OR_RETURN(load.precision, ParsePrecision(args.Get("dtype").value_or(default_dtype)));
  ASSIGN_OR_RETURN(int64_t threads, args.Int("threads", 0));
  if (threads < 0) return absl::InvalidArgumentError("--threads must be >= 0");
  load.threads = static_cast<int>(threads);
  load.progress = StderrProgress("loading weights");
  ASSIGN_OR_RETURN(auto ex, StartShardedLeader(load, par, kv_blocks));
  return std::unique_ptr<Executor>(std::move(ex));
}

// --device cpu (default) | cuda.
absl::StatusOr<bool> UseCuda(const Args& args) {
  const std::string device = args.Get("device").value_or("cpu");
  if (device == "cpu") return false;
  if (device != "cuda") return absl::InvalidArgumentError("--device must be cpu or cuda");
  if (args.Has("tp") && args.Get("tp") != "1") {
    return absl::UnimplementedError(
        "--tp with --device cuda: the CUDA backend runs one GPU per process; sharded runs are "
        "CPU-only in this build");
  }
#ifdef DSINFER_HAVE_CUDA
  if (args.Has("dtype") && *args.Get("dtype") != "bf16")
    return absl::InvalidArgumentError("--device cuda runs bf16 weights (--dtype bf16)");
  return true;
#else
  return absl::UnimplementedError("--device cuda: this dsinfer was built without CUDA");
#endif
}

#ifdef DSINFER_HAVE_CUDA
// kv_blocks 0: a fraction of the free GPU memory.
absl::StatusOr<std::unique_ptr<Executor>> LoadCuda(const Args& args, int64_t max_tokens,
                                                   int32_t kv_blocks, int64_t logit_rows) {
  ASSIGN_OR_RETURN(std::string dir, args.Required("model"));
  CudaExecutorOptions opts;
  opts.max_batched_tokens = std::max<int64_t>(max_tokens, 1);
  opts.num_kv_blocks = kv_blocks;
  opts.max_logit_rows = std::max<int64_t>(logit_rows, 1);
  opts.progress = StderrProgress("loading weights");
  return MakeCudaExecutor(dir, opts);
}
#endif

std::set<std::string> With(std::set<std::string> base, std::initializer_list<std::string> more) {
  base.insert(more.begin(), more.end());
  return base;
}

}  // namespace

absl::Status RunLogits(int argc, char** argv) {
  ASSIGN_OR_RETURN(Args args, Args::Parse(argc, argv, 2, With(kModelFlags, {"ids"}), {}));
  ASSIGN_OR_RETURN(std::vector<int32_t> ids, args.Ids("ids"));
  ASSIGN_OR_RETURN(bool cuda, UseCuda(args));
  const int64_t n = static_cast<int64_t>(ids.size());
  BlockPool pool(static_cast<int32_t>(BlocksForTokens(n)));
  BlockTable table;
  RETURN_IF_ERROR(table.Reserve(pool, n));
  SequenceInput in{.tokens = ids, .start_pos = 0, .block_table = table.blocks(),
                   .all_logits = true};
  std::vector<float> logits;
  int64_t V = 0;
  if (cuda) {
#ifdef DSINFER_HAVE_CUDA
    ASSIGN_OR_RETURN(auto ex, LoadCuda(args, n, pool.num_blocks(), std::min<int64_t>(n, 256)));
    RETURN_IF_ERROR(ex->Forward({&in, 1}, &logits));  // checks the context length too
    V = ex->config().vocab_size;
#endif
  } else {
    // Logits default to f32: they are what gets compared against references.
    ASSIGN_OR_RETURN(auto ex, LoadCpu(args, "f32", pool.num_blocks()));
    if (n > ex->config().max_position_embeddings) {
      return absl::InvalidArgumentError(absl::StrCat("--ids: ", n,
                                                     " tokens exceed the context length ",
                                                     ex->config().max_position_embeddings));
    }
    RETURN_IF_ERROR(ex->Forward({&in, 1}, &logits));
    V = ex->config().vocab_size;
  }
  // Stream the rows out: a real vocabulary makes this large.
  std::string out = "{\"logits\": [";
  for (int64_t r = 0; r < n; ++r) {
    nlohmann::json row(std::vector<float>(logits.begin() + r * V, logits.begin() + (r + 1) * V));
    absl::StrAppend(&out, r ? ", " : "", row.dump());
  }
  out += "]}\n";
  std::fwrite(out.data(), 1, out.size(), stdout);
  return absl::OkStatus();
}

absl::Status RunGenerate(int argc, char** argv) {
  ASSIGN_OR_RETURN(
      Args args,
      Args::Parse(argc, argv, 2,
                  With(kModelFlags, {"ids", "prompt", "system", "max-tokens", "temperature",
                                     "top-p", "top-k", "min-p", "seed", "repetition-penalty",
                                     "frequency-penalty", "presence-penalty", "stop-ids"}),
                  {"chat", "ignore-eos"}));
  ASSIGN_OR_RETURN(std::string dir, args.Required("model"));
  if (args.Has("ids") == args.Has("prompt"))
    return absl::InvalidArgumentError("exactly one of --ids or --prompt is required");
  if ((args.Has("chat") || args.Has("system")) && !args.Has("prompt"))
    return absl::InvalidArgumentError("--chat and --system go with --prompt");

  GenerationRequest req;
  ASSIGN_OR_RETURN(req.max_tokens, args.Int("max-tokens", 64));
  ASSIGN_OR_RETURN(double temperature, args.Float("temperature", 0.0));
  ASSIGN_OR_RETURN(double top_p, args.Float("top-p", 1.0));
  ASSIGN_OR_RETURN(int64_t top_k, args.Int("top-k", 0));
  ASSIGN_OR_RETURN(double min_p, args.Float("min-p", 0.0));
  ASSIGN_OR_RETURN(double rep, args.Float("repetition-penalty", 1.0));
  ASSIGN_OR_RETURN(double freq, args.Float("frequency-penalty", 0.0));
  ASSIGN_OR_RETURN(double pres, args.Float("presence-penalty", 0.0));
  req.sampling.temperature = static_cast<float>(temperature);
  req.sampling.top_p = static_cast<float>(top_p);
  req.sampling.top_k = static_cast<int32_t>(top_k);
  req.sampling.min_p = static_cast<float>(min_p);
  req.sampling.repetition_penalty = static_cast<float>(rep);
  req.sampling.frequency_penalty = static_cast<float>(freq);
  req.sampling.presence_penalty = static_cast<float>(pres);
  if (args.Has("seed")) {
    ASSIGN_OR_RETURN(int64_t seed, args.Int("seed", 0));
    req.sampling.seed = static_cast<uint64_t>(seed);
  }
  if (args.Has("stop-ids")) {
    ASSIGN_OR_RETURN(req.sampling.stop_token_ids, args.Ids("stop-ids"));
  }
  req.stop_at_eos = !args.Has("ignore-eos");
  RETURN_IF_ERROR(ValidateSamplingParams(req.sampling));
  if (req.max_tokens < 1) return absl::InvalidArgumentError("--max-tokens must be >= 1");

  // The tokenizer is optional: a model directory without one still runs on --ids.
  std::unique_ptr<Tokenizer> tok;
  const std::string tok_path = (std::filesystem::path(dir) / "tokenizer.json").string();
  if (std::filesystem::exists(tok_path)) {
    ASSIGN_OR_RETURN(tok, Tokenizer::FromFile(tok_path));
  }
  if (args.Has("ids")) {
    ASSIGN_OR_RETURN(req.prompt, args.Ids("ids"));
  } else {
    if (!tok) return absl::InvalidArgumentError(absl::StrCat("--prompt needs ", tok_path));
    const std::string prompt = *args.Get("prompt");
    if (args.Has("chat")) {
      std::vector<ChatMessage> msgs;
      if (auto sys = args.Get("system")) msgs.push_back({"system", *sys});
      msgs.push_back({"user", prompt});
      ASSIGN_OR_RETURN(req.prompt, ApplyChatTemplate(*tok, msgs, /*add_generation_prompt=*/true));
    } else {
      if (args.Has("system")) return absl::InvalidArgumentError("--system needs --chat");
      if (auto bos = tok->bos_id()) req.prompt.push_back(*bos);
      std::vector<int32_t> ids = tok->Encode(prompt);
      req.prompt.insert(req.prompt.end(), ids.begin(), ids.end());
    }
  }
  ASSIGN_OR_RETURN(bool cuda, UseCuda(args));
  std::vector<GenerationResult> results;
  GenerationOptions options;
  if (tok) options.sample_vocab = tok->vocab_size();  // every generated id detokenizes
  if (cuda) {
#ifdef DSINFER_HAVE_CUDA
    ASSIGN_OR_RETURN(auto ex, LoadCuda(args, 2048, 0, 1));
    ASSIGN_OR_RETURN(results, GenerateOnExecutor(*ex, {&req, 1}, options));
#endif
  } else {
    const int32_t blocks = static_cast<int32_t>(
        BlocksForTokens(static_cast<int64_t>(req.prompt.size()) + req.max_tokens));
    ASSIGN_OR_RETURN(auto ex, LoadCpu(args, "bf16", blocks));
    ASSIGN_OR_RETURN(results, GenerateOnExecutor(*ex, {&req, 1}, options));
  }
  nlohmann::json out = {{"ids", results[0].tokens}, {"finish_reason", results[0].finish_reason}};
  if (tok) {
    ASSIGN_OR_RETURN(std::string text, tok->Decode(results[0].tokens, /*skip_special=*/true));
    out["text"] = text;
  }
  std::cout << out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  return absl::OkStatus();
}

absl::Status RunBench(int argc, char** argv) {
  ASSIGN_OR_RETURN(Args args, Args::Parse(argc, argv, 2,
                                          With(kModelFlags, {"batch", "prompt-len", "gen-len"}), {}));
  ASSIGN_OR_RETURN(int64_t batch, args.Int("batch", 1));
  ASSIGN_OR_RETURN(int64_t prompt_len, args.Int("prompt-len", 128));
  ASSIGN_OR_RETURN(int64_t gen_len, args.Int("gen-len", 32));
  if (batch < 1 || prompt_len < 1 || gen_len < 1)
    return absl::InvalidArgumentError("--batch, --prompt-len and --gen-len must be >= 1");
  ASSIGN_OR_RETURN(bool cuda, UseCuda(args));
  std::unique_ptr<Executor> ex;
  if (cuda) {
#ifdef DSINFER_HAVE_CUDA
    ASSIGN_OR_RETURN(ex, LoadCuda(args, std::max<int64_t>(2048, batch), 0, batch));
#endif
  } else {
    const int64_t blocks = batch * BlocksForTokens(prompt_len + gen_len) + 1;
    ASSIGN_OR_RETURN(ex, LoadCpu(args, "bf16", static_cast<int32_t>(blocks)));
  }
  const ModelConfig& config = ex->config();
  auto generate = [&](absl::Span<const GenerationRequest> r, const GenerationOptions& o,
                      GenerationStats* st) { return GenerateOnExecutor(*ex, r, o, st); };
  auto* cpu = dynamic_cast<CpuExecutor*>(ex.get());
  const int64_t V = config.vocab_size;
  std::vector<GenerationRequest> reqs(batch);
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t i = 0; i < prompt_len; ++i)
      reqs[b].prompt.push_back(static_cast<int32_t>((1009 * (b + 1) + 7919 * i) % (V - 2) + 2));
    reqs[b].max_tokens = gen_len;
    reqs[b].stop_at_eos = false;
  }
  // Warm-up (first-touch of weights, thread start-up), then the measured run.
  {
    GenerationRequest warm = reqs[0];
    warm.prompt.resize(std::min<size_t>(warm.prompt.size(), 8));
    warm.max_tokens = 2;
    RETURN_IF_ERROR(generate({&warm, 1}, {}, nullptr).status());
  }
  GenerationStats st;
  auto* sharded = dynamic_cast<ShardedExecutor*>(ex.get());
  GenerationOptions gen_opts;
  // Communication is reported per decode step.
  if (sharded) gen_opts.on_decode_start = [sharded] { sharded->ResetCommStats(); };
  RETURN_IF_ERROR(generate(reqs, gen_opts, &st).status());
  nlohmann::json out = {
      {"batch", batch},
      {"prompt_len", prompt_len},
      {"gen_len", gen_len},
      {"device", cuda ? "cuda" : "cpu"},
      {"dtype", ex->dtype_name()},
      {"prefill_tok_s", st.prefill_tokens / st.prefill_seconds},
      {"decode_tok_s", st.decode_tokens / st.decode_seconds},
      {"decode_step_ms", 1e3 * st.decode_seconds / std::max<int64_t>(1, st.decode_steps)},
      {"weight_bytes", cpu ? cpu->model().weight_bytes() : 0}};
  if (sharded) {
    // Rank 0's share, per decode step: payload bytes it contributed and seconds it spent.
    const CommStats cs = sharded->comm_stats();
    const double steps = std::max<int64_t>(1, st.decode_steps);
    out["tp"] = sharded->layout().tp;
    out["ep"] = sharded->layout().ep;
    nlohmann::json per_step;
    for (const auto& [name, op] : {std::pair{"all_reduce", cs.all_reduce},
                                   std::pair{"all_gather", cs.all_gather},
                                   std::pair{"all_to_all", cs.all_to_all},
                                   std::pair{"broadcast", cs.broadcast}}) {
      per_step[name] = {{"calls", op.calls / steps},
                        {"bytes", op.bytes / steps},
                        {"ms", 1e3 * op.seconds / steps}};
    }
    out["comm_per_decode_step"] = per_step;
  }
  std::cout << out.dump() << "\n";
  return absl::OkStatus();
}

}  // namespace dsinfer::cli
