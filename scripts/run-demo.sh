#!/usr/bin/env bash
# The main job on a fresh machine: install, build, create the bundled tiny DeepSeek-V3-style
# model (deterministic random FP8 weights, the real tokenizer), and generate from it on the CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
model=models/generated/tiny-v3
[[ -f $model/config.json ]] || build/tools/dsinfer-make-tiny-model --out "$model"
build/src/cli/dsinfer generate --model "$model" --chat \
  --system "You are the 12345 citizen hotline assistant." \
  --prompt "请问如何办理居住证？" --max-tokens 24 --temperature 0.7 --seed 7
