#!/usr/bin/env python3
"""Generate tiny random dense checkpoints (the DeepSeek-R1 distills' families) plus goldens.

Writes tests/fixtures/models/<name>/ in exact Hugging Face layout, like gen_golden_models.py:
    config.json          as R1-Distill-Qwen (Qwen2ForCausalLM) / R1-Distill-Llama (LlamaForCausalLM)
    model.safetensors    random weights (fixed seed)
    golden.safetensors   F32 logits.<i>: [len(prompt_i), vocab], one full-prompt forward
    golden.json          prompts (lengths 1, 9, 70), 16 greedy tokens each, notes

Goldens: HF transformers in float32 (dtype=torch.float32 passed explicitly, eager attention,
single thread). Greedy from generate() (KV cache) and checked against a full-recompute argmax.

    python3 tools/gen_dense_goldens.py                 # all fixtures
    python3 tools/gen_dense_goldens.py qwen2_gqa_f32   # one
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_golden_models as gg  # noqa: E402  (shared: Init, hf_load, writers, checks)

VOCAB = 500  # not a multiple of 128

COMMON = {
    "attention_dropout": 0.0,
    "bos_token_id": gg.BOS,
    "eos_token_id": gg.EOS,
    "hidden_act": "silu",
    "initializer_range": 0.02,
    "rms_norm_eps": 1e-06,
    "use_cache": True,
    "vocab_size": VOCAB,
}

SPECS = {
    # R1-Distill-Qwen shape: q/k/v biases, GQA 6:2, f32 weights.
    "qwen2_gqa_f32": {
        "seed": 20251203,
        "storage": "float32",
        "config": {
            **COMMON,
            "architectures": ["Qwen2ForCausalLM"],
            "model_type": "qwen2",
            "hidden_size": 180,
            "intermediate_size": 296,
            "num_hidden_layers": 2,
            "num_attention_heads": 6,
            "num_key_value_heads": 2,
            "max_position_embeddings": 256,
            "max_window_layers": 2,
            "rope_theta": 10000.0,
            "sliding_window": 256,
            "use_sliding_window": False,
            "tie_word_embeddings": False,
            "torch_dtype": "float32",
        },
    },
    # R1-Distill-Llama shape: no biases, GQA 8:2, explicit head_dim (!= hidden / heads),
    # Llama-3.1 rope scaling whose three bands all occur, bf16 weights.
    "llama_gqa_bf16": {
        "seed": 20251211,
        "storage": "bfloat16",
        "config": {
            **COMMON,
            "architectures": ["LlamaForCausalLM"],
            "model_type": "llama",
            "hidden_size": 192,
            "intermediate_size": 300,
            "num_hidden_layers": 3,
            "num_attention_heads": 8,
            "num_key_value_heads": 2,
            "head_dim": 40,
            "max_position_embeddings": 512,
            "attention_bias": False,
            "mlp_bias": False,
            "pretraining_tp": 1,
            "rope_theta": 500000.0,
            "rope_scaling": {
                "factor": 8.0,
                "low_freq_factor": 1.0,
                "high_freq_factor": 4.0,
                "original_max_position_embeddings": 64,
                "rope_type": "llama3",
            },
            "tie_word_embeddings": False,
            "torch_dtype": "bfloat16",
        },
    },
    # Llama with attention_bias (q/k/v and o biases; not the distills' setting, but the config
    # field is accepted) and multi-query attention (one KV head), f32, one layer.
    "llama_bias_mqa_f32": {
        "seed": 20251222,
        "storage": "float32",
        "config": {
            **COMMON,
            "architectures": ["LlamaForCausalLM"],
            "model_type": "llama",
            "hidden_size": 96,
            "intermediate_size": 160,
            "num_hidden_layers": 1,
            "num_attention_heads": 4,
            "num_key_value_heads": 1,
            "head_dim": 24,
            "max_position_embeddings": 256,
            "attention_bias": True,
            "mlp_bias": False,
            "pretraining_tp": 1,
            "rope_theta": 10000.0,
            "tie_word_embeddings": False,
            "torch_dtype": "float32",
        },
    },
}


def make_weights(spec: dict) -> dict[str, torch.Tensor]:
    c = spec["config"]
    ini = gg.Init(spec["seed"])
    D, V, I = c["hidden_size"], c["vocab_size"], c["intermediate_size"]
    H, KV = c["num_attention_heads"], c["num_key_value_heads"]
    hd = c.get("head_dim", D // H)
    qkv_bias = c["model_type"] == "qwen2" or c.get("attention_bias", False)
    w = {"model.embed_tokens.weight": ini.normal((V, D), 1.0)}
    for i in range(c["num_hidden_layers"]):
        p = f"model.layers.{i}."
        a = p + "self_attn."
        w[p + "input_layernorm.weight"] = ini.norm(D)
        w[a + "q_proj.weight"] = ini.proj(H * hd, D)
        w[a + "k_proj.weight"] = ini.proj(KV * hd, D)
        w[a + "v_proj.weight"] = ini.proj(KV * hd, D)
        if qkv_bias:
            # Qwen2's biases are large in the real checkpoints (k especially); keep them visible.
            w[a + "q_proj.bias"] = ini.normal((H * hd,), 0.3)
            w[a + "k_proj.bias"] = ini.normal((KV * hd,), 0.5)
            w[a + "v_proj.bias"] = ini.normal((KV * hd,), 0.1)
        w[a + "o_proj.weight"] = ini.proj(D, H * hd)
        if c.get("attention_bias", False):
            w[a + "o_proj.bias"] = ini.normal((D,), 0.1)
        w[p + "post_attention_layernorm.weight"] = ini.norm(D)
        w[p + "mlp.gate_proj.weight"] = ini.proj(I, D)
        w[p + "mlp.up_proj.weight"] = ini.proj(I, D)
        w[p + "mlp.down_proj.weight"] = ini.proj(D, I)
    w["model.norm.weight"] = ini.norm(D)
    if not c["tie_word_embeddings"]:
        w["lm_head.weight"] = ini.proj(V, D, gain=4.0)
    dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}[spec["storage"]]
    return {k: v.to(dtype).contiguous() for k, v in w.items()}


def make_prompts(seed: int) -> list[list[int]]:
    g = torch.Generator().manual_seed(seed + 7)
    return [torch.randint(2, VOCAB, (n,), generator=g).tolist() for n in gg.PROMPT_LENS]


@torch.no_grad()
def recompute_greedy(model, prompt: list[int], n: int) -> tuple[list[int], float]:
    """Greedy by full recompute, and the smallest top-1 minus top-2 logit gap on the way."""
    ids, margin = list(prompt), float("inf")
    for _ in range(n):
        last = model(input_ids=torch.tensor([ids])).logits[0, -1]
        top = torch.topk(last, 2).values
        margin = min(margin, float(top[0] - top[1]))
        ids.append(int(last.argmax()))
    return ids[len(prompt):], margin


def generate(name: str) -> dict:
    spec = SPECS[name]
    out_dir = os.path.join(gg.OUT_ROOT, name)
    shutil.rmtree(out_dir, ignore_errors=True)
    os.makedirs(out_dir)
    gg.write_json(os.path.join(out_dir, "config.json"), spec["config"])
    gg.save_st(make_weights(spec), os.path.join(out_dir, "model.safetensors"))
    model = gg.hf_load(out_dir)
    prompts = make_prompts(spec["seed"])
    logits, greedy = gg.hf_logits_and_greedy(model, prompts)
    margin = float("inf")
    for p, g in zip(prompts, greedy):
        again, m = recompute_greedy(model, p, gg.GREEDY_NEW)
        if again != g:
            raise RuntimeError(f"{name}: generate() greedy {g} != full recompute {again}")
        margin = min(margin, m)
    gg.check_greedy(name, greedy)
    gg.save_st({f"logits.{i}": t.contiguous() for i, t in enumerate(logits)},
               os.path.join(out_dir, "golden.safetensors"))
    arch = spec["config"]["architectures"][0]
    golden = {
        "source": f"HF transformers {arch}, dtype=torch.float32, attn_implementation=eager, CPU, "
                  "single thread; logits from one full-prompt forward per prompt, greedy from "
                  f"generate(do_sample=False, max_new_tokens={gg.GREEDY_NEW}, no eos stop) on the "
                  f"{spec['storage']} weights (upcast to float32). {gg.versions()}",
        "prompts": prompts,
        "greedy": greedy,
        "notes": "generate() (KV cache) greedy == full-recompute greedy for all prompts.",
        "seed": spec["seed"],
        "min_greedy_logit_margin": margin,
    }
    gg.write_json(os.path.join(out_dir, "golden.json"), golden)
    return golden


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="*", default=list(SPECS), help=f"fixtures (default: all of {list(SPECS)})")
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    for n in args.names:
        if n not in SPECS:
            raise SystemExit(f"unknown fixture {n}; known: {list(SPECS)}")
        g = generate(n)
        print(f"{n}: size={gg.dir_size(os.path.join(gg.OUT_ROOT, n)) / 1e6:.2f} MB "
              f"min_greedy_margin={g['min_greedy_logit_margin']:.3g}")
        for p, s in zip(g["prompts"], g["greedy"]):
            print(f"  prompt len {len(p):2d} -> greedy {s}")


if __name__ == "__main__":
    main()
