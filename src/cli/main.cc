// dsinfer: command-line entry point.
#include <cstdio>
#include <cstring>
#include <string>

#include "src/cli/commands.h"
#ifdef DSINFER_WITH_SERVER
#include "src/cli/commands_server.h"
#endif

namespace {

constexpr char kUsage[] = R"(usage: dsinfer COMMAND [flags]

commands (JSON on stdout, errors on stderr):
  logits      --model DIR --ids 1,2,3 [--dtype f32|bf16] [--threads N] [--device cpu|cuda]
              [--tp N [--ep M] [--timeout S]]   (logits, generate, bench: N local ranks)
  generate    --model DIR (--ids 1,2,3 | --prompt TEXT [--chat] [--system TEXT])
              [--max-tokens N] [--temperature T] [--top-p P] [--top-k K] [--min-p P]
              [--repetition-penalty R] [--frequency-penalty F] [--presence-penalty P]
              [--seed S] [--stop-ids 1,2] [--ignore-eos] [--dtype f32|bf16] [--threads N]
              [--device cpu|cuda]
  tokenize    --tokenizer FILE (--text TEXT | --text-file FILE)
  detokenize  --tokenizer FILE --ids 1,2,3 [--skip-special]
  plan        --input FILE [--deployment NAME] [--replicas N | --target] [--scale X] [--table]
              (capacity planner: simulates the scheduler on a cost model; src/capacity/)
  bench       --model DIR [--dtype bf16] [--batch B] [--prompt-len P] [--gen-len G] [--threads N]
              [--device cpu|cuda]
  worker      --model DIR --tp N [--ep M] --rank R --rendezvous file:DIR|grpc:HOST:PORT
              [--dtype f32|bf16] [--threads N] [--bind ADDR] [--timeout S]
              (one rank of a sharded model; the leader starts its node's ranks like this)
  worker      --config FILE --node-rank N --leader HOST:PORT [--bind ADDR]
              (every rank of node N of a multi-node layout; what worker pods run)
  serve       --config FILE [--model DIR] [--grpc-listen ADDR] [--http-listen ADDR]
              [--openai-listen ADDR] [--threads N]
              (JSON log lines on stderr; SIGTERM/SIGINT drains and exits 0)
  client      --address HOST:PORT [--api-key K | env DSINFER_API_KEY]
              [--tls | --tls-ca FILE] [--tls-cert FILE --tls-key FILE] [--tls-server-name N]
              (--prompt TEXT [--chat] [--system TEXT] | --ids 1,2,3) [--max-tokens N]
              [--temperature T] [--top-p P] [--top-k K] [--seed S] [--stop TEXT]
              [--stop-ids 1,2] [--ignore-eos] [--priority emergency|interactive|batch]
              [--client-request-id ID] [--timeout SECONDS]
              (text on stdout as it streams; a JSON line with finish_reason and usage on stderr)
  client      --address HOST:PORT --health [--service NAME]
)";

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h") ||
      !std::strcmp(argv[1], "help")) {
    std::fputs(kUsage, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  const std::string cmd = argv[1];
  absl::Status st;
  if (cmd == "logits") st = dsinfer::cli::RunLogits(argc, argv);
  else if (cmd == "generate") st = dsinfer::cli::RunGenerate(argc, argv);
  else if (cmd == "bench") st = dsinfer::cli::RunBench(argc, argv);
  else if (cmd == "tokenize") st = dsinfer::cli::RunTokenize(argc, argv);
  else if (cmd == "detokenize") st = dsinfer::cli::RunDetokenize(argc, argv);
  else if (cmd == "plan") st = dsinfer::cli::RunPlan(argc, argv);
  else if (cmd == "worker") st = dsinfer::cli::RunWorker(argc, argv);
#ifdef DSINFER_WITH_SERVER
  else if (cmd == "serve") st = dsinfer::cli::RunServe(argc, argv);
  else if (cmd == "client") st = dsinfer::cli::RunClient(argc, argv);
#endif
  else {
    std::fprintf(stderr, "dsinfer: unknown command \"%s\"\n%s", cmd.c_str(), kUsage);
    return 2;
  }
  if (!st.ok()) {
    std::fprintf(stderr, "dsinfer %s: %s\n", cmd.c_str(), std::string(st.message()).c_str());
    return st.code() == absl::StatusCode::kInvalidArgument ? 2 : 1;
  }
  return 0;
}
