#!/usr/bin/env bash
# interleaved llama-bench / dsinfer bench on the random R1-Distill-Qwen-1.5B-shaped model, 2 rounds
set -uo pipefail
PEERS="${PEERS:-/work/peers}"; M="${MODEL:-$PEERS/distill-qwen-1.5b}"; G="${GGUF:-$M-bf16.gguf}"
LB="$PEERS/llama.cpp/build/bin/llama-bench"; DS="${DSINFER:-build/src/cli/dsinfer}"
OUT=$PEERS/results/distill-$(date +%Y%m%d-%H%M%S); mkdir -p $OUT
for r in 1 2; do
  echo "round $r llama-bench load $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a $OUT/log
  $LB -m $G -t 2 -p 128 -n 16 -r 2 -lm none --poll 0,50 -o jsonl > $OUT/llama.$r.jsonl 2> $OUT/llama.$r.err
  for B in 1 8; do
    echo "round $r dsinfer b$B load $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a $OUT/log
    $DS bench --model $M --dtype bf16 --batch $B --prompt-len 128 --gen-len 16 --threads 2 > $OUT/ds.b$B.$r.json 2> $OUT/ds.b$B.$r.err
    tail -1 $OUT/ds.b$B.$r.json
  done
done
echo "after load $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a $OUT/log
python3 - $OUT <<'PY'
import json, glob, sys
o = sys.argv[1]
for f in sorted(glob.glob(o + "/llama.*.jsonl")):
    for l in open(f):
        if l.startswith("{"):
            d = json.loads(l); print(f, "pp" if d["n_gen"] == 0 else "tg", d["n_prompt"], d["n_gen"], "poll", d.get("poll"), "best", max(d["samples_ts"]))
for f in sorted(glob.glob(o + "/ds.*.json")):
    d = json.loads(open(f).read().strip().splitlines()[-1]); print(f, d["batch"], "prefill", round(d["prefill_tok_s"], 1), "decode", round(d["decode_tok_s"], 2))
PY
echo $OUT
