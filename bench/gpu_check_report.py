#!/usr/bin/env python3
"""Summaries for scripts/gpu-check.sh: reads what its parts left and prints summary lines, writes
the JSON files that come back from the GPU machine and the rows for bench/RESULTS.md.

Standard library only (it also runs where there is no torch). Subcommands:
  kernels FILE.json...   Google Benchmark JSON of cuda_kernels_bench (one file per family; a
                         file cut short by a timeout is read up to its last complete entry)
  model-bytes DIR        bytes a decode step reads, from a checkpoint's safetensors headers
  e2e DIR                dsinfer bench vs HF transformers per model, decode vs its roofline
  compare-logits A B     max |b - a| / max |a| of two `dsinfer logits` outputs
  parallel DIR           the tp / ep checks and NCCL tests of bench/gpu_parallel_check.sh
  serving DIR            dsinfer-loadgen report, greedy alone vs in a batch, step time
  summary                the run's summary.txt; appends the rows to bench/RESULTS.md if asked
Rows (--rows FILE) are tab-separated: part, command, figures, peer, ratio.
"""
from __future__ import annotations

import argparse
import glob
import json
import math
import os
import re
import struct
import sys
import time


# ---------------------------------------------------------------------------------------------
def add_row(path: str | None, part: str, command: str, figures: str, peer: str = "", ratio: str = "") -> None:
    if not path:
        return
    clean = [str(x).replace("\t", " ").replace("\n", " ") for x in (part, command, figures, peer, ratio)]
    with open(path, "a") as f:
        f.write("\t".join(clean) + "\n")


def load_json_lenient(path: str):
    """A Google Benchmark JSON file, also when the run was killed mid-way (the reporter streams
    one entry at a time): cut after the last complete benchmark entry and close the brackets."""
    text = open(path, errors="replace").read()
    try:
        return json.loads(text)
    except ValueError:
        pass
    cut = text.rfind("\n    }")
    while cut > 0:
        try:
            d = json.loads(text[: cut + len("\n    }")] + "\n  ]\n}\n")
            d["truncated"] = True
            return d
        except ValueError:
            cut = text.rfind("\n    }", 0, cut)
    return None


def bench_args(name: str) -> dict:
    return {k: int(v) for k, v in re.findall(r"(\w+):(-?\d+)", name)}


def fmt(x, nd=1):
    if x is None:
        return "-"
    if isinstance(x, float) and (math.isnan(x) or math.isinf(x)):
        return str(x)
    return f"{x:.{nd}f}"


# ---------------------------------------------------------------------------------------------
def cmd_kernels(a) -> int:
    context, benches, truncated = {}, [], []
    for path in a.files:
        d = load_json_lenient(path)
        if d is None:
            print(f"{os.path.basename(path)}: no results (run failed before its first benchmark)")
            continue
        context = context or d.get("context", {})
        if d.get("truncated"):
            truncated.append(os.path.basename(path))
        benches += [b for b in d.get("benchmarks", []) if b.get("run_type", "iteration") == "iteration"]
    if a.out:
        json.dump({"context": context, "benchmarks": benches, "truncated_files": truncated}, open(a.out, "w"), indent=1)
    copy = float(context.get("d2d_copy_GBps", "nan") or "nan")
    gpu = context.get("gpu", "?")
    binary = "build-gpu-check/bench/cuda_kernels_bench --benchmark_format=json"
    print(f"GPU {gpu}, {context.get('sms', '?')} SMs; device copy bandwidth (cudaMemcpy D2D, read + write): "
          f"{fmt(copy)} GB/s")
    if truncated:
        print(f"cut short by the time limit (entries before the cut kept): {', '.join(truncated)}")
    add_row(a.rows, a.part, "cuda_kernels_bench (context d2d_copy_GBps)", f"device copy {fmt(copy)} GB/s (read + write)")
    errors = [b for b in benches if b.get("error_occurred")]
    for b in errors[:5]:
        print(f"error: {b['name']}: {b.get('error_message', '')}")

    by_family: dict[str, list] = {}
    for b in benches:
        if not b.get("error_occurred"):
            by_family.setdefault(b["name"].split("/")[0], []).append(b)

    mla = by_family.pop("BM_MlaDecode", [])
    if mla:
        table: dict = {}
        for b in mla:
            g = bench_args(b["name"])
            table.setdefault(g.get("heads"), {}).setdefault(g.get("ctx"), {})[g.get("batch")] = b
        batches = sorted({bench_args(b["name"]).get("batch") for b in mla})
        print("MLA decode (absorbed, bf16 latent cache), latent-cache bytes read per second / copy bandwidth, "
              f"batch {'/'.join(map(str, batches))}:")
        best128 = None
        for heads in sorted(table):
            for ctx in sorted(table[heads]):
                cells = table[heads][ctx]
                fr = [cells[bt].get("frac_of_copy") if bt in cells else None for bt in batches]
                gb = [cells[bt].get("GBps") if bt in cells else None for bt in batches]
                tf = [cells[bt].get("TFLOPs") if bt in cells else None for bt in batches]
                txt = " ".join(f"{100 * f:5.1f}%" if f is not None else "    -" for f in fr)
                print(f"  {heads:>3} heads, ctx {ctx:>5}: {txt}   (max {fmt(max((x for x in tf if x), default=None))} TFLOP/s)")
                if heads == 128 and ctx >= 4096:
                    for bt, f in zip(batches, fr):
                        if bt >= 32 and f is not None:
                            best128 = max(best128 or 0, f)
                add_row(a.rows, a.part, f"{binary} --benchmark_filter=BM_MlaDecode (heads {heads}, ctx {ctx})",
                        "batch " + "/".join(map(str, batches)) + ": " + "/".join(
                            f"{100 * f:.1f}%" if f is not None else "-" for f in fr) + " of copy; GB/s " +
                        "/".join(fmt(x, 0) for x in gb),
                        f"device copy {fmt(copy, 0)} GB/s",
                        f"best {100 * max((f for f in fr if f is not None), default=0):.1f}%")
        if best128 is not None:
            print(f"  goal (128 heads, batch >= 32, ctx >= 4k: >= 85% of copy): best {100 * best128:.1f}% -> "
                  f"{'met' if best128 >= 0.85 else 'NOT met'}")

    gemm = by_family.pop("BM_GroupedGemm", [])
    if gemm:
        print("Grouped MoE GEMM (bf16) vs cuBLAS dense GEMM of the same FLOPs:")
        worst_big, small_fracs = None, []
        for b in sorted(gemm, key=lambda b: tuple(bench_args(b["name"]).values())):
            g = bench_args(b["name"])
            shape = ("V3 (256 x 7168->2048)" if g.get("v3") else "V2-Lite (64 x 2048->1408)") + (
                " down" if g.get("down") else " gate+up")
            tok = g.get("tokens")
            wfrac = b.get("weight_GBps", float("nan")) / copy if copy == copy else float("nan")
            print(f"  {shape:<34} {tok:>5} tokens: {fmt(b.get('TFLOPs'))} TFLOP/s vs cuBLAS {fmt(b.get('cublas_TFLOPs'))}"
                  f" = {fmt(b.get('ratio'), 3)}; weights {fmt(b.get('weight_GBps'), 0)} GB/s ({100 * wfrac:.0f}% of copy)")
            if tok is not None and tok >= 4096:
                worst_big = min(worst_big if worst_big is not None else 9e9, b.get("ratio", 0))
            if tok is not None and tok <= 512 and wfrac == wfrac:
                small_fracs.append(wfrac)
            add_row(a.rows, a.part, f"{binary} --benchmark_filter=BM_GroupedGemm ({shape}, {tok} tokens)",
                    f"{fmt(b.get('TFLOPs'))} TFLOP/s; weights {fmt(b.get('weight_GBps'), 0)} GB/s ({100 * wfrac:.0f}% of copy)",
                    f"cuBLAS bf16 dense {fmt(b.get('cublas_TFLOPs'))} TFLOP/s", fmt(b.get("ratio"), 3))
        if worst_big is not None:
            print(f"  goal (>= 0.70 of cuBLAS at >= 4096 tokens): worst {worst_big:.3f} -> "
                  f"{'met' if worst_big >= 0.70 else 'NOT met'}")
        if small_fracs:
            print(f"  goal (weights at >= 80% of copy bandwidth at decode sizes, <= 512 tokens): "
                  f"{100 * min(small_fracs):.0f}-{100 * max(small_fracs):.0f}% -> "
                  f"{'met' if min(small_fracs) >= 0.8 else 'NOT met'}")

    # Families this tool does not know (e.g. FP8 grouped GEMM): every counter, ratio if named so.
    skip = {"name", "run_name", "run_type", "repetitions", "repetition_index", "threads", "iterations",
            "real_time", "cpu_time", "time_unit", "family_index", "per_family_instance_index", "aggregate_name"}
    for fam, rows in sorted(by_family.items()):
        print(f"{fam}:")
        for b in rows:
            counters = {k: v for k, v in b.items() if k not in skip and isinstance(v, (int, float))}
            peer = {k: v for k, v in counters.items() if "cublas" in k.lower() or "peer" in k.lower()}
            ratio = next((v for k, v in counters.items() if k.lower().startswith("ratio")), None)
            own = {k: v for k, v in counters.items() if k not in peer and not k.lower().startswith("ratio")}
            txt = ", ".join(f"{k} {fmt(v, 3) if abs(v) < 10 else fmt(v, 1)}" for k, v in own.items())
            ptxt = ", ".join(f"{k} {fmt(v, 1)}" for k, v in peer.items())
            print(f"  {b['name']}: {fmt(b.get('real_time'), 1)} {b.get('time_unit', '')}; {txt}"
                  f"{'; peer ' + ptxt if ptxt else ''}{'; ratio ' + fmt(ratio, 3) if ratio is not None else ''}")
            add_row(a.rows, a.part, f"{binary} --benchmark_filter={fam} ({b['name']})",
                    f"{fmt(b.get('real_time'), 1)} {b.get('time_unit', '')}; {txt}", ptxt,
                    fmt(ratio, 3) if ratio is not None else "")
    return 0


# ---------------------------------------------------------------------------------------------
def safetensors_headers(model_dir: str):
    files = sorted(glob.glob(os.path.join(model_dir, "*.safetensors")))
    for path in files:
        with open(path, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(n))
        for name, info in header.items():
            if name != "__metadata__":
                yield name, info


def model_bytes(model_dir: str) -> dict:
    always, embed_row, total = 0, 0, 0
    experts: dict[str, dict] = {}
    for name, info in safetensors_headers(model_dir):
        nbytes = info["data_offsets"][1] - info["data_offsets"][0]
        total += nbytes
        m = re.match(r"model\.layers\.(\d+)\.mlp\.experts\.(\d+)\.", name)
        if m:
            e = experts.setdefault(m.group(1), {"experts": set(), "bytes": 0})
            e["experts"].add(int(m.group(2)))
            e["bytes"] += nbytes
        elif name == "model.embed_tokens.weight":
            embed_row = nbytes // info["shape"][0]
        else:
            always += nbytes
    return {"total": total, "always": always, "embed_row": embed_row,
            "expert_layers": {k: {"experts": len(v["experts"]), "bytes": v["bytes"]} for k, v in experts.items()}}


def cmd_model_bytes(a) -> int:
    print(json.dumps(model_bytes(a.dir)))
    return 0


def roofline_bytes(mb: dict, cfg: dict, batch: int, ctx: float) -> float:
    """Bytes a decode step of `batch` sequences at mean context `ctx` must read: every weight
    except routed experts and the embedding, the embedding rows, the distinct experts the batch
    routes to (uniform routing: E * (1 - (1 - k/E)^B) per layer), the bf16 latent KV cache."""
    k = cfg.get("num_experts_per_tok", 1)
    b = mb["always"] + batch * mb["embed_row"]
    for layer in mb["expert_layers"].values():
        e = layer["experts"]
        touched = e * (1 - (1 - k / e) ** batch)
        b += touched * layer["bytes"] / e
    kv_row = (cfg["kv_lora_rank"] + cfg["qk_rope_head_dim"]) * 2
    return b + batch * ctx * cfg["num_hidden_layers"] * kv_row


def read_json(path: str):
    try:
        with open(path) as f:
            text = f.read().strip()
    except OSError:
        return None
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                continue
    return None


def read_text(path: str, default: str = "") -> str:
    try:
        return open(path, errors="replace").read().strip()
    except OSError:
        return default


def cmd_e2e(a) -> int:
    bw = read_json(os.path.join(a.dir, "copy_bw.json")) or {}
    copy = bw.get("copy_GBps")
    result = {"copy_bw": bw, "models": {}}
    if copy:
        print(f"device copy bandwidth (torch, read + write): {copy:.0f} GB/s on {bw.get('gpu', '?')}")
    for mdir in sorted(d for d in glob.glob(os.path.join(a.dir, "*")) if os.path.isdir(d)):
        tag = os.path.basename(mdir)
        model = read_json(os.path.join(mdir, "model.json"))
        if not model:
            print(f"{tag}: no model (see logs)")
            continue
        cfg, mb = model["config"], model.get("bytes")
        desc = model.get("desc", tag)
        print(f"{desc}: {model.get('size_gb', 0):.1f} GB written in {model.get('gen_s', 0):.0f}s "
              f"({model.get('where', '?')})")
        hf = {}
        hf_rows = [json.loads(l) for l in read_text(os.path.join(mdir, "hf.jsonl")).splitlines() if l.strip().startswith("{")]
        for r in hf_rows:
            hf[r["batch"]] = r
        hf_cmd = read_text(os.path.join(mdir, "hf.cmd"))
        hf_err = read_text(os.path.join(mdir, "hf.error"))
        hf_desc = (f"HF transformers {hf_rows[0].get('transformers')} (torch {hf_rows[0].get('torch')}, bf16, "
                   f"attn {hf_rows[0].get('attn_implementation')}, experts {hf_rows[0].get('experts_implementation')})"
                   if hf_rows else "HF transformers")
        if hf_rows:
            extra = f", dequantised in {hf_rows[0]['dequant_s']:.0f}s" if "dequant_s" in hf_rows[0] else ""
            print(f"  peer: {hf_desc}; loaded in {hf_rows[0].get('load_s', 0):.0f}s{extra}")
        elif hf_err:
            print(f"  peer: HF transformers did not run: {hf_err}")
        rows = []
        print(f"  {'batch':>5} {'prompt':>6} {'dsinfer tok/s':>14} {'HF tok/s':>9} {'ratio':>7} {'step ms':>8} "
              f"{'HF step ms':>10} {'roofline ms':>11} {'of roofline':>11}")
        for path in sorted(glob.glob(os.path.join(mdir, "ds_*.json")), key=lambda p: int(re.sub(r"\D", "", os.path.basename(p)) or 0)):
            base = path[: -len(".json")]
            d = read_json(path)
            cmd = read_text(base + ".cmd")
            if not d:
                err = read_text(base + ".error", "no output")
                print(f"  {os.path.basename(base)}: failed: {err}")
                rows.append({"cmd": cmd, "error": err})
                add_row(a.rows, a.part, cmd, f"failed: {err}")
                continue
            B, P, G = d["batch"], d["prompt_len"], d["gen_len"]
            h = hf.get(B)
            ratio = d["decode_tok_s"] / h["decode_tok_s"] if h and h.get("decode_tok_s") else None
            roof_ms = frac = None
            if mb and copy:
                roof_ms = 1e3 * roofline_bytes(mb, cfg, B, P + G / 2) / (copy * 1e9)
                frac = roof_ms / d["decode_step_ms"] if d.get("decode_step_ms") else None
            print(f"  {B:>5} {P:>6} {d['decode_tok_s']:>14.1f} {fmt(h and h.get('decode_tok_s')):>9} "
                  f"{fmt(ratio, 2):>7} {d['decode_step_ms']:>8.2f} {fmt(h and h.get('decode_step_ms_median'), 2):>10} "
                  f"{fmt(roof_ms, 2):>11} {('%.0f%%' % (100 * frac)) if frac else '-':>11}")
            r = {"cmd": cmd, "dsinfer": d, "hf": h, "ratio": ratio, "roofline_ms": roof_ms, "of_roofline": frac}
            rows.append(r)
            add_row(a.rows, a.part, cmd,
                    f"decode {d['decode_tok_s']:.1f} tok/s, step {d['decode_step_ms']:.2f} ms"
                    + (f" (memory roofline {roof_ms:.2f} ms = {100 * frac:.0f}%)" if frac else "")
                    + f"; prefill {d['prefill_tok_s']:.0f} tok/s",
                    (f"{hf_desc}: {h['decode_tok_s']:.1f} tok/s, step {h.get('decode_step_ms_median', 0):.2f} ms" if h else
                     f"HF: {hf_err or 'no figure'}"),
                    f"{ratio:.2f}x" if ratio else "")
            if B == 1 and P >= 256:
                ttft_ms = 1e3 * P / d["prefill_tok_s"]
                hf_ms = 1e3 * h["prefill_s"] if h and "prefill_s" in h else None
                print(f"  prefill of a {P}-token prompt (batch 1): dsinfer {ttft_ms:.0f} ms ({d['prefill_tok_s']:.0f} tok/s)"
                      + (f", HF {hf_ms:.0f} ms ({h['prefill_tok_s']:.0f} tok/s): {hf_ms / ttft_ms:.2f}x" if hf_ms else ""))
                r["ttft_ms"], r["hf_ttft_ms"] = ttft_ms, hf_ms
                add_row(a.rows, a.part, cmd, f"prefill {P} tokens: {ttft_ms:.0f} ms ({d['prefill_tok_s']:.0f} tok/s)",
                        f"HF: {hf_ms:.0f} ms" if hf_ms else "HF: no figure",
                        f"{hf_ms / ttft_ms:.2f}x" if hf_ms else "")
        b32 = next((r for r in rows if r.get("dsinfer", {}).get("batch") == 32), None)
        if b32 and b32.get("ratio"):
            print(f"  goal (decode at batch 32 >= 10x HF transformers): {b32['ratio']:.1f}x -> "
                  f"{'met' if b32['ratio'] >= 10 else 'NOT met'}")
        if hf_cmd:
            print(f"  HF command: {hf_cmd}")
        result["models"][tag] = {"model": model, "hf_cmd": hf_cmd, "hf_error": hf_err, "rows": rows}
    if mb_note := bw.get("note"):
        print(mb_note)
    print("roofline: bytes a decode step must read (weights as stored, routed experts the batch reaches under "
          "uniform routing, embedding rows, bf16 latent KV at the mean context) / the copy bandwidth above")
    if a.out:
        json.dump(result, open(a.out, "w"), indent=1)
    return 0


# ---------------------------------------------------------------------------------------------
def load_logits(path: str):
    with open(path) as f:
        text = f.read()
    i = text.find("{")
    return json.loads(text[i:])["logits"] if i >= 0 else None


def cmd_compare_logits(a) -> int:
    want, got = load_logits(a.want), load_logits(a.got)
    if not want or not got or len(want) != len(got) or any(len(x) != len(y) for x, y in zip(want, got)):
        print(json.dumps({"error": "shapes differ or empty"}))
        return 1
    mw = max(abs(v) for row in want for v in row)
    md = max(abs(x - y) for rw, rg in zip(want, got) for x, y in zip(rw, rg))
    rel = md / mw if mw else float("inf")
    print(json.dumps({"max_abs_diff": md, "max_abs_want": mw, "rel": rel, "rows": len(want), "vocab": len(want[0])}))
    return 0


def cmd_parallel(a) -> int:
    checks = [json.loads(l) for l in read_text(os.path.join(a.dir, "checks.jsonl")).splitlines() if l.strip()]
    for c in checks:
        what = c.get("what", "")
        if c.get("ok"):
            res = "ok"
        elif c.get("error"):
            res = f"failed: {c['error']}"
        else:
            res = "FAILED"
        print(f"  {what}: {res}{' (' + c['figure'] + ')' if c.get('figure') else ''}")
        add_row(a.rows, a.part, c.get("cmd", what), f"{res}{'; ' + c['figure'] if c.get('figure') else ''}",
                c.get("peer", ""), c.get("ratio", ""))
    if a.out:
        json.dump({"checks": checks}, open(a.out, "w"), indent=1)
    bad = [c for c in checks if not c.get("ok")]
    print(f"{len(checks) - len(bad)} of {len(checks)} checks passed")
    return 0


# ---------------------------------------------------------------------------------------------
def metric(text: str, name: str):
    m = re.search(r"^" + re.escape(name) + r"(?:\{\})? ([0-9.eE+-]+)$", text, re.M)
    return float(m.group(1)) if m else None


def cmd_serving(a) -> int:
    d = a.dir
    rep = read_json_file(os.path.join(d, "loadgen.json"))
    info = read_json_file(os.path.join(d, "info.json")) or {}
    out = {"info": info}
    what = info.get("what", "dsinfer serve")
    if rep:
        t = rep["total"]
        ms = lambda s, q: s[q] * 1e3
        print(f"{what}: {info.get('clients', '?')} closed-loop clients, priority mix {info.get('mix', '?')}, "
              f"prompts {info.get('prompt', '?')}, outputs {info.get('output', '?')} tokens; window {rep.get('window_s', 0):.0f}s")
        print(f"  output {t['output_token_throughput_tps']:.0f} tok/s, {t['request_throughput_rps']:.1f} req/s; "
              f"TTFT p50/p99 {ms(t['ttft_s'], 'p50'):.0f}/{ms(t['ttft_s'], 'p99'):.0f} ms; TPOT p50/p99 "
              f"{ms(t['tpot_s'], 'p50'):.1f}/{ms(t['tpot_s'], 'p99'):.1f} ms; codes {t.get('status_codes')}; "
              f"checks {'passed' if rep['checks']['passed'] else 'FAILED'}")
        for p, g in sorted(rep.get("priorities", {}).items()):
            if g.get("started"):
                print(f"  {p:<11} {g['ok']:>5} ok: TTFT p50/p99 {ms(g['ttft_s'], 'p50'):.0f}/{ms(g['ttft_s'], 'p99'):.0f} ms, "
                      f"TPOT p50/p99 {ms(g['tpot_s'], 'p50'):.1f}/{ms(g['tpot_s'], 'p99'):.1f} ms")
        add_row(a.rows, a.part, info.get("cmd", "dsinfer-loadgen"),
                f"{t['output_token_throughput_tps']:.0f} output tok/s, {t['request_throughput_rps']:.1f} req/s; "
                f"TTFT p50/p99 {ms(t['ttft_s'], 'p50'):.0f}/{ms(t['ttft_s'], 'p99'):.0f} ms; TPOT p50/p99 "
                f"{ms(t['tpot_s'], 'p50'):.1f}/{ms(t['tpot_s'], 'p99'):.1f} ms ({what}, {info.get('clients', '?')} clients, "
                f"checks {'passed' if rep['checks']['passed'] else 'FAILED'})")
        out["loadgen"] = {"total": t, "priorities": rep.get("priorities"), "checks": rep.get("checks"),
                          "window_s": rep.get("window_s")}
    else:
        print(f"{what}: no loadgen report")
    before, after = read_text(os.path.join(d, "metrics_before.txt")), read_text(os.path.join(d, "metrics_after.txt"))
    if before and after:
        def delta(n):
            x, y = metric(before, n), metric(after, n)
            return None if x is None or y is None else y - x
        n, s = delta("dsinfer_step_duration_seconds_count"), delta("dsinfer_step_duration_seconds_sum")
        m, q = delta("dsinfer_batch_sequences_count"), delta("dsinfer_batch_sequences_sum")
        if n and s:
            step = s / n
            seqs = q / m if m else None
            print(f"  engine step during the load: {1e3 * step:.2f} ms mean over {n:.0f} steps"
                  + (f", {seqs:.1f} sequences per step" if seqs else ""))
            out["step_s"], out["batch_sequences"] = step, seqs
    alone, loaded = read_json(os.path.join(d, "client_alone.json")), read_json(os.path.join(d, "client_loaded.json"))
    if alone and loaded:
        x, y = alone.get("token_ids", []), loaded.get("token_ids", [])
        same = x == y and len(x) > 0
        diff = next((i for i, (p, q) in enumerate(zip(x, y)) if p != q), None if len(x) == len(y) else min(len(x), len(y)))
        print(f"  greedy output alone vs in a batch under load: {'identical' if same else 'DIFFERENT'} "
              f"({len(x)} vs {len(y)} tokens{'' if same else f', first difference at token {diff}'}; "
              f"{info.get('running_during', '?')} sequences running when the second was sent)")
        add_row(a.rows, a.part, info.get("client_cmd", "dsinfer client"),
                f"greedy output alone vs in a batch: {'identical' if same else f'different from token {diff}'} ({len(x)} tokens)")
        out["greedy_same"] = same
    else:
        print(f"  greedy output alone vs in a batch: not compared ({read_text(os.path.join(d, 'client.error'), 'no client output')})")
        out["greedy_same"] = None
    if a.out:
        json.dump(out, open(a.out, "w"), indent=1)
    return 0


def read_json_file(path: str):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


# ---------------------------------------------------------------------------------------------
def cmd_summary(a) -> int:
    w = a.work
    machine = read_text(os.path.join(w, "machine.txt"))
    info = dict(l.split(": ", 1) for l in machine.splitlines() if ": " in l)
    parts = [l.split("|") for l in read_text(os.path.join(w, "parts.tsv")).splitlines() if l.count("|") >= 4]
    print("dsinfer GPU check (scripts/gpu-check.sh)")
    print(machine)
    print(f"elapsed: {a.elapsed}s of the {info.get('budget', '?').split(';')[0]} budget")
    print()
    print(f"{'part':<44} {'result':<7} {'time':>5} {'cap':>5}  why / what")
    for pid, title, st, dt, lim in parts:
        word, _, why = st.partition(":")
        word = {"pass": "PASS", "fail": "FAIL", "skip": "skipped"}.get(word.strip(), word.strip())
        cap = lim + "s" if lim not in ("", "0") else "-"
        print(f"{title:<44} {word:<7} {dt + 's':>5} {cap:>5}  {why.strip()}")
    for pid, title, st, dt, lim in parts:
        det = read_text(os.path.join(w, "details", pid))
        if det:
            print(f"\n== {title}")
            print(det)
    try:
        raw = open(os.path.join(w, "rows.tsv")).read()
    except OSError:
        raw = ""
    rows = [l.split("\t") for l in raw.split("\n") if l.count("\t") >= 4]
    print()
    if a.append_results == "yes" and rows:
        date = info.get("date", time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
        gpu = info.get("gpu", "?").split(",")[0].strip() or "?"
        commit = info.get("commit", "?")
        titles = {p[0]: p[1] for p in parts}
        lines = [
            "",
            f"## GPU check {date.split()[0]}: {gpu}, commit {commit}",
            "",
            f"Command: `{a.command}` (scripts/gpu-check.sh; {info.get('host', '')}; {info.get('nvcc', '')}). "
            "Results of every part: the run's summary.txt; figures below as measured in that one run.",
            "",
            "| date | GPU | commit | part | command | figures | peer | ratio |",
            "|---|---|---|---|---|---|---|---|",
        ]
        esc = lambda x: x.replace("|", "\\|")
        for part, command, figures, peer, ratio in (r[:5] for r in rows):
            lines.append(f"| {date} | {gpu} | {commit.split()[0]} | {esc(titles.get(part, part))} | `{command}` | "
                         f"{esc(figures)} | {esc(peer)} | {esc(ratio)} |")
        lines.append("")
        lines.append("| part | result | time |")
        lines.append("|---|---|---|")
        for pid, title, st, dt, lim in parts:
            lines.append(f"| {esc(title)} | {esc(st)} | {dt} s |")
        with open(a.results, "a") as f:
            f.write("\n".join(lines) + "\n")
        print(f"{len(rows)} rows appended to {os.path.relpath(a.results)} (copied to $OUT/RESULTS.md)")
    else:
        why = "no figures" if not rows else "not a GPU run" if a.append_results == "no" else a.append_results
        print(f"no rows appended to bench/RESULTS.md ({why}); {len(rows)} figure rows in logs/rows.tsv")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    k = sub.add_parser("kernels")
    k.add_argument("files", nargs="*")
    e = sub.add_parser("e2e")
    e.add_argument("dir")
    p = sub.add_parser("parallel")
    p.add_argument("dir")
    s = sub.add_parser("serving")
    s.add_argument("dir")
    for x in (k, e, p, s):
        x.add_argument("--out", default=None)
        x.add_argument("--rows", default=None)
        x.add_argument("--part", default="?")
    mb = sub.add_parser("model-bytes")
    mb.add_argument("dir")
    c = sub.add_parser("compare-logits")
    c.add_argument("want")
    c.add_argument("got")
    sm = sub.add_parser("summary")
    sm.add_argument("--work", required=True)
    sm.add_argument("--elapsed", type=int, default=0)
    sm.add_argument("--results", required=True)
    sm.add_argument("--append-results", default="no")
    sm.add_argument("--command", default="bash scripts/gpu-check.sh")
    a = ap.parse_args()
    return {"kernels": cmd_kernels, "e2e": cmd_e2e, "parallel": cmd_parallel, "serving": cmd_serving,
            "model-bytes": cmd_model_bytes, "compare-logits": cmd_compare_logits, "summary": cmd_summary}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
