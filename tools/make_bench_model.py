#!/usr/bin/env python3
"""Write a random-weight DeepSeek model for speed benchmarks, in the real checkpoints' layout.

Families (--family):
  v2lite  DeepSeek-V2-Lite dimensions, bf16 (the real deepseek-ai/DeepSeek-V2-Lite config keys,
          tensor names, shapes and dtype; per-expert tensors; layer 0 dense, the rest MoE).
          27 layers is the full model (~15.7B parameters, 31.4 GB); default 4 layers.
  v3fp8   DeepSeek-V3 dimensions (hidden 7168, 128 heads, q-LoRA 1536, 256 routed experts of 2048,
          vocab 129280), cut to --layers (default 2: layer 0 dense, layer 1 MoE;
          first_k_dense_replace = 1), no MTP layer. Like the real V3 checkpoint, the linear weights
          of attention, dense MLP and experts are FP8 e4m3 with 128x128 block scales
          (`weight_scale_inv`, float32, edges cropped); embeddings, lm_head, norms and the router
          gate are bf16, `e_score_correction_bias` float32; config has `quantization_config`.

--dims small keeps each family's structure with small dimensions (for trying scripts on a CPU;
the v3fp8 ones include sizes that are not multiples of 128, so scale edges are cropped).

Values: linear weights N(0, --std) (router gate included), RMSNorm weights 1, correction bias 0.
FP8 weights are q = fp8(N(0, 1)) with per-block scale_inv = --std * U(0.75, 1.25), i.e. the same
spread after dequantisation. Every tensor has its own generator seeded from (seed, tensor name),
so the output does not depend on write order or --workers (it does on --device: CPU and CUDA
generators differ).

--device cuda draws the numbers on the GPU (the host only copies and writes); shards (--shard-mb) are
written by --workers threads with safetensors, each holding about one shard in host memory.

A tokenizer (tokenizer.json + tokenizer_config.json) is written too, because converters such as
llama.cpp's convert_hf_to_gguf.py need one. v3fp8: the DeepSeek-V3 tokenizer shipped in
models/tokenizers/deepseek-v3. v2lite: that tokenizer cut to the ids below 100000, plus BOS
<|begin▁of▁sentence|> = 100000 and EOS <|end▁of▁sentence|> = 100001 as in V2; ids 0..2 (V3
specials) and 100002..102399 are unused. Benchmarks feed token ids directly.

Usage: tools/make_bench_model.py [--family v2lite|v3fp8] [--out DIR] [--layers N] [--dims full|small]
                                 [--device cpu|cuda] [--workers N] [--seed 0] [--shard-mb 1024]
"""
from __future__ import annotations

import argparse
import concurrent.futures
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
V3_TOKENIZER = REPO / "models" / "tokenizers" / "deepseek-v3"
FP8_BLOCK = 128

BOS, EOS = 100000, 100001
BOS_TEXT, EOS_TEXT = "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>"


def v2lite_config(n_layers: int, dims: str) -> dict:
    # DeepSeek-V2-Lite config.json, with num_hidden_layers cut (no auto_map: native HF class).
    c = {
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
    if dims == "small":
        c.update(hidden_size=256, intermediate_size=512, moe_intermediate_size=128, n_routed_experts=8,
                 num_experts_per_tok=2, num_attention_heads=4, num_key_value_heads=4, kv_lora_rank=128,
                 qk_nope_head_dim=32, qk_rope_head_dim=32, v_head_dim=32)
    return c


def v3fp8_config(n_layers: int, dims: str) -> dict:
    # DeepSeek-V3 config.json (FP8 checkpoint), cut to n_layers with one dense layer, no MTP layer.
    c = {
        "architectures": ["DeepseekV3ForCausalLM"],
        "attention_bias": False,
        "attention_dropout": 0.0,
        "bos_token_id": 0,
        "eos_token_id": 1,
        "ep_size": 1,
        "first_k_dense_replace": 1,
        "hidden_act": "silu",
        "hidden_size": 7168,
        "initializer_range": 0.02,
        "intermediate_size": 18432,
        "kv_lora_rank": 512,
        "max_position_embeddings": 163840,
        "model_type": "deepseek_v3",
        "moe_intermediate_size": 2048,
        "moe_layer_freq": 1,
        "n_group": 8,
        "n_routed_experts": 256,
        "n_shared_experts": 1,
        "norm_topk_prob": True,
        "num_attention_heads": 128,
        "num_experts_per_tok": 8,
        "num_hidden_layers": n_layers,
        "num_key_value_heads": 128,
        "num_nextn_predict_layers": 0,
        "pretraining_tp": 1,
        "q_lora_rank": 1536,
        "qk_nope_head_dim": 128,
        "qk_rope_head_dim": 64,
        "quantization_config": {
            "activation_scheme": "dynamic",
            "fmt": "e4m3",
            "quant_method": "fp8",
            "weight_block_size": [FP8_BLOCK, FP8_BLOCK],
        },
        "rms_norm_eps": 1e-06,
        "rope_scaling": {
            "beta_fast": 32,
            "beta_slow": 1,
            "factor": 40,
            "mscale": 1.0,
            "mscale_all_dim": 1.0,
            "original_max_position_embeddings": 4096,
            "type": "yarn",
        },
        "rope_theta": 10000,
        "routed_scaling_factor": 2.5,
        "scoring_func": "sigmoid",
        "tie_word_embeddings": False,
        "topk_group": 4,
        "topk_method": "noaux_tc",
        "torch_dtype": "bfloat16",
        "use_cache": True,
        "v_head_dim": 128,
        "vocab_size": 129280,
    }
    if dims == "small":
        # 160, 320 and 96 are not multiples of 128: cropped scale blocks, as in kv_b / MLP edges.
        c.update(hidden_size=512, intermediate_size=640, moe_intermediate_size=320, n_routed_experts=16,
                 num_experts_per_tok=4, n_group=4, topk_group=2, num_attention_heads=4,
                 num_key_value_heads=4, q_lora_rank=192, kv_lora_rank=160, qk_nope_head_dim=64,
                 qk_rope_head_dim=32, v_head_dim=96)
    return c


def tensor_specs(c: dict):
    """(name, shape, kind) in checkpoint order. kind: 'norm' -> ones, 'w' -> linear weight,
    'router' -> router gate (bf16 even in FP8 checkpoints), 'bias' -> correction bias (f32),
    'embed' -> embedding / lm_head (bf16 even in FP8 checkpoints)."""
    H = c["hidden_size"]
    nh = c["num_attention_heads"]
    qk = c["qk_nope_head_dim"] + c["qk_rope_head_dim"]
    kvr = c["kv_lora_rank"]
    qr = c.get("q_lora_rank")
    yield "model.embed_tokens.weight", (c["vocab_size"], H), "embed"
    for i in range(c["num_hidden_layers"]):
        p = f"model.layers.{i}."
        yield p + "input_layernorm.weight", (H,), "norm"
        if qr:
            yield p + "self_attn.q_a_proj.weight", (qr, H), "w"
            yield p + "self_attn.q_a_layernorm.weight", (qr,), "norm"
            yield p + "self_attn.q_b_proj.weight", (nh * qk, qr), "w"
        else:
            yield p + "self_attn.q_proj.weight", (nh * qk, H), "w"
        yield p + "self_attn.kv_a_proj_with_mqa.weight", (kvr + c["qk_rope_head_dim"], H), "w"
        yield p + "self_attn.kv_a_layernorm.weight", (kvr,), "norm"
        yield p + "self_attn.kv_b_proj.weight", (nh * (c["qk_nope_head_dim"] + c["v_head_dim"]), kvr), "w"
        yield p + "self_attn.o_proj.weight", (H, nh * c["v_head_dim"]), "w"
        yield p + "post_attention_layernorm.weight", (H,), "norm"
        if i < c["first_k_dense_replace"]:
            inter = c["intermediate_size"]
            yield p + "mlp.gate_proj.weight", (inter, H), "w"
            yield p + "mlp.up_proj.weight", (inter, H), "w"
            yield p + "mlp.down_proj.weight", (H, inter), "w"
        else:
            inter = c["moe_intermediate_size"]
            yield p + "mlp.gate.weight", (c["n_routed_experts"], H), "router"
            if c.get("topk_method") == "noaux_tc":
                yield p + "mlp.gate.e_score_correction_bias", (c["n_routed_experts"],), "bias"
            for e in range(c["n_routed_experts"]):
                q = f"{p}mlp.experts.{e}."
                yield q + "gate_proj.weight", (inter, H), "w"
                yield q + "up_proj.weight", (inter, H), "w"
                yield q + "down_proj.weight", (H, inter), "w"
            s = inter * c["n_shared_experts"]
            yield p + "mlp.shared_experts.gate_proj.weight", (s, H), "w"
            yield p + "mlp.shared_experts.up_proj.weight", (s, H), "w"
            yield p + "mlp.shared_experts.down_proj.weight", (H, s), "w"
    yield "model.norm.weight", (H,), "norm"
    yield "lm_head.weight", (c["vocab_size"], H), "embed"


def blocks(n: int) -> int:
    return (n + FP8_BLOCK - 1) // FP8_BLOCK


def stored_bytes(shape, kind: str, fp8: bool) -> int:
    n = 1
    for d in shape:
        n *= d
    if kind == "norm" or kind == "router" or kind == "embed":
        return 2 * n
    if kind == "bias":
        return 4 * n
    if fp8:
        return n + 4 * blocks(shape[0]) * blocks(shape[1])
    return 2 * n


def make_tensors(name: str, shape, kind: str, fp8: bool, seed: int, std: float, dev: torch.device):
    """The stored tensors for one weight, on the CPU: {name: t} or, FP8, also name_scale_inv."""
    if kind == "norm":
        return {name: torch.ones(shape, dtype=torch.bfloat16)}
    if kind == "bias":
        return {name: torch.zeros(shape, dtype=torch.float32)}
    g = torch.Generator(device=dev).manual_seed((seed * 1_000_003 + zlib.crc32(name.encode())) & 0x7FFF_FFFF_FFFF_FFFF)
    if fp8 and kind == "w":
        fmax = torch.finfo(torch.float8_e4m3fn).max
        q = torch.randn(shape, generator=g, device=dev, dtype=torch.float32).clamp_(-fmax, fmax)
        s = torch.rand((blocks(shape[0]), blocks(shape[1])), generator=g, device=dev, dtype=torch.float32)
        s = std * (0.75 + 0.5 * s)
        return {name: q.to(torch.float8_e4m3fn).cpu(), name + "_scale_inv": s.cpu()}
    w = torch.randn(shape, generator=g, device=dev, dtype=torch.float32).mul_(std)
    return {name: w.to(torch.bfloat16).cpu()}


def write_v2_tokenizer(out: Path) -> None:
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


def write_v3_tokenizer(out: Path) -> None:
    for f in ("tokenizer.json", "tokenizer_config.json"):
        if (V3_TOKENIZER / f).exists():
            shutil.copyfile(V3_TOKENIZER / f, out / f)
        else:
            print(f"warning: {V3_TOKENIZER / f} not found", file=sys.stderr)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--family", choices=("v2lite", "v3fp8"), default="v2lite")
    ap.add_argument("--out", type=Path, default=None, help="default .peers/<family>-<layers>l")
    ap.add_argument("--layers", type=int, default=None, help="default 4 (v2lite), 2 (v3fp8)")
    ap.add_argument("--dims", choices=("full", "small"), default="full")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--std", type=float, default=0.02)
    ap.add_argument("--shard-mb", type=int, default=1024)
    ap.add_argument("--device", default="cpu", help="cpu | cuda: where the random numbers are drawn")
    ap.add_argument("--workers", type=int, default=1, help="shards written at once (threads)")
    ap.add_argument("--force", action="store_true", help="overwrite an existing model")
    ap.add_argument("--print-size", action="store_true", help="print the checkpoint's size in bytes and exit")
    args = ap.parse_args()

    fp8 = args.family == "v3fp8"
    layers = args.layers or (2 if fp8 else 4)
    if fp8 and layers < 2:
        ap.error("--family v3fp8 needs --layers >= 2 (one dense layer, then MoE layers)")
    if args.print_size:
        cfg = (v3fp8_config if fp8 else v2lite_config)(layers, args.dims)
        print(sum(stored_bytes(shape, kind, fp8) for _, shape, kind in tensor_specs(cfg)))
        return 0
    out: Path = args.out or REPO / ".peers" / f"{args.family}-{layers}l"
    if (out / "model.safetensors.index.json").exists() and not args.force:
        print(f"{out} already has a model (use --force to rewrite)")
        return 0
    tmp = out.with_name(out.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)

    dev = torch.device(args.device)
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    cfg = (v3fp8_config if fp8 else v2lite_config)(layers, args.dims)
    specs = list(tensor_specs(cfg))
    limit = args.shard_mb << 20

    # group tensors into shards by stored size (order kept; a weight stays with its scale_inv)
    shards, cur, cur_bytes = [], [], 0
    for s in specs:
        nbytes = stored_bytes(s[1], s[2], fp8)
        if cur and cur_bytes + nbytes > limit:
            shards.append(cur)
            cur, cur_bytes = [], 0
        cur.append(s)
        cur_bytes += nbytes
    shards.append(cur)
    n = len(shards)
    fnames = [f"model-{k:05d}-of-{n:05d}.safetensors" for k in range(1, n + 1)]

    t0 = time.time()

    def write_shard(k: int) -> tuple[dict, int]:
        tensors, names = {}, {}
        for name, shape, kind in shards[k]:
            for tn, t in make_tensors(name, shape, kind, fp8, args.seed, args.std, dev).items():
                tensors[tn] = t
                names[tn] = fnames[k]
        nbytes = sum(t.numel() * t.element_size() for t in tensors.values())
        save_file(tensors, str(tmp / fnames[k]), metadata={"format": "pt"})
        print(f"[{time.time() - t0:6.1f}s] {fnames[k]}: {len(tensors)} tensors, {nbytes / 2**30:.2f} GiB",
              flush=True)
        return names, nbytes

    weight_map, total = {}, 0
    with concurrent.futures.ThreadPoolExecutor(max(1, args.workers)) as pool:
        for names, nbytes in pool.map(write_shard, range(n)):
            weight_map.update(names)
            total += nbytes

    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (tmp / "model.safetensors.index.json").write_text(json.dumps(index, indent=2) + "\n")
    (tmp / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    (tmp / "generation_config.json").write_text(json.dumps(
        {"bos_token_id": cfg["bos_token_id"], "eos_token_id": cfg["eos_token_id"], "do_sample": False},
        indent=2) + "\n")
    (write_v3_tokenizer if fp8 else write_v2_tokenizer)(tmp)

    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    dt = time.time() - t0
    print(f"wrote {out}: {len(weight_map)} tensors, {total / 2**30:.2f} GiB "
          f"({'fp8 + bf16' if fp8 else 'bf16'}), {n} shards, {dt:.0f}s ({total / 1e9 / max(dt, 1e-9):.2f} GB/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
