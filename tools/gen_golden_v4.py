#!/usr/bin/env python3
"""Generate the DeepSeek-V4 golden fixture tests/fixtures/models/v4_tiny.

A tiny random checkpoint with V4's structure, in the layout transformers' DeepseekV4ForCausalLM
writes with save_pretrained (DeepSeek's own tensor names under "model.": attn.wq_a,
attn.compressor.wkv / wgate / ape / norm, attn.indexer.*, ffn.gate.tid2eid, ffn.experts.<e>.w1 /
w2 / w3, hc_attn_fn, ...): every layer type (sliding, CSA with rate 4 and the lightning indexer,
HCA with rate 128), hash-routed and top-k routed MoE, mHC with hc_mult 3, sizes that are not
multiples of 128. The attention / shared-expert projections are FP8 E4M3 with 128x128 block
scales (as the release); routed experts FP4 (E2M1 + E8M0 per 32 inputs); norms, mHC,
compressor and router weights F32.

Goldens: tools/deepseek_v4_reference.py (DeepSeek's published V4 inference semantics, float32) on
the stored weights with FP8 dequantised by DeepSeek's 128x128 rule (../shared/PEERS.md); logits of
one full-prompt forward, greedy continuations by full recompute. transformers is used only to
write the checkpoint layout; its deepseek_v4 agrees with the reference to 1e-6 on the chosen seed.
The indexer's top-k is discontinuous: seeds with a top-k boundary within 1e-4 (relative) of a tie
(e.g. several compressed entries scoring exactly 0 after the relu) are skipped.

    python3 tools/gen_golden_v4.py
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import deepseek_reference as ref  # noqa: E402
import deepseek_v4_reference as v4ref  # noqa: E402
import gen_fp4_fixture as fp4  # noqa: E402
import gen_golden_models as gen  # noqa: E402

NAME = "v4_tiny"
SEED = 20260424
VOCAB = 512
PROMPT_LENS = (1, 9, 150, 300)  # past the window (12), 37 / 75 CSA windows, one / two HCA windows of 128
GREEDY_NEW = 12

CONFIG = dict(
    vocab_size=VOCAB, hidden_size=72, moe_intermediate_size=40, num_hidden_layers=4,
    num_attention_heads=4, num_key_value_heads=1, head_dim=40, q_lora_rank=24,
    num_experts_per_tok=2, n_routed_experts=6, n_shared_experts=1, scoring_func="sqrtsoftplus",
    norm_topk_prob=True, routed_scaling_factor=1.5, max_position_embeddings=512,
    rope_theta=10000.0, compress_rope_theta=160000.0, partial_rotary_factor=0.4,
    layer_types=["sliding_attention", "compressed_sparse_attention", "heavily_compressed_attention",
                 "compressed_sparse_attention"],
    mlp_layer_types=["hash_moe", "hash_moe", "moe", "moe"],
    compress_rates={"compressed_sparse_attention": 4, "heavily_compressed_attention": 128},
    rope_parameters={"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 128,
                     "beta_fast": 32, "beta_slow": 1},
    hc_mult=3, hc_sinkhorn_iters=20, hc_eps=1e-6, swiglu_limit=10.0, sliding_window=12,
    o_groups=2, o_lora_rank=20, index_n_heads=8, index_head_dim=24, index_topk=3,
    num_nextn_predict_layers=0, bos_token_id=0, eos_token_id=1, tie_word_embeddings=False,
    rms_norm_eps=1e-6,
)
FP8_SUFFIXES = ("attn.wq_a.weight", "attn.wq_b.weight", "attn.wkv.weight", "attn.wo_a.weight",
                "attn.wo_b.weight", "indexer.wq_b.weight", "shared_experts.w1.weight",
                "shared_experts.w2.weight", "shared_experts.w3.weight")


def make_weights(model, seed: int) -> None:
    """Random masters for every parameter (float32), written into the HF model."""
    g = torch.Generator().manual_seed(seed)
    c = model.config

    def normal(shape, std):
        return torch.randn(shape, generator=g) * std

    with torch.no_grad():
        for name, p in model.named_parameters():
            shape = tuple(p.shape)
            if name.endswith(("norm.weight", "layernorm.weight")):
                v = 1 + normal(shape, 0.1)
            elif name.endswith("sinks"):
                v = normal(shape, 1.0)
            elif name.endswith("position_bias"):
                v = normal(shape, 0.5)
            elif name.endswith(("hc.fn", "hc_head.hc_fn")):
                v = normal(shape, 0.5 / shape[-1] ** 0.5)
            elif name.endswith(("hc.base", "hc_base")):
                v = normal(shape, 0.5)
            elif name.endswith(("hc.scale", "hc_scale")):
                v = 1 + normal(shape, 0.2)
            elif name.endswith("embed_tokens.weight"):
                v = normal(shape, 1.0)
            elif name.endswith("experts.gate_up_proj") or name.endswith("experts.down_proj"):
                v = normal(shape, 1.0 / shape[-1] ** 0.5)
            elif len(shape) == 2:
                v = normal(shape, 1.0 / shape[-1] ** 0.5)
            else:
                raise RuntimeError(f"no init for {name} {shape}")
            p.copy_(v)
        for i, layer in enumerate(model.model.layers):
            gate = layer.mlp.gate
            if hasattr(gate, "tid2eid"):
                # distinct experts per token
                t = torch.stack([torch.randperm(c.n_routed_experts, generator=g)[:c.num_experts_per_tok]
                                 for _ in range(c.vocab_size)])
                gate.tid2eid.copy_(t)
            else:
                gate.e_score_correction_bias.copy_(normal((c.n_routed_experts,), 0.1))


def is_routed_expert(k: str) -> bool:
    return ".ffn.experts." in k and k.endswith(".weight")


def to_storage(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Storage dtypes; routed experts FP4 (E2M1 + E8M0 per 32 inputs, as the V4 release): layers
    0-1 as int8 codes + `.scale`, layers 2-3 as float4_e2m1fn_x2 + `.weight_scale_inv`."""
    out = {}
    for k, t in state.items():
        if is_routed_expert(k):
            packed, exps = fp4.quant_fp4(t.float())
            if int(k.split(".")[2]) < 2:
                out[k] = packed.view(torch.int8)
                out[k[: -len(".weight")] + ".scale"] = exps.view(torch.float8_e8m0fnu)
            else:
                out[k] = packed.view(torch.float4_e2m1fn_x2)
                out[k + "_scale_inv"] = exps.view(torch.float8_e8m0fnu)
        elif k.endswith(FP8_SUFFIXES):
            q, s = ref.quant_fp8_block(t)
            out[k], out[k + "_scale_inv"] = q, s
        elif ".experts." in k or k.endswith(("embed_tokens.weight", "head.weight")):
            out[k] = t.to(torch.bfloat16)
        elif k.endswith("tid2eid"):
            out[k] = t.to(torch.int64)
        else:
            out[k] = t.float().contiguous()
    return out


def build(out_dir: str, seed: int):
    """Writes the fixture for `seed`; returns (prompts, logits, greedy, greedy margin, index gap)."""
    from safetensors.torch import load_file
    from transformers import DeepseekV4Config, DeepseekV4ForCausalLM

    if os.path.isdir(out_dir):
        shutil.rmtree(out_dir)
    os.makedirs(out_dir)
    cfg = DeepseekV4Config(**CONFIG)
    model = DeepseekV4ForCausalLM(cfg).float()
    make_weights(model, seed)
    with tempfile.TemporaryDirectory() as tmp:
        # transformers writes the checkpoint layout (its reverse key mapping) and config.json.
        model.save_pretrained(tmp)
        state = load_file(os.path.join(tmp, "model.safetensors"))
        with open(os.path.join(tmp, "config.json")) as f:
            config_json = json.load(f)
    config_json["quantization_config"] = {"quant_method": "fp8", "fmt": "e4m3", "activation_scheme": "dynamic",
                                          "weight_block_size": [128, 128], "expert_dtype": "fp4"}
    config_json["torch_dtype"] = "bfloat16"
    config_json.pop("dtype", None)
    gen.write_json(os.path.join(out_dir, "config.json"), config_json)
    stored = to_storage(state)
    gen.save_st(stored, os.path.join(out_dir, "model.safetensors"))
    # float32 copy the reference runs on: FP8 by DeepSeek's 128x128 blocks, FP4 by its table
    f32 = {}
    for k, t in stored.items():
        if k.endswith(("_scale_inv", ".scale")):
            continue
        if is_routed_expert(k):
            sk = k + "_scale_inv" if (k + "_scale_inv") in stored else k[: -len(".weight")] + ".scale"
            f32[k] = fp4.dequant_fp4(t.view(torch.uint8), stored[sk])
        elif t.dtype == torch.float8_e4m3fn:
            f32[k] = ref.dequant_fp8_block(t, stored[k + "_scale_inv"])
        else:
            f32[k] = t.float()

    g = torch.Generator().manual_seed(seed + 7)
    prompts = [torch.randint(2, VOCAB, (n,), generator=g).tolist() for n in PROMPT_LENS]
    r = v4ref.V4Reference(out_dir, state=f32)
    logits = [r.logits(p) for p in prompts]
    greedy, margin = [], float("inf")
    for p, lg in zip(prompts, logits):
        seq, out = list(p), []
        last = lg[-1]
        for _ in range(GREEDY_NEW):
            top2 = last.topk(2)[0]
            margin = min(margin, float(top2[0] - top2[1]))
            out.append(int(last.argmax()))
            seq.append(out[-1])
            last = r.logits(seq)[-1]
        greedy.append(out)
    return prompts, logits, greedy, margin, r.min_index_gap


def main() -> None:
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    out_dir = os.path.join(gen.OUT_ROOT, NAME)
    for seed in range(SEED, SEED + 20):
        prompts, logits, greedy, margin, gap = build(out_dir, seed)
        print(f"seed {seed}: greedy margin {margin:.3g}, smallest indexer top-k gap {gap:.3g}")
        if gap > 1e-4 and margin > 1e-3:
            break
    else:
        raise SystemExit("no seed whose indexer selections and greedy tokens are robust to rounding")
    gen.save_st({f"logits.{i}": l.contiguous() for i, l in enumerate(logits)},
                os.path.join(out_dir, "golden.safetensors"))
    rate = CONFIG["compress_rates"]["compressed_sparse_attention"]
    golden = {
        "source": "tools/deepseek_v4_reference.py (float32, CPU; the semantics of DeepSeek's published V4 "
                  "inference code) on the checkpoint with FP8 weights dequantised by 128x128 blocks; logits "
                  "of one full-prompt forward per prompt, greedy continuations by full recompute (%d tokens). %s"
                  % (GREEDY_NEW, gen.versions()),
        "prompts": prompts,
        "greedy": greedy,
        "min_greedy_logit_margin": margin,
        "min_indexer_topk_gap": gap,
        # Positions before the indexer has more than index_topk closed windows to choose from: the
        # bf16 run is held to the bar there only (a discontinuous top-k may flip under bf16 rounding).
        "index": {"index_topk": rate * (CONFIG["index_topk"] + 1) - 1},
        "notes": "Layers: sliding+hash, CSA(rate 4, indexer top-%d of %d heads)+hash, HCA(rate 128)+top-k, "
                 "CSA+top-k; window %d; hc_mult 3; routed experts FP4 (layers 0-1 I8 + .scale, 2-3 F4 + .weight_scale_inv), attention / shared expert FP8. The 150- and "
                 "300-token prompts pass the window, many CSA windows and one / two HCA windows. Seeds whose "
                 "indexer top-k is within 1e-4 (relative) or greedy argmax within 1e-3 of a tie are skipped. HF transformers 5.25's "
                 "deepseek_v4 agrees with the reference to 1e-6 wherever the indexer selects every visible entry."
                 % (CONFIG["index_topk"], CONFIG["index_n_heads"], CONFIG["sliding_window"]),
        "seed": seed,
    }
    gen.write_json(os.path.join(out_dir, "golden.json"), golden)
    print(f"{NAME}: size={gen.dir_size(out_dir) / 1e6:.2f} MB margin={margin:.3g} gap={gap:.3g}")
    for p, s in zip(prompts, greedy):
        print(f"  prompt len {len(p):3d} -> greedy {s}")


if __name__ == "__main__":
    main()
