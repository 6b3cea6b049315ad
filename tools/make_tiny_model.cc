// dsinfer-make-tiny-model --out DIR [--tokenizer-dir DIR]
// Writes the bundled tiny DeepSeek-V3-architecture model (random weights, real tokenizer) so that
// `dsinfer generate --model DIR` runs offline. Output is byte-identical on every machine.
#include <cstdio>
#include <cstring>
#include <string>

#include "src/weights/tiny_model.h"

namespace {

int Usage(const char* argv0) {
  std::fprintf(stderr,
               "usage: %s --out DIR [--tokenizer-dir DIR]\n"
               "  --out DIR            where to write the model (created if missing)\n"
               "  --tokenizer-dir DIR  holds tokenizer.json and tokenizer_config.json\n"
               "                       (default %s)\n",
               argv0, DSINFER_SOURCE_DIR "/models/tokenizers/deepseek-v3");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string out_dir;
  std::string tokenizer_dir = DSINFER_SOURCE_DIR "/models/tokenizers/deepseek-v3";
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&](std::string* dst) {
      if (i + 1 >= argc) return false;
      *dst = argv[++i];
      return true;
    };
    if (arg == "--out") {
      if (!value(&out_dir)) return Usage(argv[0]);
    } else if (arg == "--tokenizer-dir") {
      if (!value(&tokenizer_dir)) return Usage(argv[0]);
    } else if (arg.rfind("--out=", 0) == 0) {
      out_dir = arg.substr(6);
    } else if (arg.rfind("--tokenizer-dir=", 0) == 0) {
      tokenizer_dir = arg.substr(16);
    } else if (arg == "--help" || arg == "-h") {
      Usage(argv[0]);
      return 0;
    } else {
      std::fprintf(stderr, "unknown argument: %s\n", argv[i]);
      return Usage(argv[0]);
    }
  }
  if (out_dir.empty()) return Usage(argv[0]);
  absl::Status st = dsinfer::WriteTinyModel(out_dir, tokenizer_dir);
  if (!st.ok()) {
    std::fprintf(stderr, "dsinfer-make-tiny-model: %s\n", std::string(st.message()).c_str());
    return 1;
  }
  std::fprintf(stderr, "wrote tiny DeepSeek-V3 model to %s\n", out_dir.c_str());
  return 0;
}
