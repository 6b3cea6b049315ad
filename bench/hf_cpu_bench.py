#!/usr/bin/env python3
"""HF transformers speed peer (CPU, or --device cuda on a GPU): prefill and batched greedy decode tok/s; prints one JSON line.

  prefill: batch 1, --prompt-len P random token ids, one forward with KV cache
           (best of --reps after a warm-up); prefill_tok_s = P / time.
  decode:  batch B, each sequence a --decode-prompt-len random prompt (default P) prefilled
           untimed, then G greedy steps with the KV cache (one forward per step, argmax);
           decode_tok_s = B * G / decode time (prefill excluded). Best of --reps for both;
           batch_prefill_tok_s = B * DP / time of the B-sequence prompt forward.

Token ids are drawn from a fixed seed (no tokenizer needed). Threads: torch.set_num_threads(T).

Usage: bench/hf_cpu_bench.py --model DIR --threads 2 --batch 8 --prompt-len 128 --gen-len 16 --dtype bf16
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import torch

DTYPES = {"bf16": torch.bfloat16, "f32": torch.float32, "fp32": torch.float32, "f16": torch.float16}


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
    args = ap.parse_args()
    dev = torch.device(args.device)

    torch.set_num_threads(args.threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    from transformers import AutoConfig, AutoModelForCausalLM
    import transformers

    kw = {"dtype": DTYPES[args.dtype]}
    if args.attn:
        kw["attn_implementation"] = args.attn
    if args.experts_impl:
        kw["experts_implementation"] = args.experts_impl
    t0 = time.perf_counter()
    if dev.type == "cuda":
        kw["device_map"] = args.device
    model = AutoModelForCausalLM.from_pretrained(args.model, **kw)
    model.eval()
    load_s = time.perf_counter() - t0
    vocab = AutoConfig.from_pretrained(args.model).vocab_size
    g = torch.Generator().manual_seed(args.seed)
    P, B, G = args.prompt_len, args.batch, args.gen_len
    DP = args.decode_prompt_len or P

    def ids(b, n):
        return torch.randint(0, min(vocab, 100000), (b, n), generator=g).to(dev)

    def clock():  # wall time after the GPU has finished what was queued
        if dev.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter()

    res = {
        "engine": "hf-transformers",
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "dtype": args.dtype,
        "threads": args.threads,
        "batch": B,
        "prompt_len": P,
        "decode_prompt_len": DP,
        "gen_len": G,
        "device": args.device,
        "attn_implementation": getattr(model.config, "_attn_implementation", None),
        "experts_implementation": getattr(model.config, "_experts_implementation", None),
        "load_s": round(load_s, 2),
    }

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

        if not args.no_prefill:
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
        res["decode_step_ms_median"] = round(1e3 * med, 1)
        # prompt phase of the decode run: B x DP tokens in one forward (best of reps)
        best_pre = min(r[1] for r in runs)
        res["batch_prefill_s"] = round(best_pre, 3)
        res["batch_prefill_tok_s"] = round(B * DP / best_pre, 2)

    res["host"] = platform.node()
    print(json.dumps(res), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
