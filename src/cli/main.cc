// dsinfer: command-line entry point.
#include <cstdio>
#include <cstring>
#include <string>

#include "src/cli/commands.h"

namespace {

constexpr char kUsage[] = R"(usage: dsinfer COMMAND [flags]

commands (JSON on stdout, errors on stderr):
  logits      --model DIR --ids 1,2,3 [--dtype f32|bf16] [--threads N]
  generate    --model DIR (--ids 1,2,3 | --prompt TEXT [--chat] [--system TEXT])
              [--max-tokens N] [--temperature T] [--top-p P] [--top-k K] [--min-p P]
              [--repetition-penalty R] [--frequency-penalty F] [--presence-penalty P]
              [--seed S] [--stop-ids 1,2] [--ignore-eos] [--dtype f32|bf16] [--threads N]
  tokenize    --tokenizer FILE (--text TEXT | --text-file FILE)
  detokenize  --tokenizer FILE --ids 1,2,3 [--skip-special]
  bench       --model DIR [--dtype bf16] [--batch B] [--prompt-len P] [--gen-len G] [--threads N]
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
