#!/usr/bin/env python3
"""HF `tokenizers` single-threaded encode throughput on the same corpus as bench/tokenizer_bench.cc.

The corpus is tests/fixtures/tokenizer/corpus.json: its texts, in order, are repeated until the
total reaches --mb megabytes (1 MB = 1e6 bytes of UTF-8). Each text is one encode call
(add_special_tokens=False), exactly as the C++ benchmark does.

  warm: one untimed pass first, so the BPE word cache is filled; the best of --runs timed passes.
  cold: a freshly loaded tokenizer, one timed pass (the cache fills during the pass).
Times are thread CPU time, like Google Benchmark's default in bench/tokenizer_bench.cc.

Usage: python3 tools/bench_hf_tokenizer.py [--mb 4] [--runs 5] [--repo .]
"""

import os

# Single thread: no Rayon pool, no batch parallelism. Set before tokenizers is imported.
os.environ["RAYON_NUM_THREADS"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402

import tokenizers  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402


def load_corpus(repo, mb):
    with open(os.path.join(repo, "tests/fixtures/tokenizer/corpus.json"), encoding="utf-8") as f:
        sections = json.load(f)["sections"]
    texts = [t for s in sections for t in s["texts"] if t]
    docs, total = [], 0
    while total < mb * 1e6:
        for t in texts:
            docs.append(t)
            total += len(t.encode("utf-8"))
    return docs, total


def one_pass(tok, docs):
    """Seconds of this thread's CPU time (the machine may be shared) and the token count."""
    t0 = time.thread_time()
    n = 0
    for d in docs:
        n += len(tok.encode(d, add_special_tokens=False).ids)
    return time.thread_time() - t0, n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repo", default=os.path.join(os.path.dirname(__file__), ".."))
    ap.add_argument("--mb", type=float, default=4.0)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    path = os.path.join(args.repo, "models/tokenizers/deepseek-v3/tokenizer.json")
    docs, total = load_corpus(args.repo, args.mb)

    cold_tok = Tokenizer.from_file(path)
    cold_s, n_ids = one_pass(cold_tok, docs)

    tok = Tokenizer.from_file(path)
    one_pass(tok, docs)
    warm_s = min(one_pass(tok, docs)[0] for _ in range(args.runs))

    print(json.dumps({
        "tokenizers_version": tokenizers.__version__,
        "bytes": total, "docs": len(docs), "tokens": n_ids,
        "hf_warm_mb_s": round(total / warm_s / 1e6, 2),
        "hf_cold_mb_s": round(total / cold_s / 1e6, 2),
    }))


if __name__ == "__main__":
    main()
