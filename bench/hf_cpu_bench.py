#!/usr/bin/env python3
"""HF transformers speed peer (CPU, or --device cuda on a GPU): prefill and batched greedy decode tok/s; one JSON line per run.

  prefill: batch 1, --prompt-len P random token ids, one forward with KV cache
           (best of --reps after a warm-up); prefill_tok_s = P / time.
  decode:  batch B, each sequence a --decode-prompt-len random prompt (default P) prefilled
           untimed, then G greedy steps with the KV cache (one forward per step, argmax);
           decode_tok_s = B * G / decode time (prefill excluded). Best of --reps for both;
           batch_prefill_tok_s = B * DP / time of the B-sequence prompt forward.

Token ids are drawn from a fixed seed (no tokenizer needed). Threads: torch.set_num_threads(T).

--runs B:DP,B:DP,... measures several decode runs after one model load (one JSON line each, in
order; the batch-1 prefill of --prompt-len tokens goes with the first run of batch 1, or the first
run if none is, unless --no-prefill). --batch / --decode-prompt-len are one such run.

FP8 checkpoints (config.json `quantization_config.quant_method` "fp8", DeepSeek-V3 style):
HF's own FP8 path is not DeepSeek's (shared/PEERS.md), so with --dequant-fp8 DIR the peer writes
a bf16 copy to DIR first, w[i, j] = fp8(q[i, j]) * scale_inv[i // 128, j // 128] (edges cropped),
config without `quantization_config`, and loads that (dequant_s in the JSON). The caller removes
DIR. Without --dequant-fp8 such a checkpoint is refused.

Usage: bench/hf_cpu_bench.py --model DIR --threads 2 --batch 8 --prompt-len 128 --gen-len 16 --dtype bf16
       bench/hf_cpu_bench.py --model DIR --device cuda --runs 1:2048,32:128,128:128 --prompt-len 2048
"""
from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import platform
import shutil
import sys
import time

import torch

DTYPES = {"bf16": torch.bfloat16, "f32": torch.float32, "fp32": torch.float32, "f16": torch.float16}


def dequant_fp8_copy(src: str, dst: str, dev: torch.device, qc: dict) -> None:
    """bf16 copy of a DeepSeek FP8 checkpoint: each `W.weight` with a `W.weight_scale_inv` becomes
    fp8(q) * scale_inv[i // bi, j // bj] (edges cropped); other tensors are copied as stored."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    bi, bj = qc.get("weight_block_size", [128, 128])
    os.makedirs(dst, exist_ok=True)
    index_path = os.path.join(src, "model.safetensors.index.json")
    if os.path.exists(index_path):
        weight_map = json.load(open(index_path))["weight_map"]
    else:
        with safe_open(os.path.join(src, "model.safetensors"), "pt") as f:
            weight_map = {k: "model.safetensors" for k in f.keys()}
    by_file: dict[str, list[str]] = {}
    for k, f in weight_map.items():
        by_file.setdefault(f, []).append(k)
    scales = {k[: -len("_scale_inv")]: f for k, f in weight_map.items() if k.endswith("_scale_inv")}
    def convert(fname: str) -> tuple[dict, int]:
        out, names, nbytes = {}, {}, 0
        with safe_open(os.path.join(src, fname), "pt", device="cpu") as f:
            for k in by_file[fname]:
                if k.endswith("_scale_inv"):
                    continue
                t = f.get_tensor(k)
                if k in scales:
                    if scales[k] == fname:
                        s = f.get_tensor(k + "_scale_inv")
                    else:
                        with safe_open(os.path.join(src, scales[k]), "pt", device="cpu") as g:
                            s = g.get_tensor(k + "_scale_inv")
                    q = t.to(dev).to(torch.float32)
                    s = s.to(dev).to(torch.float32)
                    s = s.repeat_interleave(bi, 0).repeat_interleave(bj, 1)[: q.shape[0], : q.shape[1]]
                    t = (q * s).to(torch.bfloat16).cpu()
                out[k] = t
                names[k] = fname
                nbytes += t.numel() * t.element_size()
        save_file(out, os.path.join(dst, fname), metadata={"format": "pt"})
        return names, nbytes

    new_map, total = {}, 0
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        for names, nbytes in pool.map(convert, sorted(by_file)):
            new_map.update(names)
            total += nbytes
    json.dump({"metadata": {"total_size": total}, "weight_map": new_map},
              open(os.path.join(dst, "model.safetensors.index.json"), "w"), indent=1)
    cfg = json.load(open(os.path.join(src, "config.json")))
    cfg.pop("quantization_config", None)
    cfg["torch_dtype"] = "bfloat16"
    json.dump(cfg, open(os.path.join(dst, "config.json"), "w"), indent=2)
    for extra in ("generation_config.json", "tokenizer.json", "tokenizer_config.json"):
        if os.path.exists(os.path.join(src, extra)):
            shutil.copyfile(os.path.join(src, extra), os.path.join(dst, extra))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--prompt-len", type=int, default=128)
    ap.add_argument("--decode-prompt-len", type=int, default=None, help="prompt before decode (default: --prompt-len)")
    ap.add_argument("--gen-len", type=int, default=16)
    ap.add_argument("--dtype", choices=sorted(DTYPES), default="bf16")
    ap.add_argument("--reps", type=int, default=2, help="repetitions of prefill and of decode (best is reported)")
    ap.add_argument("--attn", default=None, help="attn_implementation (default: HF's choice)")
    ap.add_argument("--experts-impl", default=None, help="experts_implementation (default: HF's choice)")
    ap.add_argument("--no-prefill", action="store_true", help="skip the batch-1 prefill measurement")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu", help="cpu | cuda (timings synchronise the GPU)")
    ap.add_argument("--runs", default=None, help="B:DP,B:DP,... decode runs after one load")
    ap.add_argument("--dequant-fp8", default=None, metavar="DIR",
                    help="FP8 checkpoint: write a bf16 copy to DIR (DeepSeek's block dequantisation) and load it")
    args = ap.parse_args()
    dev = torch.device(args.device)
    if args.runs:
        runs_spec = []
        for part in args.runs.split(","):
            b, _, dp = part.partition(":")
            runs_spec.append((int(b), int(dp) if dp else (args.decode_prompt_len or args.prompt_len)))
    else:
        runs_spec = [(args.batch, args.decode_prompt_len or args.prompt_len)]

    torch.set_num_threads(args.threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    from transformers import AutoConfig, AutoModelForCausalLM
    import transformers

    model_dir, dequant_s = args.model, None
    qc = json.load(open(os.path.join(args.model, "config.json"))).get("quantization_config") or {}
    if qc.get("quant_method") == "fp8":
        if not args.dequant_fp8:
            print("FP8 checkpoint: pass --dequant-fp8 DIR (HF's FP8 path is not DeepSeek's)", file=sys.stderr)
            return 2
        t0 = time.perf_counter()
        dequant_fp8_copy(args.model, args.dequant_fp8, dev, qc)
        dequant_s = time.perf_counter() - t0
        model_dir = args.dequant_fp8

    kw = {"dtype": DTYPES[args.dtype]}
    if args.attn:
        kw["attn_implementation"] = args.attn
    if args.experts_impl:
        kw["experts_implementation"] = args.experts_impl
    t0 = time.perf_counter()
    if dev.type == "cuda":
        kw["device_map"] = args.device
    model = AutoModelForCausalLM.from_pretrained(model_dir, **kw)
    model.eval()
    load_s = time.perf_counter() - t0
    vocab = AutoConfig.from_pretrained(model_dir).vocab_size
    g = torch.Generator().manual_seed(args.seed)
    P, G = args.prompt_len, args.gen_len

    def ids(b, n):
        return torch.randint(0, min(vocab, 100000), (b, n), generator=g).to(dev)

    def clock():  # wall time after the GPU has finished what was queued
        if dev.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter()

    base = {
        "engine": "hf-transformers",
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "dtype": args.dtype,
        "threads": args.threads,
        "gen_len": G,
        "device": args.device,
        "attn_implementation": getattr(model.config, "_attn_implementation", None),
        "experts_implementation": getattr(model.config, "_experts_implementation", None),
        "load_s": round(load_s, 2),
        "host": platform.node(),
    }
    if dequant_s is not None:
        base["dequant_s"] = round(dequant_s, 2)
        base["weights"] = "fp8 checkpoint dequantised to bf16 by the peer (128x128 blocks)"
    if dev.type == "cuda":
        base["gpu"] = torch.cuda.get_device_name(dev)

    # transformers >= 5.2x renamed past_key_values -> cache; use whichever this version takes
    import inspect
    params = inspect.signature(model.forward).parameters
    cache_kw = "cache" if "cache" in params else "past_key_values"

    def step(tok, cache):
        return model(input_ids=tok, use_cache=True, **{cache_kw: cache})

    def cache_of(out):
        c = getattr(out, "cache", None)
        return c if c is not None else out.past_key_values

    with torch.inference_mode():
        # warm-up: short prefill + 2 decode steps
        out = model(input_ids=ids(1, 8), use_cache=True)
        cache = cache_of(out)
        nxt = out.logits[:, -1].argmax(-1, keepdim=True)
        for _ in range(2):
            out = step(nxt, cache)
            nxt = out.logits[:, -1].argmax(-1, keepdim=True)
        del out, cache

        # the batch-1 prefill goes with the first run of batch 1 (or the first run, if none is)
        prefill_at = next((i for i, (b, _) in enumerate(runs_spec) if b == 1), 0)
        for i, (B, DP) in enumerate(runs_spec):
            res = dict(base, batch=B, prompt_len=P, decode_prompt_len=DP)
            if i == prefill_at and not args.no_prefill:
                best = float("inf")
                prompt = ids(1, P)
                for _ in range(max(1, args.reps)):
                    t = clock()
                    out = model(input_ids=prompt, use_cache=True, logits_to_keep=1)
                    best = min(best, clock() - t)
                    del out
                res["prefill_s"] = round(best, 4)
                res["prefill_tok_s"] = round(P / best, 2)

            # decode: each rep prefills fresh B x DP prompts (untimed for decode), then G greedy steps
            runs = []
            for _ in range(max(1, args.reps)):
                prompt = ids(B, DP)
                t = clock()
                out = model(input_ids=prompt, use_cache=True, logits_to_keep=1)
                pre_s = clock() - t
                cache = cache_of(out)
                nxt = out.logits[:, -1].argmax(-1, keepdim=True)
                del out
                step_s = []
                t = clock()
                for _ in range(G):
                    s = clock()
                    out = step(nxt, cache)
                    nxt = out.logits[:, -1].argmax(-1, keepdim=True)
                    del out
                    step_s.append(clock() - s)
                runs.append((clock() - t, pre_s, sorted(step_s)[len(step_s) // 2]))
                del cache
            dt, pre_s, med = min(runs)
            res["decode_s"] = round(dt, 3)
            res["decode_tok_s"] = round(B * G / dt, 2)
            res["decode_tok_s_all"] = [round(B * G / r[0], 2) for r in runs]
            res["decode_step_ms_median"] = round(1e3 * med, 2)
            # prompt phase of the decode run: B x DP tokens in one forward (best of reps)
            best_pre = min(r[1] for r in runs)
            res["batch_prefill_s"] = round(best_pre, 3)
            res["batch_prefill_tok_s"] = round(B * DP / best_pre, 2)
            print(json.dumps(res), flush=True)
            if dev.type == "cuda":
                torch.cuda.empty_cache()
    return 0


if __name__ == "__main__":
    sys.exit(main())
