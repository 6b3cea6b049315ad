#!/usr/bin/env python3
"""Runs llama.cpp's convert_hf_to_gguf.py with a fallback pre-tokenizer for the random bench
checkpoints, whose tokenizers have no hash llama.cpp knows: get_vocab_base_pre returns PRE instead
of raising; weights and hparams are untouched.

    LLAMA=/path/to/llama.cpp python3 tools/convert_gguf_wrapper.py PRE MODEL_DIR --outtype bf16 --outfile OUT
"""
import os
import runpy
import sys

llama = os.environ["LLAMA"]
pre = sys.argv.pop(1)
sys.path[:0] = [llama, os.path.join(llama, "gguf-py")]
import conversion.base as base  # noqa: E402

orig = base.TextModel.get_vocab_base_pre


def get_vocab_base_pre(self, tokenizer):
    try:
        return orig(self, tokenizer)
    except NotImplementedError:
        print(f"convert wrapper: unknown tokenizer hash, using pre-tokenizer '{pre}'", file=sys.stderr)
        return pre


base.TextModel.get_vocab_base_pre = get_vocab_base_pre
script = os.path.join(llama, "convert_hf_to_gguf.py")
sys.argv = [script] + sys.argv[1:]
runpy.run_path(script, run_name="__main__")
