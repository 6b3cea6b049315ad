#!/usr/bin/env python3
"""Tiny DeepSeek-V3-structure checkpoint whose routed experts are FP4, and its goldens.

    python3 tools/gen_fp4_fixture.py        # writes tests/fixtures/models/v3_fp4

The model is gen_golden_models.py's v3_fp8 (hidden 200, moe_intermediate 72: dims that are not
multiples of 32 or 128, so FP4 rows end in partial scale blocks) with another seed and
`quantization_config.expert_dtype: "fp4"`, stored as DeepSeek-V4 stores experts: two E2M1 codes
a byte along the input dimension, low nibble first, one E8M0 scale (2^(e - 127)) per 32 inputs
of a row. Layer 1's experts are I8 with `<x>.scale` F8_E8M0 (DeepSeek's names), layer 2's and
the MTP layer's are F4 (torch.float4_e2m1fn_x2) with `<x>.weight_scale_inv` F8_E8M0
(transformers' names). Other projections are FP8 (128x128 blocks) as in V3.

Goldens: HF transformers' DeepseekV3 in float32 on a float32 copy dequantised here (FP8 with
DeepSeek's fixed 128x128 blocks, FP4 with the E2M1 table below: never HF's own quantised
loaders, ../shared/PEERS.md), cross-checked against tools/deepseek_reference.py on the same
float32 weights.
"""
from __future__ import annotations

import copy
import os
import sys
import tempfile

import torch
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import deepseek_reference as ref  # noqa: E402
import gen_golden_models as gm  # noqa: E402

NAME = "v3_fp4"
BLOCK = 32
E2M1 = torch.tensor([0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, -0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0])


def is_expert(name: str) -> bool:
    return ".mlp.experts." in name and name.endswith("_proj.weight")


def quant_fp4(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """[rows, cols] f32 -> packed uint8 [rows, cols / 2] and E8M0 exponents uint8
    [rows, ceil(cols / 32)]: per block the smallest power of two 2^e with amax / 2^e <= 6, codes
    the nearest E2M1 value (ties to the even code)."""
    rows, cols = w.shape
    nb = (cols + BLOCK - 1) // BLOCK
    padded = torch.zeros(rows, nb * BLOCK)
    padded[:, :cols] = w
    blocks = padded.view(rows, nb, BLOCK)
    amax = blocks.abs().amax(-1).clamp(min=2.0 ** -100)
    e = torch.ceil(torch.log2(amax / 6.0)).to(torch.int64)
    scaled = blocks / torch.pow(2.0, e.to(torch.float64)).to(torch.float32).unsqueeze(-1)
    mags = E2M1[:8]
    dist = (scaled.abs().unsqueeze(-1) - mags).abs()
    best = dist.min(-1, keepdim=True).values
    # the nearest magnitude; on a tie the even code (mantissa bit 0)
    cand = (dist == best) & (torch.arange(8) % 2 == 0)
    code = torch.where(cand.any(-1), cand.float().argmax(-1), (dist == best).float().argmax(-1))
    code = code | (torch.signbit(scaled).to(torch.int64) << 3)
    code = code.view(rows, nb * BLOCK)[:, :cols].to(torch.uint8)
    packed = code[:, 0::2] | (code[:, 1::2] << 4)
    return packed.contiguous(), (e + 127).to(torch.uint8).contiguous()


def dequant_fp4(packed: torch.Tensor, exps: torch.Tensor) -> torch.Tensor:
    """The inverse, written from the format's definition (independent of the C++ reader)."""
    u8 = packed.view(torch.uint8)
    rows, half = u8.shape
    codes = torch.stack([u8 & 0xF, u8 >> 4], dim=-1).reshape(rows, 2 * half).long()
    scale = torch.pow(2.0, exps.view(torch.uint8).double() - 127).float()
    col_block = torch.arange(2 * half) // BLOCK
    return E2M1[codes] * scale[:, col_block]


def main() -> None:
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    spec = copy.deepcopy(gm.SPECS["v3_fp8"])
    spec["seed"] = 20261209
    spec["config"]["quantization_config"]["expert_dtype"] = "fp4"
    gm.SPECS[NAME] = spec
    cfg = spec["config"]
    out_dir = os.path.join(gm.OUT_ROOT, NAME)
    os.makedirs(out_dir, exist_ok=True)
    for f in os.listdir(out_dir):
        os.remove(os.path.join(out_dir, f))
    import transformers

    cfg = {**cfg, "transformers_version": transformers.__version__}
    gm.write_json(os.path.join(out_dir, "config.json"), cfg)

    master = gm.make_weights(spec)
    stored = gm.to_storage(master, "fp8")
    f32 = {}
    for k in list(stored):
        if k.endswith("_scale_inv"):
            continue
        t = stored[k]
        if t.dtype == torch.float8_e4m3fn:
            f32[k] = ref.dequant_fp8_block(t, stored[k + "_scale_inv"])
        else:
            f32[k] = t.float()
    for k, t in master.items():
        if not is_expert(k):
            continue
        packed, exps = quant_fp4(t)
        del stored[k + "_scale_inv"]
        layer = int(k.split(".")[2])
        if layer == 1:
            stored[k] = packed.view(torch.int8)
            stored[k[: -len(".weight")] + ".scale"] = exps.view(torch.float8_e8m0fnu)
        else:
            stored[k] = packed.view(torch.float4_e2m1fn_x2)
            stored[k + "_scale_inv"] = exps.view(torch.float8_e8m0fnu)
        f32[k] = dequant_fp4(packed, exps)
    gm.write_checkpoint(out_dir, stored, spec["shards"])

    prompts = gm.make_prompts(spec["seed"])
    n_main = cfg["num_hidden_layers"]
    main_state = {k: v for k, v in f32.items()
                  if not (k.startswith("model.layers.") and int(k.split(".")[2]) >= n_main)}
    refm = ref.DeepseekReference(out_dir, state=f32)
    ref_logits = [refm.forward(p) for p in prompts]
    ref_greedy = [refm.greedy(p, gm.GREEDY_NEW) for p in prompts]
    with tempfile.TemporaryDirectory() as tmp:
        save_file({k: v.contiguous() for k, v in main_state.items()}, os.path.join(tmp, "model.safetensors"),
                  metadata={"format": "pt"})
        c = dict(cfg)
        c.pop("quantization_config", None)
        c["torch_dtype"] = "float32"
        gm.write_json(os.path.join(tmp, "config.json"), c)
        hf = gm.hf_load(tmp)
        hf_logits, hf_greedy = gm.hf_logits_and_greedy(hf, prompts)
        del hf
    hf_vs_ref = gm.max_rel(hf_logits, ref_logits)
    gm.check_greedy(NAME, hf_greedy)
    gm.save_st({f"logits.{i}": l.contiguous().float() for i, l in enumerate(hf_logits)},
               os.path.join(out_dir, "golden.safetensors"))
    golden = {
        "source": "HF transformers DeepseekV3ForCausalLM, dtype=torch.float32, attn_implementation=eager, CPU, "
                  "single thread, on a float32 copy dequantised by tools/gen_fp4_fixture.py (FP8: DeepSeek's "
                  "128x128 blocks; FP4 experts: E2M1 table x 2^(e - 127) per 32 inputs, low nibble first); "
                  "logits from one full-prompt forward per prompt, greedy from generate(do_sample=False, "
                  f"max_new_tokens={gm.GREEDY_NEW}). {gm.versions()}",
        "prompts": prompts,
        "greedy": hf_greedy,
        "reference_max_rel_diff": hf_vs_ref,
        "reference_greedy": ref_greedy,
        "notes": "Routed experts stored FP4 (layer 1: I8 + .scale F8_E8M0; layers 2-3: F4 + .weight_scale_inv "
                 "F8_E8M0); the MTP layer (model.layers.3) is dropped from the HF copy. HF and "
                 "tools/deepseek_reference.py agree to reference_max_rel_diff on the same float32 weights.",
        "seed": spec["seed"],
    }
    gm.write_json(os.path.join(out_dir, "golden.json"), golden)
    print(f"{NAME}: hf vs reference max rel {hf_vs_ref:.3g}, greedy equal: {hf_greedy == ref_greedy}, "
          f"size {gm.dir_size(out_dir) / 1e6:.2f} MB")
    for p, s in zip(prompts, hf_greedy):
        print(f"  prompt len {len(p):2d} -> greedy {s}")


if __name__ == "__main__":
    main()
