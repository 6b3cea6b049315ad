#!/usr/bin/env python3
"""Write a random-weight DeepSeek-V2-Lite-dimension model cut to 4 layers, for CPU speed benchmarks.

Same config keys, tensor names, shapes and dtype (bf16) as the real deepseek-ai/DeepSeek-V2-Lite
checkpoint (per-expert tensors, config with `rope_scaling`), only num_hidden_layers=4 (layer 0
dense, layers 1-3 MoE). Weights are N(0, std) from a fixed seed; every tensor has its own
generator seeded from (seed, tensor name), so the output does not depend on write order.
Linear weights std 0.02 (router gate included: softmax routing spreads over the 64 experts),
embeddings std 0.02, all RMSNorm weights 1.

Tensors are generated one at a time and flushed to a shard file once a shard reaches
--shard-mb, so peak RAM is about one shard plus one tensor in float32 (~2 GB).

A tokenizer (tokenizer.json + tokenizer_config.json) is written too, because converters such as
llama.cpp's convert_hf_to_gguf.py need one: it is the DeepSeek-V3 byte-level BPE tokenizer from
models/tokenizers/deepseek-v3 cut to the ids below 100000, plus BOS <|begin▁of▁sentence|> =
100000 and EOS <|end▁of▁sentence|> = 100001 as in V2; ids 0..2 (V3 specials) and
100002..102399 are unused. It is only there so that tools load the model: benchmarks feed
token ids directly.

Usage: tools/make_bench_model.py [--out DIR] [--layers 4] [--seed 0] [--shard-mb 1024]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
import zlib
from pathlib import Path

import torch
from safetensors.torch import save_file

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / ".peers" / "v2lite-4l"
V3_TOKENIZER = REPO / "models" / "tokenizers" / "deepseek-v3"

BOS, EOS = 100000, 100001
BOS_TEXT, EOS_TEXT = "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>"


def make_config(n_layers: int) -> dict:
    # DeepSeek-V2-Lite config.json, with num_hidden_layers cut (no auto_map: native HF class).
    return {
        "architectures": ["DeepseekV2ForCausalLM"],
        "attention_bias": False,
        "attention_dropout": 0.0,
        "aux_loss_alpha": 0.001,
        "bos_token_id": BOS,
        "eos_token_id": EOS,
        "first_k_dense_replace": 1,
        "hidden_act": "silu",
        "hidden_size": 2048,
        "initializer_range": 0.02,
        "intermediate_size": 10944,
        "kv_lora_rank": 512,
        "max_position_embeddings": 163840,
        "model_type": "deepseek_v2",
        "moe_intermediate_size": 1408,
        "moe_layer_freq": 1,
        "n_group": 1,
        "n_routed_experts": 64,
        "n_shared_experts": 2,
        "norm_topk_prob": False,
        "num_attention_heads": 16,
        "num_experts_per_tok": 6,
        "num_hidden_layers": n_layers,
        "num_key_value_heads": 16,
        "pretraining_tp": 1,
        "q_lora_rank": None,
        "qk_nope_head_dim": 128,
        "qk_rope_head_dim": 64,
        "rms_norm_eps": 1e-06,
        "rope_scaling": {
            "beta_fast": 32,
            "beta_slow": 1,
            "factor": 40,
            "mscale": 0.707,
            "mscale_all_dim": 0.707,
            "original_max_position_embeddings": 4096,
            "type": "yarn",
        },
        "rope_theta": 10000,
        "routed_scaling_factor": 1.0,
        "scoring_func": "softmax",
        "seq_aux": True,
        "tie_word_embeddings": False,
        "topk_group": 1,
        "topk_method": "greedy",
        "torch_dtype": "bfloat16",
        "use_cache": True,
        "v_head_dim": 128,
        "vocab_size": 102400,
    }


def tensor_specs(c: dict):
    """(name, shape, kind) in checkpoint order; kind 'norm' -> ones, 'w' -> N(0, 0.02)."""
    H = c["hidden_size"]
    nh = c["num_attention_heads"]
    qk = c["qk_nope_head_dim"] + c["qk_rope_head_dim"]
    kvr = c["kv_lora_rank"]
    yield "model.embed_tokens.weight", (c["vocab_size"], H), "w"
    for i in range(c["num_hidden_layers"]):
        p = f"model.layers.{i}."
        yield p + "input_layernorm.weight", (H,), "norm"
        yield p + "self_attn.q_proj.weight", (nh * qk, H), "w"
        yield p + "self_attn.kv_a_proj_with_mqa.weight", (kvr + c["qk_rope_head_dim"], H), "w"
        yield p + "self_attn.kv_a_layernorm.weight", (kvr,), "norm"
        yield p + "self_attn.kv_b_proj.weight", (nh * (c["qk_nope_head_dim"] + c["v_head_dim"]), kvr), "w"
        yield p + "self_attn.o_proj.weight", (H, nh * c["v_head_dim"]), "w"
        yield p + "post_attention_layernorm.weight", (H,), "norm"
        if i < c["first_k_dense_replace"]:
            I = c["intermediate_size"]
            yield p + "mlp.gate_proj.weight", (I, H), "w"
            yield p + "mlp.up_proj.weight", (I, H), "w"
            yield p + "mlp.down_proj.weight", (H, I), "w"
        else:
            I = c["moe_intermediate_size"]
            yield p + "mlp.gate.weight", (c["n_routed_experts"], H), "w"
            for e in range(c["n_routed_experts"]):
                q = f"{p}mlp.experts.{e}."
                yield q + "gate_proj.weight", (I, H), "w"
                yield q + "up_proj.weight", (I, H), "w"
                yield q + "down_proj.weight", (H, I), "w"
            S = I * c["n_shared_experts"]
            yield p + "mlp.shared_experts.gate_proj.weight", (S, H), "w"
            yield p + "mlp.shared_experts.up_proj.weight", (S, H), "w"
            yield p + "mlp.shared_experts.down_proj.weight", (H, S), "w"
    yield "model.norm.weight", (H,), "norm"
    yield "lm_head.weight", (c["vocab_size"], H), "w"


def make_tensor(name: str, shape, kind: str, seed: int, std: float) -> torch.Tensor:
    if kind == "norm":
        return torch.ones(shape, dtype=torch.bfloat16)
    g = torch.Generator().manual_seed((seed * 1_000_003 + zlib.crc32(name.encode())) & 0x7FFF_FFFF_FFFF_FFFF)
    return (torch.randn(shape, generator=g, dtype=torch.float32) * std).to(torch.bfloat16)


def write_tokenizer(out: Path, vocab_size: int) -> None:
    src = V3_TOKENIZER / "tokenizer.json"
    if not src.exists():
        print(f"warning: {src} not found, no tokenizer written", file=sys.stderr)
        return
    tok = json.loads(src.read_text(encoding="utf-8"))
    specials = {a["content"] for a in tok["added_tokens"]}
    vocab = {s: i for s, i in tok["model"]["vocab"].items() if i < BOS and s not in specials}
    # ids must be contiguous: the tokenizers library numbers added tokens from len(vocab), so
    # V3's special ids 0..2 become unused placeholders and BOS/EOS land on 100000/100001
    used = set(vocab.values())
    for i in range(BOS):
        if i not in used:
            vocab[f"<｜unused▁{i}｜>"] = i
    merges = []
    for m in tok["model"]["merges"]:
        a, b = m.split(" ", 1) if isinstance(m, str) else m
        if a in vocab and b in vocab and (a + b) in vocab:
            merges.append(m)
    tok["model"]["vocab"] = vocab
    tok["model"]["merges"] = merges
    added = []
    for i, text in ((BOS, BOS_TEXT), (EOS, EOS_TEXT)):
        added.append({"id": i, "content": text, "single_word": False, "lstrip": False,
                      "rstrip": False, "normalized": False, "special": True})
    tok["added_tokens"] = added
    # prepend BOS on encode (V2's tokenizer does; V3's file relies on tokenizer_config instead)
    bos_piece = {"SpecialToken": {"id": BOS_TEXT, "type_id": 0}}
    tok["post_processor"] = {
        "type": "Sequence",
        "processors": [
            tok["post_processor"],
            {
                "type": "TemplateProcessing",
                "single": [bos_piece, {"Sequence": {"id": "A", "type_id": 0}}],
                "pair": [bos_piece, {"Sequence": {"id": "A", "type_id": 0}},
                         bos_piece, {"Sequence": {"id": "B", "type_id": 1}}],
                "special_tokens": {BOS_TEXT: {"id": BOS_TEXT, "ids": [BOS], "tokens": [BOS_TEXT]}},
            },
        ],
    }
    (out / "tokenizer.json").write_text(json.dumps(tok, ensure_ascii=False), encoding="utf-8")
    cfg = {
        "add_bos_token": True,
        "add_eos_token": False,
        "bos_token": BOS_TEXT,
        "eos_token": EOS_TEXT,
        "pad_token": EOS_TEXT,
        "clean_up_tokenization_spaces": False,
        "legacy": True,
        "model_max_length": 163840,
        "tokenizer_class": "LlamaTokenizerFast",
        "unk_token": None,
    }
    (out / "tokenizer_config.json").write_text(json.dumps(cfg, indent=2, ensure_ascii=False) + "\n")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--std", type=float, default=0.02)
    ap.add_argument("--shard-mb", type=int, default=1024)
    ap.add_argument("--force", action="store_true", help="overwrite an existing model")
    args = ap.parse_args()

    out: Path = args.out
    if (out / "model.safetensors.index.json").exists() and not args.force:
        print(f"{out} already has a model (use --force to rewrite)")
        return 0
    tmp = out.with_name(out.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)

    torch.set_num_threads(max(1, os.cpu_count() or 1))
    cfg = make_config(args.layers)
    specs = list(tensor_specs(cfg))
    limit = args.shard_mb << 20

    # group tensors into shards by size (order kept)
    shards, cur, cur_bytes = [], [], 0
    for s in specs:
        nbytes = 2 * int(torch.Size(s[1]).numel())
        if cur and cur_bytes + nbytes > limit:
            shards.append(cur)
            cur, cur_bytes = [], 0
        cur.append(s)
        cur_bytes += nbytes
    shards.append(cur)

    t0 = time.time()
    weight_map, total = {}, 0
    n = len(shards)
    for k, group in enumerate(shards, 1):
        fname = f"model-{k:05d}-of-{n:05d}.safetensors"
        tensors = {}
        for name, shape, kind in group:
            tensors[name] = make_tensor(name, shape, kind, args.seed, args.std)
            weight_map[name] = fname
            total += tensors[name].numel() * 2
        save_file(tensors, str(tmp / fname), metadata={"format": "pt"})
        del tensors
        print(f"[{time.time() - t0:6.1f}s] {fname}: {len(group)} tensors", flush=True)

    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (tmp / "model.safetensors.index.json").write_text(json.dumps(index, indent=2) + "\n")
    (tmp / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    (tmp / "generation_config.json").write_text(json.dumps(
        {"bos_token_id": BOS, "eos_token_id": EOS, "do_sample": False}, indent=2) + "\n")
    write_tokenizer(tmp, cfg["vocab_size"])

    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    print(f"wrote {out}: {len(specs)} tensors, {total / 2**30:.2f} GiB bf16, {n} shards, "
          f"{time.time() - t0:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
