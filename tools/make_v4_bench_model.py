#!/usr/bin/env python3
"""Writes a random-weight DeepSeek-V4 checkpoint with V4-Flash's dimensions cut to a few layers,
for CPU benchmarks against HF transformers on the same weights (numpy only, no torch; tensors are
streamed to disk in row chunks, so memory stays at a few hundred MB whatever the model size).

Dimensions are V4-Flash's (transformers' DeepseekV4Config defaults): hidden 4096, 64 heads of 512
(one shared K=V head), q_lora_rank 1024, 8 output groups of rank 1024, index 64 heads x 128, top-512,
sliding window 128, hc_mult 4, vocab 129280, moe_intermediate 2048, top-6 routing, 1 shared expert,
sqrtsoftplus scoring, YaRN (factor 16) on the compressed branches. Two cuts, both in config.json:
--layers (default 4) and --experts routed experts (default 16, V4-Flash has 256; top-6 is kept).

Layer schedule: V4-Flash's first --layers layers: two sliding-window layers, then CSA (rate 4 with
the lightning indexer) and HCA (rate 128) alternating; the first 3 layers hash-routed (tid2eid),
the rest top-k routed (the public V4-Flash config: compress_ratios 0, 0, 4, 128, 4, ...,
num_hash_layers 3). --layer-types / --mlp-layer-types override it (comma lists).

Layout and names as transformers' save_pretrained writes DeepseekV4ForCausalLM (DeepSeek's own
names: attn.wq_a, attn.compressor.wkv, ffn.experts.<e>.w1, hc_attn_fn, head.weight, ...), the
layout of tests/fixtures/models/v4_tiny, but without quantization: projections, experts,
embedding and head BF16; norms, mHC (hc_*), attention sinks, compressor / indexer-compressor /
indexer weights_proj / router weights and the router bias F32, as the fixture stores them; tid2eid
I64 with distinct experts per token. The F32 projections (compressor, indexer weights_proj, router)
hold bf16-representable values, so a peer that loads them in bf16 (HF with dtype=bfloat16 does)
computes with the same numbers as one that keeps F32.

Scales keep activations finite (standard deviations): matrices 1/sqrt(fan_in), norms 1 + 0.1 N,
mHC fn 0.5/sqrt(fan_in), mHC base 0.5, mHC scale 1 + 0.2 N, sinks 1, compressor position bias
(ape) 0.5, router bias 0.1, embedding 1 (the init of tools/gen_golden_v4.py). Same seed, same bytes.
(tools/make_cpu_bench_model.py's write_checkpoint is not reused: it builds each tensor whole in
float32 (the 129280 x 4096 embedding alone is 2.1 GB), draws N(0, 0.02) for every matrix and
stores BF16 / FP8 only; the safetensors layout written here is the same.)

Usage: tools/make_v4_bench_model.py --out DIR [--layers 4] [--experts 16] [--seed 0]
           [--set key=json ...]   (any config field, e.g. --set hidden_size=256 for a quick check)
"""
from __future__ import annotations

import argparse
import json
import struct
import zlib
from pathlib import Path

import ml_dtypes
import numpy as np

SHARD_BYTES = 1 << 30
CHUNK_ELEMS = 1 << 24  # rows are generated this many values at a time


def flash_schedule(layers: int) -> tuple[list[str], list[str]]:
    attn = ["sliding_attention" if i < 2 else
            "compressed_sparse_attention" if i % 2 == 0 else "heavily_compressed_attention"
            for i in range(layers)]
    mlp = ["hash_moe" if i < 3 else "moe" for i in range(layers)]
    return attn, mlp


def config(layers: int, experts: int, sets: dict) -> dict:
    attn, mlp = flash_schedule(layers)
    c = {
        "architectures": ["DeepseekV4ForCausalLM"], "model_type": "deepseek_v4",
        "attention_bias": False, "attention_dropout": 0.0, "bos_token_id": 0, "eos_token_id": 1,
        "compress_rates": {"compressed_sparse_attention": 4, "heavily_compressed_attention": 128},
        "compress_rope_theta": 160000.0, "hc_eps": 1e-6, "hc_mult": 4, "hc_sinkhorn_iters": 20,
        "head_dim": 512, "hidden_act": "silu", "hidden_size": 4096, "index_head_dim": 128,
        "index_n_heads": 64, "index_topk": 512, "initializer_range": 0.02,
        "layer_types": attn, "max_position_embeddings": 1048576, "mlp_bias": False,
        "mlp_layer_types": mlp, "moe_intermediate_size": 2048, "n_routed_experts": experts,
        "n_shared_experts": 1, "norm_topk_prob": True, "num_attention_heads": 64,
        "num_experts_per_tok": 6, "num_hidden_layers": layers, "num_key_value_heads": 1,
        "num_nextn_predict_layers": 0, "o_groups": 8, "o_lora_rank": 1024,
        "output_router_logits": False, "pad_token_id": None, "partial_rotary_factor": 0.125,
        "q_lora_rank": 1024, "qk_rope_head_dim": 64, "rms_norm_eps": 1e-6,
        "rope_parameters": {
            "main": {"partial_rotary_factor": 0.125, "rope_theta": 10000.0, "rope_type": "default"},
            "compress": {"attention_factor": 1.0, "beta_fast": 32, "beta_slow": 1, "factor": 16.0,
                         "original_max_position_embeddings": 65536, "partial_rotary_factor": 0.125,
                         "rope_theta": 160000.0, "rope_type": "yarn"},
        },
        "rope_theta": 10000.0, "routed_scaling_factor": 1.5, "router_aux_loss_coef": 0.001,
        "router_jitter_noise": 0.0, "scoring_func": "sqrtsoftplus", "sliding_window": 128,
        "swiglu_limit": 10.0, "tie_word_embeddings": False, "use_cache": True, "vocab_size": 129280,
        "torch_dtype": "bfloat16",
    }
    c.update(sets)
    n = c["num_hidden_layers"]
    if len(c["layer_types"]) != n or len(c["mlp_layer_types"]) != n:
        raise SystemExit("layer_types / mlp_layer_types must have num_hidden_layers entries")
    rot = int(c["head_dim"] * c["partial_rotary_factor"])
    if rot != c["qk_rope_head_dim"]:
        raise SystemExit(f"qk_rope_head_dim {c['qk_rope_head_dim']} != head_dim x partial_rotary_factor ({rot})")
    return c


# Storage kinds: "bf16" matrix, "f32r" F32 holding bf16-representable values, "f32" F32 vector /
# mHC, "i64" tid2eid. Each spec: (name, shape, kind, init, scale): init "normal" draws
# N(0, scale^2), "one" draws 1 + N(0, scale^2).
def specs(c: dict):
    D, H, d = c["hidden_size"], c["num_attention_heads"], c["head_dim"]
    qr, E, I = c["q_lora_rank"], c["n_routed_experts"], c["moe_intermediate_size"]
    G, R, hc = c["o_groups"], c["o_lora_rank"], c["hc_mult"]
    Hi, di, V = c["index_n_heads"], c["index_head_dim"], c["vocab_size"]
    rates = c["compress_rates"]

    def mat(name, rows, cols, kind="bf16"):
        return (name, (rows, cols), kind, "normal", cols ** -0.5)

    def norm(name, n):
        return (name, (n,), "f32", "one", 0.1)

    hcw = (2 + hc) * hc
    yield ("model.embed_tokens.weight", (V, D), "bf16", "normal", 1.0)
    for l in range(c["num_hidden_layers"]):
        p = f"model.layers.{l}."
        for site in ("attn", "ffn"):
            yield (p + f"hc_{site}_fn", (hcw, hc * D), "f32", "normal", 0.5 * (hc * D) ** -0.5)
            yield (p + f"hc_{site}_base", (hcw,), "f32", "normal", 0.5)
            yield (p + f"hc_{site}_scale", (3,), "f32", "one", 0.2)
        yield norm(p + "attn_norm.weight", D)
        yield norm(p + "ffn_norm.weight", D)
        a = p + "attn."
        yield mat(a + "wq_a.weight", qr, D)
        yield norm(a + "q_norm.weight", qr)
        yield mat(a + "wq_b.weight", H * d, qr)
        yield mat(a + "wkv.weight", d, D)
        yield norm(a + "norm.weight", d)
        yield mat(a + "wo_a.weight", G * R, H * d // G)
        yield mat(a + "wo_b.weight", D, G * R)
        yield (a + "attn_sink", (H,), "f32", "normal", 1.0)
        t = c["layer_types"][l]
        if t != "sliding_attention":
            rate = rates[t]
            cw = 2 * d if t == "compressed_sparse_attention" else d
            yield mat(a + "compressor.wkv.weight", cw, D, "f32r")
            yield mat(a + "compressor.wgate.weight", cw, D, "f32r")
            yield (a + "compressor.ape", (rate, cw), "f32", "normal", 0.5)
            yield norm(a + "compressor.norm.weight", d)
            if t == "compressed_sparse_attention":
                ip = a + "indexer."
                yield mat(ip + "wq_b.weight", Hi * di, qr)
                yield mat(ip + "weights_proj.weight", Hi, D, "f32r")
                yield mat(ip + "compressor.wkv.weight", 2 * di, D, "f32r")
                yield mat(ip + "compressor.wgate.weight", 2 * di, D, "f32r")
                yield (ip + "compressor.ape", (rate, 2 * di), "f32", "normal", 0.5)
                yield norm(ip + "compressor.norm.weight", di)
        f = p + "ffn."
        yield mat(f + "gate.weight", E, D, "f32r")
        if c["mlp_layer_types"][l] == "hash_moe":
            yield (f + "gate.tid2eid", (V, c["num_experts_per_tok"]), "i64", "tid2eid", 0.0)
        else:
            yield (f + "gate.bias", (E,), "f32", "normal", 0.1)
        for e in range(E):
            yield mat(f + f"experts.{e}.w1.weight", I, D)
            yield mat(f + f"experts.{e}.w3.weight", I, D)
            yield mat(f + f"experts.{e}.w2.weight", D, I)
        yield mat(f + "shared_experts.w1.weight", I, D)
        yield mat(f + "shared_experts.w3.weight", I, D)
        yield mat(f + "shared_experts.w2.weight", D, I)
    yield norm("model.norm.weight", D)
    yield ("model.hc_head.hc_fn", (hc, hc * D), "f32", "normal", 0.5 * (hc * D) ** -0.5)
    yield ("model.hc_head.hc_base", (hc,), "f32", "normal", 0.5)
    yield ("model.hc_head.hc_scale", (1,), "f32", "one", 0.2)
    yield mat("head.weight", V, D)


ST_DTYPE = {"bf16": "BF16", "f32r": "F32", "f32": "F32", "i64": "I64"}
ITEM = {"bf16": 2, "f32r": 4, "f32": 4, "i64": 8}


def chunks(spec, c: dict, seed: int):
    """The tensor's bytes, row chunk by row chunk (a fixed sequence for a given seed and name)."""
    name, shape, kind, init, scale = spec
    rng = np.random.default_rng((seed * 1_000_003 + zlib.crc32(name.encode())) & 0x7FFFFFFF)
    if init == "tid2eid":  # distinct experts per token: the first k of a random permutation
        V, k = shape
        E = c["n_routed_experts"]
        for r0 in range(0, V, 1 << 16):
            n = min(1 << 16, V - r0)
            yield rng.random((n, E), dtype=np.float32).argsort(axis=1)[:, :k].astype(np.int64).tobytes()
        return
    rows = shape[0]
    cols = int(np.prod(shape[1:])) if len(shape) > 1 else 1
    step = max(1, CHUNK_ELEMS // cols)
    for r0 in range(0, rows, step):
        n = min(step, rows - r0)
        w = rng.standard_normal((n, cols), dtype=np.float32)
        w *= np.float32(scale)
        if init == "one":
            w += np.float32(1.0)
        if kind == "bf16":
            yield w.astype(ml_dtypes.bfloat16).tobytes()
        elif kind == "f32r":
            yield w.astype(ml_dtypes.bfloat16).astype(np.float32).tobytes()
        else:
            yield w.tobytes()


def write_shard(path: Path, group: list, c: dict, seed: int) -> None:
    """One safetensors file: header (8-byte aligned), then each tensor streamed in chunks."""
    header, offset = {"__metadata__": {"format": "pt"}}, 0
    for name, shape, kind, _, _ in group:
        nbytes = int(np.prod(shape)) * ITEM[kind]
        header[name] = {"dtype": ST_DTYPE[kind], "shape": list(shape), "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for spec in group:
            want = header[spec[0]]["data_offsets"]
            wrote = 0
            for b in chunks(spec, c, seed):
                f.write(b)
                wrote += len(b)
            assert wrote == want[1] - want[0], spec[0]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--experts", type=int, default=16, help="routed experts (V4-Flash: 256)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--layer-types", default=None, help="comma list (default: V4-Flash's first layers)")
    ap.add_argument("--mlp-layer-types", default=None, help="comma list (default: 3 hash_moe, then moe)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=JSON", help="override a config field")
    a = ap.parse_args()
    sets = {}
    for kv in a.set:
        k, _, v = kv.partition("=")
        sets[k] = json.loads(v)
    if a.layer_types:
        sets["layer_types"] = a.layer_types.split(",")
    if a.mlp_layer_types:
        sets["mlp_layer_types"] = a.mlp_layer_types.split(",")
    c = config(a.layers, a.experts, sets)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)

    groups, group, size = [], [], 0
    for spec in specs(c):
        nbytes = int(np.prod(spec[1])) * ITEM[spec[2]]
        if group and size + nbytes > SHARD_BYTES:
            groups.append(group)
            group, size = [], 0
        group.append(spec)
        size += nbytes
    if group:
        groups.append(group)
    index, total = {}, 0
    for i, g in enumerate(groups):
        name = f"model-{i + 1:05d}-of-{len(groups):05d}.safetensors"
        write_shard(out / name, g, c, a.seed)
        for spec in g:
            index[spec[0]] = name
            total += int(np.prod(spec[1])) * ITEM[spec[2]]
    with open(out / "config.json", "w") as f:
        json.dump(c, f, indent=2)
    with open(out / "model.safetensors.index.json", "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": index}, f, indent=1)
    print(json.dumps({"out": str(out), "shards": len(groups), "bytes": total,
                      "layers": c["num_hidden_layers"], "routed_experts": c["n_routed_experts"],
                      "layer_types": c["layer_types"], "mlp_layer_types": c["mlp_layer_types"]}))


if __name__ == "__main__":
    main()
