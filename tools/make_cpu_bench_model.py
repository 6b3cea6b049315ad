#!/usr/bin/env python3
"""Writes a random-weight DeepSeek-V2-Lite-dimension checkpoint for CPU benchmarks, with numpy
only (no torch): bf16 weights, or --fp8: the layer projections stored as FP8 e4m3 with 128x128
block scales (DeepSeek-V3's release format: codes plus weight_scale_inv = amax / 448 per block).
Weights are N(0, 0.02) from a seeded generator (same seed, same file), norms ones.

Usage: tools/make_cpu_bench_model.py --out DIR [--layers 4] [--fp8] [--seed 0]
"""
from __future__ import annotations

import argparse
import json
import struct
import zlib
from pathlib import Path

import ml_dtypes
import numpy as np

BLOCK = 128


def config(layers: int, fp8: bool) -> dict:
    c = {
        "architectures": ["DeepseekV2ForCausalLM"], "model_type": "deepseek_v2",
        "bos_token_id": 100000, "eos_token_id": 100001, "first_k_dense_replace": 1,
        "hidden_act": "silu", "hidden_size": 2048, "intermediate_size": 10944,
        "kv_lora_rank": 512, "max_position_embeddings": 163840, "moe_intermediate_size": 1408,
        "moe_layer_freq": 1, "n_group": 1, "n_routed_experts": 64, "n_shared_experts": 2,
        "norm_topk_prob": False, "num_attention_heads": 16, "num_experts_per_tok": 6,
        "num_hidden_layers": layers, "num_key_value_heads": 16, "q_lora_rank": None,
        "qk_nope_head_dim": 128, "qk_rope_head_dim": 64, "rms_norm_eps": 1e-6,
        "rope_scaling": {"beta_fast": 32, "beta_slow": 1, "factor": 40, "mscale": 0.707,
                         "mscale_all_dim": 0.707, "original_max_position_embeddings": 4096,
                         "type": "yarn"},
        "rope_theta": 10000, "routed_scaling_factor": 1.0, "scoring_func": "softmax",
        "tie_word_embeddings": False, "topk_group": 1, "topk_method": "greedy",
        "torch_dtype": "bfloat16", "v_head_dim": 128, "vocab_size": 102400,
    }
    if fp8:
        c["quantization_config"] = {"activation_scheme": "dynamic", "fmt": "e4m3",
                                    "quant_method": "fp8", "weight_block_size": [BLOCK, BLOCK]}
    return c


def specs(c: dict):
    """(name, shape, is_norm) in checkpoint order."""
    H, nh = c["hidden_size"], c["num_attention_heads"]
    qk, kvr = c["qk_nope_head_dim"] + c["qk_rope_head_dim"], c["kv_lora_rank"]
    yield "model.embed_tokens.weight", (c["vocab_size"], H), False
    for i in range(c["num_hidden_layers"]):
        p = f"model.layers.{i}."
        yield p + "input_layernorm.weight", (H,), True
        yield p + "self_attn.q_proj.weight", (nh * qk, H), False
        yield p + "self_attn.kv_a_proj_with_mqa.weight", (kvr + c["qk_rope_head_dim"], H), False
        yield p + "self_attn.kv_a_layernorm.weight", (kvr,), True
        yield p + "self_attn.kv_b_proj.weight", (nh * (c["qk_nope_head_dim"] + c["v_head_dim"]), kvr), False
        yield p + "self_attn.o_proj.weight", (H, nh * c["v_head_dim"]), False
        yield p + "post_attention_layernorm.weight", (H,), True
        if i < c["first_k_dense_replace"]:
            mlp = [("mlp.", c["intermediate_size"])]
        else:
            yield p + "mlp.gate.weight", (c["n_routed_experts"], H), False
            mlp = [(f"mlp.experts.{e}.", c["moe_intermediate_size"]) for e in range(c["n_routed_experts"])]
            mlp.append(("mlp.shared_experts.", c["moe_intermediate_size"] * c["n_shared_experts"]))
        for q, inter in mlp:
            yield p + q + "gate_proj.weight", (inter, H), False
            yield p + q + "up_proj.weight", (inter, H), False
            yield p + q + "down_proj.weight", (H, inter), False
    yield "model.norm.weight", (H,), True
    yield "lm_head.weight", (c["vocab_size"], H), False


def fp8_blocks(w: np.ndarray):
    """E4M3 codes and f32 scale_inv per 128x128 block (amax / 448; all-zero blocks get 1)."""
    r, k = w.shape
    sr, sc = -(-r // BLOCK), -(-k // BLOCK)
    scale = np.ones((sr, sc), np.float32)
    codes = np.empty((r, k), ml_dtypes.float8_e4m3fn)
    for i in range(sr):
        for j in range(sc):
            blk = w[i * BLOCK:(i + 1) * BLOCK, j * BLOCK:(j + 1) * BLOCK]
            amax = float(np.abs(blk).max())
            s = amax / 448.0 if amax > 0 else 1.0
            scale[i, j] = s
            codes[i * BLOCK:(i + 1) * BLOCK, j * BLOCK:(j + 1) * BLOCK] = \
                np.clip(blk / s, -448, 448).astype(ml_dtypes.float8_e4m3fn)
    return codes, scale


def write_safetensors(path: Path, tensors: list):
    """tensors: (name, dtype string, shape, bytes); header padded to 8 bytes."""
    header, offset = {}, 0
    for name, dtype, shape, data in tensors:
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for _, _, _, data in tensors:
            f.write(data)


def write_checkpoint(out: Path, c: dict, specs_list, seed: int, as_fp8=lambda name: False) -> int:
    """Writes config.json, ~1 GiB safetensors shards of random weights (N(0, 0.02); norms 1) and
    the index; tensors for which as_fp8(name) holds are stored as FP8 with 128x128 block scales,
    the rest as bf16. Returns the number of shards."""
    shard, shards, index, size = [], [], {}, 0

    def flush():
        nonlocal shard, size
        if shard:
            name = f"model-{len(shards) + 1:05d}.safetensors"
            write_safetensors(out / name, shard)
            for t in shard:
                index[t[0]] = name
            shards.append(name)
            shard, size = [], 0

    for name, shape, norm in specs_list:
        if norm:
            w = np.ones(shape, np.float32)
        else:
            rng = np.random.default_rng((seed * 1_000_003 + zlib.crc32(name.encode())) & 0x7FFFFFFF)
            w = rng.standard_normal(shape, dtype=np.float32) * 0.02
        if as_fp8(name):
            codes, scale = fp8_blocks(w)
            shard.append((name, "F8_E4M3", shape, codes.tobytes()))
            shard.append((name.replace(".weight", ".weight_scale_inv"), "F32", scale.shape, scale.tobytes()))
            size += codes.nbytes + scale.nbytes
        else:
            b = w.astype(ml_dtypes.bfloat16)
            shard.append((name, "BF16", shape, b.tobytes()))
            size += b.nbytes
        if size > 1 << 30:
            flush()
    flush()
    json.dump(c, open(out / "config.json", "w"), indent=2)
    json.dump({"metadata": {}, "weight_map": index}, open(out / "model.safetensors.index.json", "w"), indent=2)
    return len(shards)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--fp8", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)

    def as_fp8(name):
        return a.fp8 and name.startswith("model.layers.") and (
            "_proj.weight" in name or "_proj_with_mqa.weight" in name)

    shards = write_checkpoint(out, config(a.layers, a.fp8), specs(config(a.layers, a.fp8)), a.seed, as_fp8)
    print(json.dumps({"out": str(out), "shards": shards, "fp8": a.fp8}))


if __name__ == "__main__":
    main()
