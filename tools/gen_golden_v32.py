#!/usr/bin/env python3
"""Generate the DeepSeek-V3.2 (DeepSeek Sparse Attention) golden fixture tests/fixtures/models/v32_fp8.

A tiny random checkpoint with V3.2's structure in Hugging Face layout (V3's tensors plus each
layer's `self_attn.indexer.{wq_b, wk, k_norm, weights_proj}`), FP8 E4M3 block-scaled like the
release (indexer wq_b / wk FP8 too; weights_proj, norms BF16; `scale_fmt: ue8m0`), and goldens
from tools/deepseek_v32_reference.py (DeepSeek's V3.2-Exp semantics, float32, FP8 index keys
simulated). index_topk is 24, so the 70-token prompt and the 9-token prompt's continuation
really select. Hugging Face transformers' deepseek_v32 is cross-checked against the reference
run with HF's indexer simplification (no Hadamard rotation, no FP8), see golden.json `hf_cross_check`.

    python3 tools/gen_golden_v32.py
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import deepseek_reference as ref  # noqa: E402
import deepseek_v32_reference as v32  # noqa: E402
import gen_golden_models as gen  # noqa: E402

NAME = "v32_fp8"
INDEX_HEADS, INDEX_DIM, INDEX_TOPK = 8, 128, 24

SPEC = {
    "seed": 20251001,
    "storage": "fp8",
    # V3's fixture (v3_fp8) with V3.2's fields, 2 layers, 8 experts, no MTP layer, ue8m0 scales
    "config": {
        **{k: v for k, v in gen.SPECS["v3_fp8"]["config"].items() if k not in ("aux_loss_alpha", "seq_aux")},
        "architectures": ["DeepseekV32ForCausalLM"],
        "model_type": "deepseek_v32",
        "index_head_dim": INDEX_DIM,
        "index_n_heads": INDEX_HEADS,
        "index_topk": INDEX_TOPK,
        "n_routed_experts": 8,
        "num_hidden_layers": 2,
        "num_nextn_predict_layers": 0,
        "quantization_config": {**gen.SPECS["v3_fp8"]["config"]["quantization_config"], "scale_fmt": "ue8m0"},
    },
}


def make_weights() -> dict[str, torch.Tensor]:
    c = {**SPEC["config"], "model_type": "deepseek_v3"}  # V3's tensors (with the correction bias)
    w = gen.make_weights({"seed": SPEC["seed"], "config": c})
    ini = gen.Init(SPEC["seed"] + 1)
    d, q = c["hidden_size"], c["q_lora_rank"]
    for i in range(c["num_hidden_layers"]):
        p = f"model.layers.{i}.self_attn.indexer"
        w[f"{p}.wq_b.weight"] = ini.proj(INDEX_HEADS * INDEX_DIM, q)
        w[f"{p}.wk.weight"] = ini.proj(INDEX_DIM, d)
        w[f"{p}.k_norm.weight"] = ini.norm(INDEX_DIM)
        w[f"{p}.k_norm.bias"] = ini.normal((INDEX_DIM,), 0.1)
        w[f"{p}.weights_proj.weight"] = ini.normal((INDEX_HEADS, d), 1.0 / d ** 0.5)
    return w


def to_storage(w: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = gen.to_storage({k: t for k, t in w.items() if ".indexer." not in k}, "fp8")
    for k, t in w.items():
        if ".indexer." not in k:
            continue
        if k.endswith(("wq_b.weight", "wk.weight")):
            qt, s = ref.quant_fp8_block(t)
            out[k], out[k + "_scale_inv"] = qt, s
        else:
            out[k] = t.to(torch.bfloat16)
    return out


def index_summary(model: v32.DeepseekV32Reference, prompts, greedy) -> dict:
    model.index_stats, model.record_index = [], True
    for p, g in zip(prompts, greedy):
        model.forward(p + g[:-1])
    model.record_index = False
    gaps = [s["min_rel_gap"] for s in model.index_stats if s["min_rel_gap"] != float("inf")]
    return {"index_topk": INDEX_TOPK, "min_rel_topk_gap": min(gaps) if gaps else None}


def main() -> None:
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    import transformers

    cfg = {**SPEC["config"], "transformers_version": transformers.__version__}
    out_dir = os.path.join(gen.OUT_ROOT, NAME)
    if os.path.isdir(out_dir):
        shutil.rmtree(out_dir)
    os.makedirs(out_dir)
    gen.write_json(os.path.join(out_dir, "config.json"), cfg)
    gen.write_checkpoint(out_dir, to_storage(make_weights()), 1)

    prompts = gen.make_prompts(SPEC["seed"])
    refm = v32.DeepseekV32Reference(out_dir)
    ref_logits = [refm.forward(p) for p in prompts]
    ref_greedy = [refm.greedy(p, gen.GREEDY_NEW) for p in prompts]
    gen.check_greedy(NAME, ref_greedy)
    index = index_summary(refm, prompts, ref_greedy)
    routing = gen.routing_summary(refm, prompts)
    routing["min_greedy_logit_margin"] = gen.min_greedy_margin(refm, prompts, ref_greedy)
    # top_k equals the experts of topk_group groups here, so the next expert is -inf (no margin)
    routing = {k: (None if isinstance(v, float) and v == float("inf") else v) for k, v in routing.items()}

    # HF cross-check: HF's indexer has no Hadamard / FP8, so it is compared with the reference
    # run the same way; the selections of both indexers are compared too.
    hf_like = v32.DeepseekV32Reference(out_dir, quantize_index=False, state=refm.w)
    hf_like_logits = [hf_like.forward(p) for p in prompts]
    refm.record_index = hf_like.record_index = True
    refm.index_stats, hf_like.index_stats = [], []
    for p in prompts:
        refm.forward(p)
        hf_like.forward(p)
    differ = sum(int((a["selected"] != b["selected"]).any(dim=-1).sum())
                 for a, b in zip(refm.index_stats, hf_like.index_stats))
    with tempfile.TemporaryDirectory() as tmp:
        gen.hf_f32_copy(out_dir, tmp, cfg)
        hf = gen.hf_load(tmp)
        hf_logits, hf_greedy = gen.hf_logits_and_greedy(hf, prompts)
        del hf
    cross = {
        "hf_vs_reference_with_hf_indexer_max_rel_diff": gen.max_rel(hf_logits, hf_like_logits),
        "hf_indexer_vs_golden_max_rel_diff": gen.max_rel(hf_like_logits, ref_logits),
        "query_rows_whose_selection_differs_fp8_vs_hf_indexer": differ,
        "hf_greedy": hf_greedy,
    }
    gen.save_st({f"logits.{i}": l.contiguous().float() for i, l in enumerate(ref_logits)},
                os.path.join(out_dir, "golden.safetensors"))
    golden = {
        "source": "tools/deepseek_v32_reference.py (DeepSeek-V3.2-Exp reference semantics, float32, FP8 index "
                  "keys simulated, CPU, single thread) on the FP8 weights dequantised with 128x128 blocks; "
                  "logits from one full-prompt forward per prompt, greedy by full recompute (%d tokens). %s"
                  % (gen.GREEDY_NEW, gen.versions()),
        "prompts": prompts,
        "greedy": ref_greedy,
        "reference_max_rel_diff": 0.0,
        "notes": "Golden is DeepSeek's semantics, not HF: HF's DeepseekV32Indexer skips the Hadamard rotation and "
                 "the FP8 quantisation of q and k (and their scales), so it selects other keys where index scores "
                 "are close; hf_cross_check compares HF with the reference run with HF's indexer. The MLA latent "
                 "stays float32 (DeepSeek's demo rounds it through FP8 to mimic an FP8 KV cache). index_topk %d: "
                 "the 70-token prompt and the 9-token prompt's continuation select. Top-k ties go to the lower "
                 "position." % INDEX_TOPK,
        "seed": SPEC["seed"],
        "routing": routing,
        "index": index,
        "hf_cross_check": cross,
    }
    gen.write_json(os.path.join(out_dir, "golden.json"), golden)
    print(f"{NAME}: size={gen.dir_size(out_dir) / 1e6:.2f} MB index={index}")
    for p, s in zip(prompts, ref_greedy):
        print(f"  prompt len {len(p):2d} -> greedy {s}")
    print("  hf_cross_check:", {k: v for k, v in cross.items() if k != "hf_greedy"},
          "hf greedy == golden:", hf_greedy == ref_greedy)


if __name__ == "__main__":
    main()
