// logits / generate / bench subcommands: run a model directory through the runner factory on
// the CPU backend (default) or, with --device cuda in a CUDA build, on the GPU; --tp/--ep shard
// it over local rank processes on either.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "kernels/cpu/blas_core.h"
#include "kernels/cpu/isa.h"
#include "nlohmann/json.hpp"
#include "src/chat/chat_format.h"
#include "src/chat/prompt_renderer.h"
#include "src/cli/args.h"
#include "src/cli/commands.h"
#include "src/core/status_macros.h"
#include "src/distributed/sharded_runner.h"
#include "src/engine/batch_generator.h"
#include "src/kv_cache/block_pool.h"
#include "src/runner/runner_factory.h"
#include "src/tokenizer/tokenizer.h"
#include "src/weights/load_progress.h"

namespace dsinfer::cli {
namespace {

const std::set<std::string> kModelFlags = {"model", "dtype", "threads", "device", "tp", "ep",
                                           "timeout", "mtp-draft-tokens"};
const std::set<std::string> kModelBools = {"dequantize-fp8", "mtp"};

// --device cpu (default) | cuda, --dtype (default: f32 or bf16 by command on the CPU, bf16 on
// CUDA), --tp N [--ep M] [--timeout S] (N local rank processes), --dequantize-fp8, --mtp (load
// the MTP layer: generate / bench draft with it, logits also prints its logits),
// --mtp-draft-tokens K (with --mtp: K drafts per step, the MTP layer chained; default 1).
absl::StatusOr<RunnerOptions> RunnerFromArgs(const Args& args, const char* cpu_dtype) {
  RunnerOptions o;
  ASSIGN_OR_RETURN(o.model_dir, args.Required("model"));
  o.backend = args.Get("device").value_or("cpu");
  if (o.backend != "cpu" && o.backend != "cuda")
    return absl::InvalidArgumentError("--device must be cpu or cuda");
  RETURN_IF_ERROR(CheckBackend(o.backend));
  const std::string dtype = args.Get("dtype").value_or(o.backend == "cuda" ? "bf16" : cpu_dtype);
  ASSIGN_OR_RETURN(o.precision, ParsePrecision(dtype));
  if (o.backend == "cuda" && o.precision != Precision::kBF16)
    return absl::InvalidArgumentError("--device cuda runs bf16 (--dtype bf16)");
  ASSIGN_OR_RETURN(int64_t threads, args.Int("threads", 0));
  if (threads < 0) return absl::InvalidArgumentError("--threads must be >= 0");
  o.threads = static_cast<int>(threads);
  o.keep_fp8 = !args.Has("dequantize-fp8");
  o.mtp = args.Has("mtp");
  ASSIGN_OR_RETURN(int64_t drafts, args.Int("mtp-draft-tokens", 1));
  if (drafts < 1 || drafts > kMaxMtpDraftTokens) {
    return absl::InvalidArgumentError(
        absl::StrCat("--mtp-draft-tokens must be in [1, ", kMaxMtpDraftTokens, "]"));
  }
  if (args.Has("mtp-draft-tokens") && !o.mtp)
    return absl::InvalidArgumentError("--mtp-draft-tokens needs --mtp");
  o.mtp_draft_tokens = static_cast<int32_t>(drafts);
  ASSIGN_OR_RETURN(int64_t tp, args.Int("tp", 1));
  ASSIGN_OR_RETURN(int64_t ep, args.Int("ep", 1));
  ASSIGN_OR_RETURN(o.parallel.timeout_s, args.Float("timeout", 60));
  if (tp < 1 || tp > 1024) return absl::InvalidArgumentError("--tp must be in [1, 1024]");
  if (ep < 1 || tp % ep != 0) return absl::InvalidArgumentError("--ep must divide --tp");
  if (tp == 1 && args.Has("ep") && ep != 1) return absl::InvalidArgumentError("--ep needs --tp");
  if (o.parallel.timeout_s <= 0) return absl::InvalidArgumentError("--timeout must be > 0");
  o.parallel.tp = static_cast<int>(tp);
  o.parallel.ep = static_cast<int>(ep);
  o.progress = StderrProgress("loading weights");
  return o;
}

std::set<std::string> With(std::set<std::string> base, std::initializer_list<std::string> more) {
  base.insert(more.begin(), more.end());
  return base;
}

}  // namespace

absl::Status RunLogits(int argc, char** argv) {
  ASSIGN_OR_RETURN(Args args,
                   Args::Parse(argc, argv, 2, With(kModelFlags, {"ids"}), kModelBools));
  ASSIGN_OR_RETURN(std::vector<int32_t> ids, args.Ids("ids"));
  // Logits default to f32 on the CPU: they are what gets compared against references.
  ASSIGN_OR_RETURN(RunnerOptions o, RunnerFromArgs(args, "f32"));
  ASSIGN_OR_RETURN(ModelConfig config, LoadModelConfig(o.model_dir));
  const int64_t n = static_cast<int64_t>(ids.size());
  if (n > config.max_position_embeddings) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--ids: ", n, " tokens exceed the context length ", config.max_position_embeddings));
  }
  o.num_kv_blocks = static_cast<int32_t>(std::max<int64_t>(1, BlocksForTokens(n)));
  o.cuda.max_batched_tokens = std::max<int64_t>(n, 1);
  o.cuda.max_logit_rows = std::max<int64_t>(n, 1);
  ASSIGN_OR_RETURN(auto runner, MakeModelRunner(o));
  std::vector<int32_t> table(o.num_kv_blocks);
  for (int32_t b = 0; b < o.num_kv_blocks; ++b) table[b] = b;
  RunnerSequence in{.tokens = ids, .start_pos = 0, .block_table = table, .all_logits = true};
  StepResult result;
  RETURN_IF_ERROR(runner->Step({&in, 1}, &result));
  const int64_t V = runner->config().vocab_size;
  // Stream the rows out: a real vocabulary makes this large.
  std::string out = "{\"logits\": [";
  for (int64_t r = 0; r < n; ++r) {
    nlohmann::json row(std::vector<float>(result.logits.begin() + r * V,
                                          result.logits.begin() + (r + 1) * V));
    absl::StrAppend(&out, r ? ", " : "", row.dump());
  }
  out += "]";
  if (o.mtp) {
    // Row r: the MTP layer's logits for the token after ids[r + 1] (rows whose next id is known).
    out += ", \"mtp_logits\": [";
    for (int64_t r = 0; r + 1 < n; ++r) {
      nlohmann::json row(std::vector<float>(result.mtp_logits.begin() + r * V,
                                            result.mtp_logits.begin() + (r + 1) * V));
      absl::StrAppend(&out, r ? ", " : "", row.dump());
    }
    out += "]";
  }
  out += "}\n";
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
                  With(kModelBools, {"chat", "ignore-eos"})));
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
  const std::optional<std::string> tok_path = Tokenizer::FindInDirectory(dir);
  if (tok_path.has_value()) {
    ASSIGN_OR_RETURN(tok, Tokenizer::FromFile(*tok_path));
  }
  if (args.Has("ids")) {
    ASSIGN_OR_RETURN(req.prompt, args.Ids("ids"));
  } else {
    if (!tok) {
      return absl::InvalidArgumentError(
          absl::StrCat("--prompt needs a tokenizer.json or tiktoken.model in ", dir));
    }
    const std::string prompt = *args.Get("prompt");
    if (args.Has("chat")) {
      // The model directory's chat format, decided as the server decides it (src/chat).
      ASSIGN_OR_RETURN(chat::ChatFormat format, chat::ChatFormatOfModel(dir, tok.get()));
      std::vector<chat::Message> msgs;
      if (auto sys = args.Get("system")) msgs.push_back({"system", *sys, {}, ""});
      msgs.push_back({"user", prompt, {}, ""});
      ASSIGN_OR_RETURN(chat::ChatPrompt rendered, chat::RenderChat(*tok, format, msgs, {}, {}));
      req.prompt = std::move(rendered.ids);
    } else {
      if (args.Has("system")) return absl::InvalidArgumentError("--system needs --chat");
      if (auto bos = tok->prompt_bos_id()) req.prompt.push_back(*bos);
      std::vector<int32_t> ids = tok->Encode(prompt);
      req.prompt.insert(req.prompt.end(), ids.begin(), ids.end());
    }
  }
  ASSIGN_OR_RETURN(RunnerOptions o, RunnerFromArgs(args, "bf16"));
  o.num_kv_blocks = static_cast<int32_t>(
      BlocksForTokens(static_cast<int64_t>(req.prompt.size()) + req.max_tokens));
  ASSIGN_OR_RETURN(auto runner, MakeModelRunner(o));
  GenerationOptions options;
  if (tok) options.sample_vocab = tok->vocab_size();  // every generated id detokenizes
  GenerationStats st;
  ASSIGN_OR_RETURN(std::vector<GenerationResult> results,
                   GenerateOnRunner(*runner, {&req, 1}, options, &st));
  nlohmann::json out = {{"ids", results[0].tokens}, {"finish_reason", results[0].finish_reason}};
  if (o.mtp) out["mtp"] = {{"draft_tokens", st.draft_tokens}, {"accepted_tokens", st.accepted_tokens}};
  if (tok) {
    ASSIGN_OR_RETURN(std::string text, tok->Decode(results[0].tokens, /*skip_special=*/true));
    out["text"] = text;
  }
  std::cout << out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  return absl::OkStatus();
}

absl::Status RunBench(int argc, char** argv) {
  ASSIGN_OR_RETURN(Args args,
                   Args::Parse(argc, argv, 2, With(kModelFlags, {"batch", "prompt-len", "gen-len"}),
                               kModelBools));
  ASSIGN_OR_RETURN(int64_t batch, args.Int("batch", 1));
  ASSIGN_OR_RETURN(int64_t prompt_len, args.Int("prompt-len", 128));
  ASSIGN_OR_RETURN(int64_t gen_len, args.Int("gen-len", 32));
  if (batch < 1 || prompt_len < 1 || gen_len < 1)
    return absl::InvalidArgumentError("--batch, --prompt-len and --gen-len must be >= 1");
  ASSIGN_OR_RETURN(RunnerOptions o, RunnerFromArgs(args, "bf16"));
  const bool cuda = o.backend == "cuda";
  if (cuda) {
    // KV from the free GPU memory; workspaces for a step of up to max(2048, batch) tokens.
    o.kv_sizer = [](const KvCacheSpec& spec, int64_t available) -> absl::StatusOr<int32_t> {
      const int64_t blocks = static_cast<int64_t>(0.9 * available) / spec.bytes_per_block();
      if (blocks < 1) return absl::ResourceExhaustedError("no GPU memory left for the KV cache");
      return static_cast<int32_t>(std::min<int64_t>(blocks, INT32_MAX / 64));
    };
    o.cuda.max_batched_tokens = std::max<int64_t>(2048, batch);
    o.cuda.max_seqs = static_cast<int32_t>(std::max<int64_t>(256, batch));
    o.cuda.max_logit_rows = std::max<int64_t>(256, batch);
  } else {
    o.num_kv_blocks = static_cast<int32_t>(batch * BlocksForTokens(prompt_len + gen_len) + 1);
  }
  ASSIGN_OR_RETURN(auto runner, MakeModelRunner(o));
  const ModelConfig& config = runner->config();
  const int64_t V = config.vocab_size;
  std::vector<GenerationRequest> reqs(batch);
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t i = 0; i < prompt_len; ++i)
      reqs[b].prompt.push_back(static_cast<int32_t>((1009 * (b + 1) + 7919 * i) % (V - 2) + 2));
    reqs[b].max_tokens = gen_len;
    reqs[b].stop_at_eos = false;
  }
  // Warm-up (first-touch of weights, thread start-up, kernels loaded), then the measured run.
  {
    GenerationRequest warm = reqs[0];
    warm.prompt.resize(std::min<size_t>(warm.prompt.size(), 8));
    warm.max_tokens = 3;
    RETURN_IF_ERROR(GenerateOnRunner(*runner, {&warm, 1}).status());
  }
  GenerationStats st;
  auto* sharded = dynamic_cast<ShardedRunner*>(runner.get());
  GenerationOptions gen_opts{.batch_prefill = true};
  // Communication is reported per decode step.
  if (sharded) gen_opts.on_decode_start = [sharded] { sharded->ResetCommStats(); };
  RETURN_IF_ERROR(GenerateOnRunner(*runner, reqs, gen_opts, &st).status());
  nlohmann::json out = {
      {"batch", batch},
      {"prompt_len", prompt_len},
      {"gen_len", gen_len},
      {"device", cuda ? "cuda" : "cpu"},
      {"dtype", runner->dtype_name()},
      {"prefill_tok_s", st.prefill_tokens / st.prefill_seconds},
      {"decode_tok_s", st.decode_tokens / st.decode_seconds},
      {"decode_step_ms", 1e3 * st.decode_seconds / std::max<int64_t>(1, st.decode_steps)},
      {"weight_bytes", runner->weight_bytes()},
      {"kv_bytes_per_token", runner->kv_cache_spec().bytes_per_token()}};
  if (!cuda) out["blas_core"] = cpu::EnsureBlasCore().active;  // OpenBLAS's f32 kernels
  if (!cuda) out["gemm_isa"] = cpu::CpuIsaName(cpu::ActiveCpuIsa());  // bf16 / FP8 GEMMs
  if (o.mtp) {
    nlohmann::json at = nlohmann::json::array();  // acceptance per draft position
    for (int32_t j = 0; j < o.mtp_draft_tokens; ++j)
      at.push_back(st.accepted_at[j] / std::max(1.0, double(st.drafted_at[j])));
    out["mtp"] = {{"draft_tokens_per_step", o.mtp_draft_tokens},
                  {"draft_tokens", st.draft_tokens},
                  {"accepted_tokens", st.accepted_tokens},
                  {"acceptance", st.accepted_tokens / std::max(1.0, double(st.draft_tokens))},
                  {"acceptance_by_position", at},
                  {"decode_tokens_per_step",
                   st.decode_tokens / std::max(1.0, double(st.decode_steps))}};
  }
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
