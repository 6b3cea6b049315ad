#!/usr/bin/env python3
"""Checks that dsinfer and HF transformers read a tools/make_v4_bench_model.py checkpoint the same
way: dsinfer's logits (`dsinfer logits --dtype DT`) against HF's DeepseekV4ForCausalLM in float32
on the same weights, for one prompt; prints max|diff| / max|ref| over all positions, and over the
positions before the CSA layers' indexer has more than index_topk compressed entries to choose from
(after that its top-k is discontinuous and bf16 may pick other entries), plus argmax agreement.
--dtype takes a comma list (bf16,f32: one dsinfer run each). --hf-bf16 also runs HF in bf16 (after
the float32 model is freed) and reports it against HF float32 the same way: the bf16 rounding
floor that dsinfer's bf16 error is to be read against.

One engine at a time (dsinfer runs first, their logits kept; then HF): the model is never in memory
twice. HF needs the float32 model's memory (2x the bf16 checkpoint; peak RSS 16.2 GB with the
mapped file pages for the 6.5 GB bench checkpoint).

Usage: tools/check_v4_bench_model.py --model DIR [--dsinfer build/src/cli/dsinfer] [--dtype bf16[,f32]]
           [--prompt-len 32] [--threads 2] [--hf-bf16]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import numpy as np


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--dsinfer", default="build/src/cli/dsinfer")
    ap.add_argument("--dtype", default="bf16", help="dsinfer's --dtype (HF runs float32)")
    ap.add_argument("--prompt-len", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--hf-bf16", action="store_true", help="also run HF in bf16 against HF float32")
    a = ap.parse_args()
    cfg = json.load(open(f"{a.model}/config.json"))
    rng = np.random.default_rng(a.seed)
    ids = rng.integers(2, min(cfg["vocab_size"], 100000), a.prompt_len).tolist()

    ours, ds_s = {}, {}
    for dt in a.dtype.split(","):
        t = time.perf_counter()
        run = subprocess.run([a.dsinfer, "logits", "--model", a.model, "--dtype", dt,
                              "--threads", str(a.threads), "--ids", ",".join(map(str, ids))],
                             capture_output=True, text=True)
        if run.returncode != 0:
            print(run.stderr[-2000:], file=sys.stderr)
            return 1
        ours["dsinfer_" + dt] = np.asarray(json.loads(run.stdout)["logits"], dtype=np.float32)
        ds_s[dt] = round(time.perf_counter() - t, 1)

    import torch
    from transformers import DeepseekV4ForCausalLM

    torch.set_num_threads(a.threads)

    # One load in bf16 (HF's storage types at dtype=bfloat16), then upcast: the same float32 model
    # as from_pretrained(dtype=float32), since every F32-stored tensor HF casts to bf16 holds
    # bf16-representable values (tools/make_v4_bench_model.py) and HF keeps its f32 modules f32;
    # it needs the f32 model's memory once, not the loader's extra copy.
    t = time.perf_counter()
    model = DeepseekV4ForCausalLM.from_pretrained(a.model, dtype=torch.bfloat16).eval()
    router_logits = []
    for mod in model.modules():
        if type(mod).__name__ == "DeepseekV4TopKRouter":
            mod.register_forward_hook(lambda m, i, o: router_logits.append((m, o[0].detach().float())))
    with torch.inference_mode():
        if a.hf_bf16:
            ours["hf_bf16"] = model(input_ids=torch.tensor([ids])).logits[0].float().numpy()
        router_logits.clear()
        model.float()
        ref = model(input_ids=torch.tensor([ids])).logits[0].float().numpy()
    hf_s = round(time.perf_counter() - t, 1)
    # routing margin of each top-k layer (HF float32): gap between the k-th and (k+1)-th
    # selection score, per position; a small gap is where bf16 rounding can change the experts
    margins = []
    k = cfg["num_experts_per_tok"]
    for m, lg in router_logits if cfg["n_routed_experts"] > k else []:
        sel = (m.score_fn(lg) + m.e_score_correction_bias.float()).sort(dim=-1, descending=True).values
        margins.append([round(float(x), 5) for x in (sel[:, k - 1] - sel[:, k])])
    del model

    rate = cfg["compress_rates"]["compressed_sparse_attention"]
    # position p sees (p + 1) // rate closed CSA windows; the indexer selects once they exceed topk
    before = min(a.prompt_len, rate * (cfg["index_topk"] + 1) - 1)
    out = {"model": a.model, "prompt_len": a.prompt_len, "reference": "HF float32",
           "positions_before_indexer_selects": before, "max_abs_ref": float(np.abs(ref).max()),
           "dsinfer_s": ds_s, "hf_s": hf_s, "topk_router_margin_per_position": margins}
    for name, lg in ours.items():
        def rel(rows):
            return float(np.abs(lg[rows] - ref[rows]).max() / np.abs(ref[rows]).max())
        out[name] = {"max_rel_diff": rel(slice(None)),
                     "max_rel_diff_before_indexer_selects": rel(slice(0, before)),
                     "max_rel_diff_per_position": [round(rel(slice(i, i + 1)), 5) for i in range(a.prompt_len)],
                     "argmax_agree": float((lg.argmax(-1) == ref.argmax(-1)).mean()),
                     "finite": bool(np.isfinite(lg).all())}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
