#!/usr/bin/env bash
# converts the random distill model to GGUF bf16, with the same unknown-pre-tokenizer fallback as
# tools/build_llama_cpp.sh ("qwen2" here)
set -euo pipefail
PEERS="${PEERS:-/work/peers}"; MODEL="${MODEL:-$PEERS/distill-qwen-1.5b}"
LLAMA="$PEERS/llama.cpp" python3 - "$MODEL" --outtype bf16 --outfile "${GGUF:-$MODEL-bf16.gguf}" <<'PY'
import os, runpy, sys
llama = os.environ["LLAMA"]
sys.path[:0] = [llama, os.path.join(llama, "gguf-py")]
import conversion.base as base
orig = base.TextModel.get_vocab_base_pre
def get_vocab_base_pre(self, tokenizer):
    try:
        return orig(self, tokenizer)
    except NotImplementedError:
        print("convert wrapper: unknown tokenizer hash, using pre-tokenizer 'qwen2'", file=sys.stderr)
        return "qwen2"
base.TextModel.get_vocab_base_pre = get_vocab_base_pre
script = os.path.join(llama, "convert_hf_to_gguf.py")
sys.argv = [script] + sys.argv[1:]
runpy.run_path(script, run_name="__main__")
PY
