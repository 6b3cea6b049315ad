#!/usr/bin/env python3
"""Writes a random-weight checkpoint with DeepSeek-R1-Distill-Qwen-1.5B's config (model_type qwen2:
hidden 1536, 28 layers, 12 heads, 2 KV heads, intermediate 8960, vocab 151936, q/k/v biases, untied
lm_head) for CPU speed benchmarks against llama.cpp (issue 15), with numpy only (no torch): bf16
safetensors shards plus the index. Weights N(0, 0.02) and biases N(0, 0.02) from a generator seeded
per tensor name (same seed, same file), norms ones.

The model dir also gets the small Qwen2-style byte-level BPE tokenizer of
tests/fixtures/tokenizer/distill/qwen2 (tokenizer.json + tokenizer_config.json): `dsinfer bench`
feeds token ids and needs none, but llama.cpp's convert_hf_to_gguf.py does; it pads the vocab to the
config's 151936 with [PAD<i>] entries, so the GGUF's embedding and lm_head keep the full size.

Usage: tools/make_distill_bench_model.py --out DIR [--layers 28] [--seed 0]
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_cpu_bench_model import write_checkpoint  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
TOKENIZER = REPO / "tests/fixtures/tokenizer/distill/qwen2"


def config(layers: int) -> dict:
    # DeepSeek-R1-Distill-Qwen-1.5B's config.json, num_hidden_layers aside.
    return {
        "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2",
        "attention_dropout": 0.0, "bos_token_id": 151643, "eos_token_id": 151643,
        "hidden_act": "silu", "hidden_size": 1536, "initializer_range": 0.02,
        "intermediate_size": 8960, "max_position_embeddings": 131072, "max_window_layers": 21,
        "num_attention_heads": 12, "num_hidden_layers": layers, "num_key_value_heads": 2,
        "rms_norm_eps": 1e-6, "rope_theta": 10000, "sliding_window": 4096,
        "tie_word_embeddings": False, "torch_dtype": "bfloat16", "use_cache": True,
        "use_sliding_window": False, "vocab_size": 151936,
    }


def specs(c: dict):
    """(name, shape, is_norm) in checkpoint order."""
    H, nh, nkv = c["hidden_size"], c["num_attention_heads"], c["num_key_value_heads"]
    hd = H // nh
    I = c["intermediate_size"]
    yield "model.embed_tokens.weight", (c["vocab_size"], H), False
    for i in range(c["num_hidden_layers"]):
        p = f"model.layers.{i}."
        yield p + "input_layernorm.weight", (H,), True
        yield p + "self_attn.q_proj.weight", (nh * hd, H), False
        yield p + "self_attn.q_proj.bias", (nh * hd,), False
        yield p + "self_attn.k_proj.weight", (nkv * hd, H), False
        yield p + "self_attn.k_proj.bias", (nkv * hd,), False
        yield p + "self_attn.v_proj.weight", (nkv * hd, H), False
        yield p + "self_attn.v_proj.bias", (nkv * hd,), False
        yield p + "self_attn.o_proj.weight", (H, nh * hd), False
        yield p + "post_attention_layernorm.weight", (H,), True
        yield p + "mlp.gate_proj.weight", (I, H), False
        yield p + "mlp.up_proj.weight", (I, H), False
        yield p + "mlp.down_proj.weight", (H, I), False
    yield "model.norm.weight", (H,), True
    yield "lm_head.weight", (c["vocab_size"], H), False


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--layers", type=int, default=28)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    c = config(a.layers)
    shards = write_checkpoint(out, c, specs(c), a.seed)
    for f in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(TOKENIZER / f, out / f)
    print(json.dumps({"out": str(out), "shards": shards, "layers": a.layers}))


if __name__ == "__main__":
    main()
