#!/usr/bin/env bash
# dsinfer's end-to-end CPU benchmark against its speed peers, in one run, same thread count:
#   llama.cpp    llama-bench (prefill pp P, batch-1 decode tg G, -lm none) and
#                llama-batched-bench (decode at batch 1, 8, 32 after P-token prompts)
#   HF           bench/hf_cpu_bench.py (transformers on CPU, bf16, eager experts) at batch 1, 8, 32
#   dsinfer      build/src/cli/dsinfer bench (skipped with a note if missing or failing)
# on the bench model from tools/make_bench_model.py (DeepSeek-V2-Lite dims, 4 layers, bf16) and its
# GGUF from tools/build_llama_cpp.sh. Prints a markdown table, the dsinfer/peer ratios, the machine,
# the date and every command. Raw outputs go to $PEERS/results/<timestamp>/.
#
# Every measurement is the best of REPS repetitions, for every engine alike: the machine is shared
# and a single run can be 2-5x slow.
#
# Usage: bench/cpu_peers.sh [--threads 2] [--prompt-len 128] [--gen-len 32] [--reps 2]
#          [--batches "1 8 32"] [--hf-batches "1 8 32"] [--no-llama] [--no-hf] [--no-dsinfer]
# Env:   MODEL_DIR, GGUF, LLAMA_BIN, DSINFER, HF_EXPERTS (default eager), PEERS
set -uo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PEERS="${PEERS:-$REPO/.peers}"
MODEL_DIR="${MODEL_DIR:-$PEERS/v2lite-4l}"
GGUF="${GGUF:-$PEERS/v2lite-4l-bf16.gguf}"
LLAMA_BIN="${LLAMA_BIN:-$PEERS/llama.cpp/build/bin}"
DSINFER="${DSINFER:-$REPO/build/src/cli/dsinfer}"
HF_EXPERTS="${HF_EXPERTS:-eager}"
THREADS=2 PROMPT=128 GEN=32 REPS=2 BATCHES="1 8 32" HF_BATCHES="1 8 32"
RUN_LLAMA=1 RUN_HF=1 RUN_DS=1
while (($#)); do
  case "$1" in
    --threads) THREADS=$2; shift 2 ;;
    --prompt-len) PROMPT=$2; shift 2 ;;
    --gen-len) GEN=$2; shift 2 ;;
    --reps) REPS=$2; shift 2 ;;
    --batches) BATCHES=$2; shift 2 ;;
    --hf-batches) HF_BATCHES=$2; shift 2 ;;
    --no-llama) RUN_LLAMA=0; shift ;;
    --no-hf) RUN_HF=0; shift ;;
    --no-dsinfer) RUN_DS=0; shift ;;
    -h|--help) sed -n 2,17p "$0"; exit 0 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done

OUT="$PEERS/results/$(date +%Y%m%d-%H%M%S)"
mkdir -p "$OUT"
RES="$OUT/results.jsonl"      # one line per measurement: engine, batch, prefill, decode
CMDS="$OUT/commands.txt"
: > "$RES"; : > "$CMDS"
T_START=$SECONDS
log() { echo "[cpu_peers $(date +%T) +$((SECONDS - T_START))s] $*" >&2; }
# run CMD..., recording it; stdout to $1
run() { local out=$1; shift; echo "$*" >> "$CMDS"; "$@" > "$out" 2> "$out.err"; }
NPL=$(echo $BATCHES | tr ' ' ',')
MAXB=$(echo $BATCHES | tr ' ' '\n' | sort -n | tail -1)
CTX=$(( (MAXB * (PROMPT + GEN) + 255) / 256 * 256 ))
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------- llama.cpp
LLAMA_OK=0
if ((RUN_LLAMA)); then
  if [[ -x "$LLAMA_BIN/llama-bench" && -x "$LLAMA_BIN/llama-batched-bench" && -f "$GGUF" ]]; then
    LLAMA_OK=1
    log "llama-bench pp$PROMPT tg$GEN x$((REPS + 1))"
    run "$OUT/llama-bench.jsonl" "$LLAMA_BIN/llama-bench" -m "$GGUF" -t "$THREADS" -p "$PROMPT" -n "$GEN" \
      -r $((REPS + 1)) -lm none -o jsonl || { log "llama-bench failed (see $OUT/llama-bench.jsonl.err)"; }
    for ((r = 1; r <= REPS; r++)); do
      log "llama-batched-bench npl $NPL (rep $r/$REPS)"
      run "$OUT/llama-batched-bench.$r.jsonl" "$LLAMA_BIN/llama-batched-bench" -m "$GGUF" -t "$THREADS" \
        -c "$CTX" -b 2048 -ub 512 -npp "$PROMPT" -ntg "$GEN" -npl "$NPL" -lm none --output-format jsonl \
        || log "llama-batched-bench failed (see $OUT/llama-batched-bench.$r.jsonl.err)"
    done
    python3 - "$OUT" "$RES" <<'PY'
import glob, json, sys
out, res = sys.argv[1], sys.argv[2]
def rows(path):
    for line in open(path):
        line = line.strip()
        if line.startswith("{"):
            try:
                yield json.loads(line)
            except ValueError:
                pass
with open(res, "a") as f:
    pp = tg = None
    try:
        for d in rows(f"{out}/llama-bench.jsonl"):
            best = max(d.get("samples_ts") or [d["avg_ts"]])
            if d.get("n_gen", 0) == 0:
                pp = best
            else:
                tg = best
    except FileNotFoundError:
        pass
    if pp or tg:
        f.write(json.dumps({"engine": "llama.cpp (llama-bench)", "batch": 1, "prefill": pp, "decode": tg}) + "\n")
    best = {}
    for p in sorted(glob.glob(f"{out}/llama-batched-bench.*.jsonl")):
        for d in rows(p):
            b = best.setdefault(d["pl"], {"prefill": 0, "decode": 0})
            b["prefill"] = max(b["prefill"], d["speed_pp"])
            b["decode"] = max(b["decode"], d["speed_tg"])
    for pl in sorted(best):
        f.write(json.dumps({"engine": "llama.cpp (batched-bench)", "batch": pl, **best[pl]}) + "\n")
PY
  else
    log "llama.cpp not built or GGUF missing: run tools/build_llama_cpp.sh"
  fi
fi

# ---------------------------------------------------------------- HF transformers
if ((RUN_HF)); then
  for B in $HF_BATCHES; do
    log "HF transformers batch $B"
    run "$OUT/hf.b$B.json" python3 "$REPO/bench/hf_cpu_bench.py" --model "$MODEL_DIR" --threads "$THREADS" \
      --batch "$B" --prompt-len "$PROMPT" --gen-len "$GEN" --dtype bf16 --reps "$REPS" --experts-impl "$HF_EXPERTS" \
      || { log "HF batch $B failed (see $OUT/hf.b$B.json.err)"; continue; }
    python3 - "$OUT/hf.b$B.json" "$RES" "$HF_EXPERTS" <<'PY'
import json, sys
d = json.loads([l for l in open(sys.argv[1]) if l.startswith("{")][-1])
pre = d["prefill_tok_s"] if d["batch"] == 1 else d["batch_prefill_tok_s"]
with open(sys.argv[2], "a") as f:
    f.write(json.dumps({"engine": f"HF transformers {d['transformers']} ({sys.argv[3]} experts)",
                        "batch": d["batch"], "prefill": pre, "decode": d["decode_tok_s"]}) + "\n")
PY
  done
fi

# ---------------------------------------------------------------- dsinfer
if ((RUN_DS)); then
  if [[ -x "$DSINFER" ]]; then
    for B in $BATCHES; do
      for ((r = 1; r <= REPS; r++)); do
        log "dsinfer batch $B (rep $r/$REPS)"
        run "$OUT/dsinfer.b$B.$r.json" "$DSINFER" bench --model "$MODEL_DIR" --dtype bf16 --batch "$B" \
          --prompt-len "$PROMPT" --gen-len "$GEN" --threads "$THREADS" \
          || log "dsinfer batch $B rep $r failed (see $OUT/dsinfer.b$B.$r.json.err)"
      done
      python3 - "$OUT" "$B" "$RES" <<'PY'
import glob, json, sys
out, B, res = sys.argv[1], int(sys.argv[2]), sys.argv[3]
pre = dec = None
for p in glob.glob(f"{out}/dsinfer.b{B}.*.json"):
    for line in open(p):
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            d = json.loads(line)
        except ValueError:
            continue
        if d.get("prefill_tok_s") is not None:
            pre = max(pre or 0, d["prefill_tok_s"])
        if d.get("decode_tok_s") is not None:
            dec = max(dec or 0, d["decode_tok_s"])
if pre is not None or dec is not None:
    with open(res, "a") as f:
        f.write(json.dumps({"engine": "dsinfer", "batch": B, "prefill": pre, "decode": dec}) + "\n")
PY
    done
    grep -q '"dsinfer"' "$RES" || echo "dsinfer: not available (bench ran but printed no result; see $OUT/dsinfer.*.err)"
  else
    echo "dsinfer: not available ($DSINFER not built)"
  fi
fi

# ---------------------------------------------------------------- report
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
CPU=$(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -1)
LLAMA_COMMIT=$(cat "$PEERS/llama.cpp/.commit" 2>/dev/null | cut -c1-10)
python3 - "$RES" "$CMDS" <<PY
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
cmds = [l.rstrip("\n") for l in open(sys.argv[2]) if l.strip()]
fmt = lambda x: "-" if x is None else f"{x:.1f}"
print()
print("## dsinfer CPU benchmark vs peers")
print()
print("Model: DeepSeek-V2-Lite dims, 4 layers, random bf16 weights ($MODEL_DIR); threads $THREADS; "
      "prompt $PROMPT tokens; $GEN generated tokens per sequence; best of $REPS reps.")
print()
print("| engine | batch | prefill tok/s | decode tok/s |")
print("|---|---:|---:|---:|")
for r in rows:
    print(f"| {r['engine']} | {r['batch']} | {fmt(r['prefill'])} | {fmt(r['decode'])} |")
print()
print("prefill tok/s: batch 1 = one $PROMPT-token prompt; batch B > 1 = B prompts of $PROMPT tokens "
      "prefilled together (llama-batched-bench S_PP, HF batch_prefill_tok_s, dsinfer's own prefill_tok_s).")
print("decode tok/s: B x $GEN generated tokens / decode time (prompt excluded).")
ds = {r["batch"]: r for r in rows if r["engine"] == "dsinfer"}
def peer(prefix):
    return {r["batch"]: r for r in rows if r["engine"].startswith(prefix)}
lb = {r["batch"]: r for r in rows if r["engine"] == "llama.cpp (llama-bench)"}
lbb = peer("llama.cpp (batched")
hf = peer("HF")
print()
if not ds:
    print("Ratios: dsinfer not available.")
else:
    print("| ratio | batch | prefill | decode |")
    print("|---|---:|---:|---:|")
    def ratio(a, b):
        return "-" if not a or not b else f"{a / b:.2f}x"
    for b, d in sorted(ds.items()):
        for name, tab in (("dsinfer / llama.cpp", lbb), ("dsinfer / HF", hf)):
            p = tab.get(b)
            if p is None:
                continue
            pre = p["prefill"]
            if name.endswith("llama.cpp") and b == 1 and 1 in lb:
                pre = lb[1]["prefill"]  # llama-bench pp for batch-1 prefill
            print(f"| {name} | {b} | {ratio(d['prefill'], pre)} | {ratio(d['decode'], p['decode'])} |")
print()
print("Machine: $CPU, $(nproc) CPUs visible, $(free -g | awk '/^Mem:/{print $2}') GiB RAM; "
      "load average before $LOAD_BEFORE, after $LOAD_AFTER")
print("Date: $(date -u '+%Y-%m-%d %H:%M UTC'); llama.cpp ${LLAMA_COMMIT:-?} (llama-cpp-python sdist); "
      "total time $((SECONDS - T_START)) s")
print()
print("Commands:")
print("\`\`\`")
for c in cmds:
    print(c)
print("\`\`\`")
PY
echo "raw outputs: $OUT" >&2
