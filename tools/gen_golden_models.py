#!/usr/bin/env python3
"""Generate tiny random DeepSeek checkpoints (Hugging Face layout) plus goldens.

Writes tests/fixtures/models/<name>/ for each fixture:
    config.json                     HF config as the real DeepSeek checkpoints have it
    model.safetensors               (or model-0000N-of-00002.safetensors + model.safetensors.index.json)
    golden.safetensors              F32 logits.<i>: [len(prompt_i), vocab], full-prompt forward
    golden.json                     prompts, 16 greedy tokens per prompt, cross-check numbers, notes

Goldens come from Hugging Face transformers in float32 where its semantics match
DeepSeek's, and from tools/deepseek_reference.py otherwise (see each fixture's
notes). Every HF golden is cross-checked against the reference.

Deterministic: fixed seeds, single-threaded torch; re-running rewrites identical files.

    python3 tools/gen_golden_models.py            # all fixtures
    python3 tools/gen_golden_models.py v3_fp8     # one fixture
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import shutil
import sys
import tempfile

import numpy
import safetensors
import torch
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import deepseek_reference as ref  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_ROOT = os.path.join(ROOT, "tests", "fixtures", "models")

VOCAB = 512
PROMPT_LENS = (1, 9, 70)  # 70 crosses a 64-token KV block boundary
GREEDY_NEW = 16
BOS, EOS = 0, 1

# ---------------------------------------------------------------------------
# Fixture specs
# ---------------------------------------------------------------------------

V2_COMMON = {
    "architectures": ["DeepseekV2ForCausalLM"],
    "attention_bias": False,
    "attention_dropout": 0.0,
    "aux_loss_alpha": 0.001,
    "bos_token_id": BOS,
    "eos_token_id": EOS,
    "hidden_act": "silu",
    "initializer_range": 0.02,
    "model_type": "deepseek_v2",
    "moe_layer_freq": 1,
    "pretraining_tp": 1,
    "rms_norm_eps": 1e-06,
    "rope_theta": 10000,
    "scoring_func": "softmax",
    "seq_aux": True,
    "tie_word_embeddings": False,
    "use_cache": True,
    "vocab_size": VOCAB,
}

SPECS = {
    "v2_lite_bf16": {
        "seed": 20240501,
        "storage": "bf16",
        "golden": "hf",
        "config": {
            **V2_COMMON,
            "first_k_dense_replace": 1,
            "hidden_size": 128,
            "intermediate_size": 256,
            "kv_lora_rank": 64,
            "max_position_embeddings": 163840,
            "moe_intermediate_size": 64,
            "n_group": 1,
            "n_routed_experts": 8,
            "n_shared_experts": 2,
            "norm_topk_prob": False,
            "num_attention_heads": 4,
            "num_experts_per_tok": 3,
            "num_hidden_layers": 3,
            "num_key_value_heads": 4,
            "q_lora_rank": None,
            "qk_nope_head_dim": 32,
            "qk_rope_head_dim": 16,
            "rope_scaling": {
                "beta_fast": 32,
                "beta_slow": 1,
                "factor": 40,
                "mscale": 0.707,
                "mscale_all_dim": 0.707,
                "original_max_position_embeddings": 4096,
                "type": "yarn",
            },
            "routed_scaling_factor": 1.0,
            "topk_group": 1,
            "topk_method": "greedy",
            "torch_dtype": "bfloat16",
            "v_head_dim": 32,
        },
    },
    "v3_fp8": {
        "seed": 20241235,
        "storage": "fp8",
        "golden": "hf",
        "shards": 2,
        "config": {
            "architectures": ["DeepseekV3ForCausalLM"],
            "attention_bias": False,
            "attention_dropout": 0.0,
            "aux_loss_alpha": 0.001,
            "bos_token_id": BOS,
            "eos_token_id": EOS,
            "ep_size": 1,
            "first_k_dense_replace": 1,
            "hidden_act": "silu",
            "hidden_size": 200,
            "initializer_range": 0.02,
            "intermediate_size": 320,
            "kv_lora_rank": 112,
            "max_position_embeddings": 1024,
            "model_type": "deepseek_v3",
            "moe_intermediate_size": 72,
            "moe_layer_freq": 1,
            "n_group": 4,
            "n_routed_experts": 16,
            "n_shared_experts": 1,
            "norm_topk_prob": True,
            "num_attention_heads": 4,
            "num_experts_per_tok": 4,
            "num_hidden_layers": 3,
            "num_key_value_heads": 4,
            "num_nextn_predict_layers": 1,
            "pretraining_tp": 1,
            "q_lora_rank": 96,
            "qk_nope_head_dim": 32,
            "qk_rope_head_dim": 16,
            "quantization_config": {
                "activation_scheme": "dynamic",
                "fmt": "e4m3",
                "quant_method": "fp8",
                "weight_block_size": [128, 128],
            },
            "rms_norm_eps": 1e-06,
            "rope_scaling": {
                "beta_fast": 32,
                "beta_slow": 1,
                "factor": 4,
                "mscale": 1.0,
                "mscale_all_dim": 1.0,
                "original_max_position_embeddings": 256,
                "type": "yarn",
            },
            "rope_theta": 10000,
            "routed_scaling_factor": 2.5,
            "scoring_func": "sigmoid",
            "seq_aux": True,
            "tie_word_embeddings": False,
            "topk_group": 2,
            "topk_method": "noaux_tc",
            "torch_dtype": "bfloat16",
            "use_cache": True,
            "v_head_dim": 40,
            "vocab_size": VOCAB,
        },
    },
    "v2_group_f16": {
        "seed": 20240507,
        "storage": "f16",
        "golden": "reference",
        "config": {
            **V2_COMMON,
            "first_k_dense_replace": 1,
            "hidden_size": 96,
            "intermediate_size": 192,
            "kv_lora_rank": 48,
            "max_position_embeddings": 8192,
            "moe_intermediate_size": 48,
            "n_group": 4,
            "n_routed_experts": 16,
            "n_shared_experts": 1,
            "norm_topk_prob": True,
            "num_attention_heads": 4,
            "num_experts_per_tok": 4,
            "num_hidden_layers": 2,
            "num_key_value_heads": 4,
            "q_lora_rank": 64,
            "qk_nope_head_dim": 24,
            "qk_rope_head_dim": 8,
            "rope_scaling": {
                "beta_fast": 32,
                "beta_slow": 1,
                "factor": 16,
                "mscale": 0.707,
                "mscale_all_dim": 0.707,
                "original_max_position_embeddings": 512,
                "type": "yarn",
            },
            "routed_scaling_factor": 16.0,
            "topk_group": 2,
            "topk_method": "group_limited_greedy",
            "torch_dtype": "float16",
            "v_head_dim": 24,
        },
    },
}

# ---------------------------------------------------------------------------
# Weights
# ---------------------------------------------------------------------------


class Init:
    def __init__(self, seed: int):
        self.g = torch.Generator().manual_seed(seed)

    def normal(self, shape, std, mean=0.0):
        return torch.randn(*shape, generator=self.g, dtype=torch.float32) * std + mean

    def proj(self, out_f, in_f, gain=1.0):
        # std ~ 1/sqrt(fan_in) keeps activations O(1); clamp to the 0.02..0.1 range
        std = min(max(1.0 / math.sqrt(in_f), 0.02), 0.1) * gain
        return self.normal((out_f, in_f), std)

    def norm(self, n):
        return self.normal((n,), 0.1, 1.0)


def make_layer(ini: Init, c: dict, i: int, routed_gain: float) -> dict[str, torch.Tensor]:
    """One decoder layer, HF names, float32 master values."""
    p = f"model.layers.{i}"
    d = c["hidden_size"]
    H = c["num_attention_heads"]
    qk = c["qk_nope_head_dim"] + c["qk_rope_head_dim"]
    w: dict[str, torch.Tensor] = {}
    w[f"{p}.input_layernorm.weight"] = ini.norm(d)
    a = f"{p}.self_attn"
    if c["q_lora_rank"]:
        w[f"{a}.q_a_proj.weight"] = ini.proj(c["q_lora_rank"], d)
        w[f"{a}.q_a_layernorm.weight"] = ini.norm(c["q_lora_rank"])
        w[f"{a}.q_b_proj.weight"] = ini.proj(H * qk, c["q_lora_rank"])
    else:
        w[f"{a}.q_proj.weight"] = ini.proj(H * qk, d)
    w[f"{a}.kv_a_proj_with_mqa.weight"] = ini.proj(c["kv_lora_rank"] + c["qk_rope_head_dim"], d)
    w[f"{a}.kv_a_layernorm.weight"] = ini.norm(c["kv_lora_rank"])
    w[f"{a}.kv_b_proj.weight"] = ini.proj(H * (c["qk_nope_head_dim"] + c["v_head_dim"]), c["kv_lora_rank"])
    w[f"{a}.o_proj.weight"] = ini.proj(d, H * c["v_head_dim"])
    w[f"{p}.post_attention_layernorm.weight"] = ini.norm(d)
    m = f"{p}.mlp"
    if i < c["first_k_dense_replace"]:
        I = c["intermediate_size"]
        w[f"{m}.gate_proj.weight"] = ini.proj(I, d)
        w[f"{m}.up_proj.weight"] = ini.proj(I, d)
        w[f"{m}.down_proj.weight"] = ini.proj(d, I)
    else:
        E, I = c["n_routed_experts"], c["moe_intermediate_size"]
        # router logits with std ~1.5: clear but not one-hot routing
        w[f"{m}.gate.weight"] = ini.normal((E, d), 1.5 / math.sqrt(d))
        if c["model_type"] == "deepseek_v3":
            # large enough that some biased sigmoid scores are negative
            w[f"{m}.gate.e_score_correction_bias"] = ini.normal((E,), 0.4, -0.4)
        for e in range(E):
            w[f"{m}.experts.{e}.gate_proj.weight"] = ini.proj(I, d)
            w[f"{m}.experts.{e}.up_proj.weight"] = ini.proj(I, d)
            w[f"{m}.experts.{e}.down_proj.weight"] = ini.proj(d, I, gain=routed_gain)
        S = I * c["n_shared_experts"]
        w[f"{m}.shared_experts.gate_proj.weight"] = ini.proj(S, d)
        w[f"{m}.shared_experts.up_proj.weight"] = ini.proj(S, d)
        w[f"{m}.shared_experts.down_proj.weight"] = ini.proj(d, S)
    return w


def make_weights(spec: dict) -> dict[str, torch.Tensor]:
    c = spec["config"]
    ini = Init(spec["seed"])
    d, V = c["hidden_size"], c["vocab_size"]
    # keep the total routed contribution O(1) whatever routed_scaling_factor is
    routed_gain = 1.0 / math.sqrt(max(c["routed_scaling_factor"], 1.0))
    w: dict[str, torch.Tensor] = {"model.embed_tokens.weight": ini.normal((V, d), 1.0)}
    for i in range(c["num_hidden_layers"]):
        w.update(make_layer(ini, c, i, routed_gain))
    w["model.norm.weight"] = ini.norm(d)
    w["lm_head.weight"] = ini.normal((V, d), 2.0 / math.sqrt(d))
    for j in range(c.get("num_nextn_predict_layers", 0)):
        # MTP module, laid out as the real DeepSeek-V3 checkpoint: model.layers.<num_hidden_layers + j>.*
        i = c["num_hidden_layers"] + j
        p = f"model.layers.{i}"
        w[f"{p}.embed_tokens.weight"] = w["model.embed_tokens.weight"].clone()
        w[f"{p}.enorm.weight"] = ini.norm(d)
        w[f"{p}.hnorm.weight"] = ini.norm(d)
        w[f"{p}.eh_proj.weight"] = ini.proj(d, 2 * d)
        w.update(make_layer(ini, c, i, routed_gain))
        w[f"{p}.shared_head.norm.weight"] = ini.norm(d)
        w[f"{p}.shared_head.head.weight"] = w["lm_head.weight"].clone()
    return w


FP8_SUFFIXES = (
    "q_proj.weight", "q_a_proj.weight", "q_b_proj.weight", "kv_a_proj_with_mqa.weight", "kv_b_proj.weight",
    "o_proj.weight", "gate_proj.weight", "up_proj.weight", "down_proj.weight",
)


def to_storage(w: dict[str, torch.Tensor], storage: str) -> dict[str, torch.Tensor]:
    """Cast float32 masters to the checkpoint's stored dtypes (HF layout)."""
    out: dict[str, torch.Tensor] = {}
    for k, t in w.items():
        if storage == "bf16":
            out[k] = t.to(torch.bfloat16)
        elif storage == "f16":
            out[k] = t.to(torch.float16)
        elif storage == "fp8":
            # like DeepSeek-V3: attention/MLP/expert linear weights FP8 with 128x128 block scales;
            # embeddings, heads, norms, router gate and eh_proj in BF16; correction bias F32.
            if k.endswith(FP8_SUFFIXES) and ".layers." in k:
                q, s = ref.quant_fp8_block(t)
                out[k] = q
                out[k + "_scale_inv"] = s
            elif k.endswith("e_score_correction_bias"):
                out[k] = t.float()
            else:
                out[k] = t.to(torch.bfloat16)
        else:
            raise ValueError(storage)
        if k.endswith("e_score_correction_bias"):
            out[k] = t.float()
    return out


def tensor_bytes(t: torch.Tensor) -> int:
    return t.numel() * t.element_size()


def layer_sort_key(name: str):
    parts = name.split(".")
    if name.startswith("model.embed_tokens"):
        return (0, 0, name)
    if name.startswith("model.layers."):
        return (1, int(parts[2]), name)
    if name.startswith("model.norm"):
        return (2, 0, name)
    return (3, 0, name)


def write_checkpoint(out_dir: str, tensors: dict[str, torch.Tensor], shards: int) -> None:
    if shards <= 1:
        save_st(tensors, os.path.join(out_dir, "model.safetensors"))
        return
    names = sorted(tensors, key=layer_sort_key)
    total = sum(tensor_bytes(tensors[n]) for n in names)
    target = total / shards
    groups: list[list[str]] = [[]]
    acc = 0
    for n in names:
        # cut by bytes, so a decoder layer may straddle two files as in the real checkpoints,
        # but keep each weight next to its scale_inv
        if acc >= target * len(groups) and len(groups) < shards and not n.endswith("_scale_inv"):
            groups.append([])
        groups[-1].append(n)
        acc += tensor_bytes(tensors[n])
    weight_map = {}
    for si, g in enumerate(groups):
        fn = f"model-{si + 1:05d}-of-{shards:05d}.safetensors"
        save_st({n: tensors[n] for n in g}, os.path.join(out_dir, fn))
        for n in g:
            weight_map[n] = fn
    index = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
    with open(os.path.join(out_dir, "model.safetensors.index.json"), "w") as f:
        json.dump(index, f, indent=2)
        f.write("\n")


def write_json(path: str, obj) -> None:
    text = json.dumps(obj, indent=2)
    # keep flat lists of numbers (token ids, shapes, counts) on one line
    text = re.sub(r"\[\s*([-0-9.e, \n]+?)\s*\]", lambda m: "[" + re.sub(r"\s+", " ", m.group(1)) + "]", text)
    with open(path, "w") as f:
        f.write(text + "\n")


def save_st(tensors: dict[str, torch.Tensor], path: str) -> None:
    save_file(tensors, path, metadata={"format": "pt"})
    os.chmod(path, 0o644)


# ---------------------------------------------------------------------------
# Goldens
# ---------------------------------------------------------------------------


def make_prompts(seed: int) -> list[list[int]]:
    g = torch.Generator().manual_seed(seed + 7)
    return [torch.randint(2, VOCAB, (n,), generator=g).tolist() for n in PROMPT_LENS]


def hf_load(model_dir: str):
    from transformers import AutoModelForCausalLM

    model, info = AutoModelForCausalLM.from_pretrained(
        model_dir, dtype=torch.float32, attn_implementation="eager", output_loading_info=True
    )
    bad = {k: v for k, v in info.items() if v and k in ("missing_keys", "unexpected_keys", "mismatched_keys")}
    if bad:
        raise RuntimeError(f"HF load of {model_dir} not clean: {bad}")
    for n, p in model.named_parameters():
        if p.dtype != torch.float32:
            raise RuntimeError(f"HF parameter {n} is {p.dtype}, expected float32")
    model.eval()
    return model


@torch.no_grad()
def hf_logits_and_greedy(model, prompts):
    from transformers import GenerationConfig

    gc = GenerationConfig(
        do_sample=False, max_new_tokens=GREEDY_NEW, num_beams=1, use_mtp=False,
        eos_token_id=None, pad_token_id=BOS, bos_token_id=BOS,
    )
    logits, greedy = [], []
    for p in prompts:
        ids = torch.tensor([p], dtype=torch.long)
        logits.append(model(input_ids=ids).logits[0].float().clone())
        out = model.generate(ids, attention_mask=torch.ones_like(ids), generation_config=gc)
        greedy.append(out[0, len(p):].tolist())
    return logits, greedy


def hf_f32_copy(src_dir: str, dst_dir: str, cfg: dict) -> None:
    """Float32 copy for HF: FP8 dequantised with DeepSeek's 128x128 block rule,
    quantization_config removed, MTP layers dropped (HF does not model them)."""
    state = ref.load_f32_state(src_dir)
    n_main = cfg["num_hidden_layers"]
    keep = {}
    for k, t in state.items():
        if k.startswith("model.layers.") and int(k.split(".")[2]) >= n_main:
            continue
        keep[k] = t.contiguous()
    save_file(keep, os.path.join(dst_dir, "model.safetensors"), metadata={"format": "pt"})
    c = dict(cfg)
    c.pop("quantization_config", None)
    c["torch_dtype"] = "float32"
    write_json(os.path.join(dst_dir, "config.json"), c)


def max_rel(a_list, b_list) -> float:
    """max |a - b| / max |b| over all logits of all prompts."""
    num = max(float((a - b).abs().max()) for a, b in zip(a_list, b_list))
    den = max(float(b.abs().max()) for b in b_list)
    return num / den


def routing_summary(model: ref.DeepseekReference, prompts) -> dict:
    model.router_stats = []
    model.record_routing = True
    for p in prompts:
        model.forward(p)
    model.record_routing = False
    E = model.c.n_routed_experts
    counts = torch.zeros(E, dtype=torch.long)
    for s in model.router_stats:
        counts += torch.bincount(s["indices"].flatten(), minlength=E)
    gm = [s["group_margin"] for s in model.router_stats if s["group_margin"] is not None]
    return {
        "expert_use_counts": counts.tolist(),
        "min_topk_margin": min(s["expert_margin"] for s in model.router_stats),
        "min_group_margin": min(gm) if gm else None,
        "any_negative_biased_score": any(s["any_negative_biased_score"] for s in model.router_stats),
        "min_selected_biased_score": min(s["min_selected_biased_score"] for s in model.router_stats),
    }


def check_greedy(name, greedy):
    """Non-degenerate: >= 12 distinct tokens of 16, no repeated trigram (no short cycle), no bos/eos."""
    for g in greedy:
        assert len(g) == GREEDY_NEW, (name, g)
        assert len(set(g)) >= 12, f"{name}: degenerate greedy sequence {g}"
        trigrams = list(zip(g, g[1:], g[2:]))
        assert len(set(trigrams)) == len(trigrams), f"{name}: greedy falls into a cycle {g}"
        assert EOS not in g and BOS not in g, f"{name}: greedy hits bos/eos {g}"


def min_greedy_margin(model: ref.DeepseekReference, prompts, greedy) -> float:
    """Smallest top-1 minus top-2 logit gap over all greedy steps (reference, full recompute)."""
    m = float("inf")
    for p, g in zip(prompts, greedy):
        logits = model.forward(p + g[:-1])[len(p) - 1:]
        top2 = logits.topk(2, dim=-1)[0]
        m = min(m, float((top2[:, 0] - top2[:, 1]).min()))
    return m


def versions() -> str:
    import transformers

    return (
        f"torch {torch.__version__}, transformers {transformers.__version__}, "
        f"safetensors {safetensors.__version__}, numpy {numpy.__version__}, python {platform.python_version()}"
    )


def generate(name: str) -> dict:
    spec = SPECS[name]
    cfg = spec["config"]
    out_dir = os.path.join(OUT_ROOT, name)
    if os.path.isdir(out_dir):
        shutil.rmtree(out_dir)
    os.makedirs(out_dir)

    import transformers

    cfg = {**cfg, "transformers_version": transformers.__version__}
    write_json(os.path.join(out_dir, "config.json"), cfg)
    master = make_weights(spec)
    write_checkpoint(out_dir, to_storage(master, spec["storage"]), spec.get("shards", 1))

    prompts = make_prompts(spec["seed"])
    # Each model family follows its own authors' routing code: DeepSeek-V2's modeling_deepseek.py
    # normalises OR scales the top-k weights, DeepSeek-V3's reference normalises AND scales.
    convention = "v2_remote" if cfg["model_type"] == "deepseek_v2" else "deepseek"
    refm = ref.DeepseekReference(out_dir, router_convention=convention)
    ref_logits = [refm.forward(p) for p in prompts]
    ref_greedy = [refm.greedy(p, GREEDY_NEW) for p in prompts]
    routing = routing_summary(refm, prompts)
    routing["min_greedy_logit_margin"] = min_greedy_margin(refm, prompts, ref_greedy)

    with tempfile.TemporaryDirectory() as tmp:
        if spec["storage"] == "fp8":
            hf_f32_copy(out_dir, tmp, cfg)
            hf_dir = tmp
        else:
            hf_dir = out_dir
        hf = hf_load(hf_dir)
        hf_logits, hf_greedy = hf_logits_and_greedy(hf, prompts)
        del hf

    extra: dict = {}
    notes: list[str] = []
    hf_vs_ref = max_rel(hf_logits, ref_logits)
    if cfg["model_type"] == "deepseek_v2" and spec["golden"] == "hf":
        notes.append(
            "HF's DeepseekV2 routing (never normalise, always x routed_scaling_factor) equals DeepSeek's here "
            "because norm_topk_prob is false."
        )
    notes.append(
        "YaRN is active: max_position_embeddings (%d) > original_max_position_embeddings (%d); DeepSeek's reference "
        "applies the inv_freq correction and the softmax mscale only in that case, HF always does. Softmax scale = "
        "qk_head_dim**-0.5 * mscale(factor, mscale_all_dim)**2 = %.9g."
        % (cfg["max_position_embeddings"], cfg["rope_scaling"]["original_max_position_embeddings"], refm.softmax_scale)
    )
    if spec["golden"] == "hf":
        gold_logits, gold_greedy = hf_logits, hf_greedy
        ref_rel = hf_vs_ref
        if hf_greedy != ref_greedy:
            notes.append(f"HF generate greedy differs from reference full-recompute greedy: {ref_greedy}")
        else:
            notes.append("HF generate (KV cache) greedy == reference full-recompute greedy for all prompts.")
    else:
        gold_logits, gold_greedy = ref_logits, ref_greedy
        ref_rel = 0.0
        hf_like = ref.DeepseekReference(out_dir, router_convention="hf_v2", state=refm.w)
        hf_like_logits = [hf_like.forward(p) for p in prompts]
        v2r = ref.DeepseekReference(out_dir, router_convention="deepseek", state=refm.w)
        v2r_logits = [v2r.forward(p) for p in prompts]
        v2r_greedy = [v2r.greedy(p, GREEDY_NEW) for p in prompts]
        alt_tensors = {f"v3_rule_logits.{i}": l.contiguous().float() for i, l in enumerate(v2r_logits)}
        extra["alt_golden_v3_rule"] = {
            "description": "Same prompts under DeepSeek-V3's routing rule (normalise when norm_topk_prob, "
                           "and then multiply by routed_scaling_factor). Logits in golden.safetensors as "
                           "v3_rule_logits.<i>; greedy by full recompute.",
            "tensor_prefix": "v3_rule_logits.",
            "greedy": v2r_greedy,
        }
        extra["hf_cross_check"] = {
            "hf_vs_golden_max_rel_diff": hf_vs_ref,
            "hf_vs_reference_with_hf_v2_routing_max_rel_diff": max_rel(hf_logits, hf_like_logits),
            "v3_rule_routing_vs_golden_max_rel_diff": max_rel(v2r_logits, ref_logits),
            "hf_greedy": hf_greedy,
        }
        notes.append(
            "Golden is tools/deepseek_reference.py (float32), not HF: HF transformers' DeepseekV2 router ignores "
            "norm_topk_prob (never normalises, always multiplies by routed_scaling_factor), so HF is off here "
            f"(max rel diff {hf_vs_ref:.3g}). Running the reference with HF's routing rule instead agrees with HF to "
            f"{extra['hf_cross_check']['hf_vs_reference_with_hf_v2_routing_max_rel_diff']:.3g}, which validates "
            "everything but the routing weights."
        )
        notes.append(
            "Routing rule used: DeepSeek-V2's own modeling_deepseek.py: top-k softmax weights normalised to sum 1 "
            "(norm_topk_prob) and then NOT multiplied by routed_scaling_factor (it scales only un-normalised "
            "weights). DeepSeek-V3's rule (normalise, then scale; also vLLM/SGLang) gives logits "
            f"{extra['hf_cross_check']['v3_rule_routing_vs_golden_max_rel_diff']:.3g} (max rel) away from this "
            "golden and is provided separately as alt_golden_v3_rule (v3_rule_logits.<i>)."
        )

    if name == "v3_fp8":
        zero = ref.DeepseekReference(out_dir, state=refm.w)
        zero.dropped_group_fill = 0.0
        zero_logits = [zero.forward(p) for p in prompts]
        extra["zero_fill_vs_golden_max_rel_diff"] = max_rel(zero_logits, ref_logits)
        notes.append(
            "e_score_correction_bias ~ N(-0.4, 0.4) makes some biased scores negative: masking dropped groups "
            "with 0 instead of -inf changes expert choices here (logits %.3g max rel away from the golden)."
            % extra["zero_fill_vs_golden_max_rel_diff"]
        )
        notes.append(
            "HF was run on a float32 copy written by this tool (FP8 dequantised with DeepSeek's fixed 128x128 blocks, "
            "edge blocks cropped; quantization_config removed; MTP layer dropped), never on the FP8 files: HF's own "
            "FP8 loader derives blocks from shape/scale-grid and is wrong for dims that are not multiples of 128."
        )
        notes.append(
            "MTP weights are present as model.layers.3.* (enorm, hnorm, eh_proj [BF16, d x 2d], a full MoE decoder "
            "layer, shared_head.norm, shared_head.head, embed_tokens) but no golden covers them; logits are from the "
            "3 main layers only."
        )
        notes.append(
            "Logits are unaffected by HF's V3 rotary layout of intermediates ([evens|odds] vs DeepSeek's interleaved "
            "pairs); do not compare cached k_pe against HF without un-permuting."
        )
    gen = GREEDY_NEW
    check_greedy(name, gold_greedy)
    if "alt_golden_v3_rule" in extra:
        check_greedy(name + " (v3 rule)", extra["alt_golden_v3_rule"]["greedy"])

    golden_tensors = {f"logits.{i}": l.contiguous().float() for i, l in enumerate(gold_logits)}
    if spec["golden"] != "hf":
        golden_tensors.update(alt_tensors)
    save_st(golden_tensors, os.path.join(out_dir, "golden.safetensors"))
    if spec["golden"] == "hf":
        source = (
            "HF transformers DeepseekV%sForCausalLM, dtype=torch.float32, attn_implementation=eager, CPU, "
            "single thread; logits from one full-prompt forward per prompt, greedy from generate(do_sample=False, "
            "max_new_tokens=%d, no eos stop) on %s. Cross-checked against tools/deepseek_reference.py. %s"
        ) % (
            "3" if cfg["model_type"] == "deepseek_v3" else "2",
            gen,
            "a float32 dequantised copy of the FP8 checkpoint" if spec["storage"] == "fp8"
            else f"the {spec['storage']} weights upcast to float32",
            versions(),
        )
    else:
        source = (
            "tools/deepseek_reference.py (DeepSeek reference semantics, float32, CPU, single thread) on the f16 "
            "weights upcast to float32; logits from one full-prompt forward per prompt, greedy by full recompute "
            "(%d tokens). HF transformers cross-checked, see hf_cross_check. %s"
        ) % (gen, versions())
    golden = {
        "source": source,
        "prompts": prompts,
        "greedy": gold_greedy,
        "reference_max_rel_diff": ref_rel,
        "notes": " ".join(notes),
        "seed": spec["seed"],
        "routing": routing,
        **extra,
    }
    if spec["golden"] == "hf":
        golden["reference_greedy"] = ref_greedy
    write_json(os.path.join(out_dir, "golden.json"), golden)
    return golden


def dir_size(path: str) -> int:
    return sum(os.path.getsize(os.path.join(path, f)) for f in os.listdir(path))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="*", default=list(SPECS), help=f"fixtures to build (default: all of {list(SPECS)})")
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    for n in args.names:
        if n not in SPECS:
            raise SystemExit(f"unknown fixture {n}; known: {list(SPECS)}")
        g = generate(n)
        print(f"{n}: reference_max_rel_diff={g['reference_max_rel_diff']:.3g} "
              f"size={dir_size(os.path.join(OUT_ROOT, n)) / 1e6:.2f} MB")
        for p, s in zip(g["prompts"], g["greedy"]):
            print(f"  prompt len {len(p):2d} -> greedy {s}")
        r = g["routing"]
        print(f"  routing: use={r['expert_use_counts']} min_topk_margin={r['min_topk_margin']:.3g} "
              f"min_group_margin={r['min_group_margin']} neg_biased={r['any_negative_biased_score']}")
        if "hf_cross_check" in g:
            x = g["hf_cross_check"]
            print(f"  hf_cross_check: {({k: v for k, v in x.items() if k != 'hf_greedy'})}")


if __name__ == "__main__":
    main()
