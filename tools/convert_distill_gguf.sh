#!/usr/bin/env bash
# converts the random distill model to GGUF bf16, with the same unknown-pre-tokenizer fallback as
# tools/build_llama_cpp.sh (tools/convert_gguf_wrapper.py, "qwen2" here)
set -euo pipefail
PEERS="${PEERS:-/work/peers}"; MODEL="${MODEL:-$PEERS/distill-qwen-1.5b}"
LLAMA="$PEERS/llama.cpp" python3 "$(dirname "${BASH_SOURCE[0]}")/convert_gguf_wrapper.py" qwen2 "$MODEL" --outtype bf16 --outfile "${GGUF:-$MODEL-bf16.gguf}"
