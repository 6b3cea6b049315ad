#!/usr/bin/env bash
# dsinfer's end-to-end CPU benchmark against its speed peers, in one run, same thread count:
#   llama.cpp  llama-bench (prefill pp P and batch-1 decode tg G, -lm none, --poll 0 and the
#              default 50: busy-polling threads lose badly when the 2 cores are shared) and
#              llama-batched-bench (decode at batch 1, 8, 32 after P-token prompts, -lm none)
#   HF         bench/hf_cpu_bench.py (transformers on CPU, bf16, eager experts) at batch 1, 8, 32
#   dsinfer    build/src/cli/dsinfer bench (a note, and the run goes on, if missing or failing)
# on the bench model of tools/make_bench_model.py (DeepSeek-V2-Lite dims, 4 layers, bf16) and its
# GGUF from tools/build_llama_cpp.sh. Prints a markdown table, the dsinfer/peer ratios, the
# machine, the date and every command. Raw outputs go to $PEERS/results/<timestamp>/.
#
# The machine is shared and one run can be 2-5x slow, so the engines run in REPS interleaved
# rounds (llama.cpp, HF, dsinfer, then again) and every number is the best over the rounds,
# for every engine alike. The 1-minute load average at the start of each measurement is kept
# in results.jsonl.
#
# Usage: bench/cpu_peers.sh [--threads 2] [--prompt-len 128] [--gen-len 16] [--reps 2]
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
THREADS=2 PROMPT=128 GEN=16 REPS=2 BATCHES="1 8 32" HF_BATCHES="1 8 32"
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
    -h|--help) sed -n 2,20p "$0"; exit 0 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done

OUT="$PEERS/results/$(date +%Y%m%d-%H%M%S)"
mkdir -p "$OUT"
RES="$OUT/results.jsonl"   # one line per measurement: engine, batch, round, load, prefill, decode
CMDS="$OUT/commands.txt"
: > "$RES"; : > "$CMDS"
T_START=$SECONDS
log() { echo "[cpu_peers $(date +%T) +$((SECONDS - T_START))s] $*" >&2; }
load1() { cut -d' ' -f1 /proc/loadavg; }
# run OUTFILE CMD...: records CMD (once per distinct command), stdout to OUTFILE, stderr to OUTFILE.err
run() {
  local out=$1; shift
  grep -qxF -- "$*" "$CMDS" || echo "$*" >> "$CMDS"
  "$@" > "$out" 2> "$out.err"
}
NPL=$(echo $BATCHES | tr ' ' ',')
MAXB=$(echo $BATCHES | tr ' ' '\n' | sort -n | tail -1)
CTX=$(( (MAXB * (PROMPT + GEN) + 255) / 256 * 256 ))
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)

LLAMA_OK=0
if ((RUN_LLAMA)); then
  if [[ -x "$LLAMA_BIN/llama-bench" && -x "$LLAMA_BIN/llama-batched-bench" && -f "$GGUF" ]]; then
    LLAMA_OK=1
  else
    echo "llama.cpp: not available (run tools/build_llama_cpp.sh)"
  fi
fi
DS_OK=0
if ((RUN_DS)); then
  if [[ -x "$DSINFER" ]]; then DS_OK=1; else echo "dsinfer: not available ($DSINFER not built)"; fi
fi
[[ -f "$MODEL_DIR/model.safetensors.index.json" ]] || { echo "no bench model in $MODEL_DIR: run tools/make_bench_model.py" >&2; exit 1; }

for ((r = 1; r <= REPS; r++)); do
  # ------------------------------------------------------------ llama.cpp
  if ((LLAMA_OK)); then
    log "round $r/$REPS: llama-bench pp$PROMPT tg$GEN"
    L=$(load1)
    run "$OUT/llama-bench.$r.jsonl" "$LLAMA_BIN/llama-bench" -m "$GGUF" -t "$THREADS" -p "$PROMPT" -n "$GEN" \
      -r 2 -lm none --poll 0,50 -o jsonl || log "llama-bench failed (see $OUT/llama-bench.$r.jsonl.err)"
    python3 - "$OUT/llama-bench.$r.jsonl" "$RES" "$r" "$L" <<'PY'
import json, sys
path, res, rnd, load = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
pp = tg = None
for line in open(path):
    if line.startswith("{"):
        d = json.loads(line)
        best = max(d.get("samples_ts") or [d["avg_ts"]])
        if d.get("n_gen", 0) == 0:
            pp = max(pp or 0, best)
        else:
            tg = max(tg or 0, best)
if pp or tg:
    with open(res, "a") as f:
        f.write(json.dumps({"engine": "llama.cpp llama-bench", "batch": 1, "round": rnd, "load": load,
                            "prefill": pp, "decode": tg}) + "\n")
PY
    log "round $r/$REPS: llama-batched-bench npl $NPL"
    L=$(load1)
    run "$OUT/llama-batched-bench.$r.jsonl" "$LLAMA_BIN/llama-batched-bench" -m "$GGUF" -t "$THREADS" \
      -c "$CTX" -b 2048 -ub 512 -npp "$PROMPT" -ntg "$GEN" -npl "$NPL" -lm none --output-format jsonl \
      || log "llama-batched-bench failed (see $OUT/llama-batched-bench.$r.jsonl.err)"
    python3 - "$OUT/llama-batched-bench.$r.jsonl" "$RES" "$r" "$L" <<'PY'
import json, sys
path, res, rnd, load = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
with open(res, "a") as f:
    for line in open(path):
        if line.startswith("{"):
            d = json.loads(line)
            f.write(json.dumps({"engine": "llama.cpp batched-bench", "batch": d["pl"], "round": rnd,
                                "load": load, "prefill": d["speed_pp"], "decode": d["speed_tg"]}) + "\n")
PY
  fi
  # ------------------------------------------------------------ HF transformers
  if ((RUN_HF)); then
    for B in $HF_BATCHES; do
      log "round $r/$REPS: HF transformers batch $B"
      L=$(load1)
      run "$OUT/hf.b$B.$r.json" python3 "$REPO/bench/hf_cpu_bench.py" --model "$MODEL_DIR" --threads "$THREADS" \
        --batch "$B" --prompt-len "$PROMPT" --gen-len "$GEN" --dtype bf16 --reps 1 --experts-impl "$HF_EXPERTS" \
        || { log "HF batch $B failed (see $OUT/hf.b$B.$r.json.err)"; continue; }
      python3 - "$OUT/hf.b$B.$r.json" "$RES" "$r" "$L" "$HF_EXPERTS" <<'PY'
import json, sys
path, res, rnd, load, experts = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
d = json.loads([l for l in open(path) if l.startswith("{")][-1])
with open(res, "a") as f:
    f.write(json.dumps({"engine": f"HF transformers {d['transformers']} ({experts} experts)", "batch": d["batch"],
                        "round": rnd, "load": load, "prefill": d["prefill_tok_s"],
                        "batch_prefill": d["batch_prefill_tok_s"], "decode": d["decode_tok_s"]}) + "\n")
PY
    done
  fi
  # ------------------------------------------------------------ dsinfer
  if ((DS_OK)); then
    for B in $BATCHES; do
      log "round $r/$REPS: dsinfer batch $B"
      L=$(load1)
      run "$OUT/dsinfer.b$B.$r.json" "$DSINFER" bench --model "$MODEL_DIR" --dtype bf16 --batch "$B" \
        --prompt-len "$PROMPT" --gen-len "$GEN" --threads "$THREADS" \
        || { log "dsinfer batch $B failed (see $OUT/dsinfer.b$B.$r.json.err)"; continue; }
      python3 - "$OUT/dsinfer.b$B.$r.json" "$RES" "$r" "$L" "$B" <<'PY'
import json, sys
path, res, rnd, load, B = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
for line in open(path):
    line = line.strip()
    if line.startswith("{"):
        try:
            d = json.loads(line)
        except ValueError:
            continue
        with open(res, "a") as f:
            f.write(json.dumps({"engine": "dsinfer", "batch": d.get("batch", B), "round": rnd, "load": load,
                                "prefill": d.get("prefill_tok_s"), "decode": d.get("decode_tok_s")}) + "\n")
PY
    done
  fi
done
if ((DS_OK)) && ! grep -q '"dsinfer"' "$RES"; then
  echo "dsinfer: not available (bench printed no result; see $OUT/dsinfer.*.err)"
  DS_OK=0
fi

# ---------------------------------------------------------------- report
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
CPU=$(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -1)
LLAMA_COMMIT=$(cut -c1-10 "$PEERS/llama.cpp/.commit" 2>/dev/null)
export MODEL_DIR THREADS PROMPT GEN REPS CPU LOAD_BEFORE LOAD_AFTER LLAMA_COMMIT
export NCPU=$(nproc) MEM_GIB=$(free -g | awk '/^Mem:/{print $2}') DATE="$(date -u '+%Y-%m-%d %H:%M UTC')"
export ELAPSED=$((SECONDS - T_START))
python3 - "$RES" "$CMDS" <<'PY'
import json, os, sys
E = os.environ
raw = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
cmds = [l.rstrip("\n") for l in open(sys.argv[2]) if l.strip()]
best = {}  # (engine, batch) -> best over rounds of each field
order = []
for d in raw:
    k = (d["engine"], d["batch"])
    if k not in best:
        best[k] = {}
        order.append(k)
    for f in ("prefill", "batch_prefill", "decode"):
        if d.get(f) is not None:
            best[k][f] = max(best[k].get(f, 0), d[f])
    best[k].setdefault("loads", []).append(d.get("load"))
fmt = lambda x: "-" if x is None else f"{x:.1f}"
P, G = E["PROMPT"], E["GEN"]
print()
print("## dsinfer CPU benchmark vs peers")
print()
print(f"Model: DeepSeek-V2-Lite dims cut to 4 layers, random bf16 weights ({E['MODEL_DIR']}); "
      f"{E['THREADS']} threads for every engine; prompt {P} tokens; {G} generated tokens per sequence; "
      f"best of {E['REPS']} interleaved rounds.")
print()
print("| engine | batch | prefill tok/s | decode tok/s | load avg at start |")
print("|---|---:|---:|---:|---|")
for k in order:
    b = best[k]
    pre = b.get("prefill") if k[1] == 1 or k[0] == "dsinfer" else b.get("batch_prefill", b.get("prefill"))
    loads = "/".join(f"{x:.1f}" for x in b["loads"] if x is not None)
    print(f"| {k[0]} | {k[1]} | {fmt(pre)} | {fmt(b.get('decode'))} | {loads} |")
print()
print(f"prefill: batch 1 = one {P}-token prompt; batch B > 1 = B prompts of {P} tokens in one batch "
      f"(llama-batched-bench S_PP, HF batch_prefill_tok_s, dsinfer's prefill_tok_s).")
print(f"decode: B x {G} generated tokens / decode time, prompt excluded (llama-bench tg: batch 1, "
      f"empty context; the others after the {P}-token prompts).")
ds = {k[1]: v for k, v in best.items() if k[0] == "dsinfer"}
def peer(pred):
    return {k[1]: v for k, v in best.items() if pred(k[0])}
llama_b = peer(lambda e: e == "llama.cpp llama-bench")
llama_bb = peer(lambda e: e == "llama.cpp batched-bench")
hf = peer(lambda e: e.startswith("HF"))
def ratio(a, b):
    return "-" if not a or not b else f"{a / b:.2f}x"
print()
if not ds:
    print("Ratios: dsinfer not available.")
else:
    print("| ratio | batch | prefill | decode |")
    print("|---|---:|---:|---:|")
    for B in sorted(ds):
        d = ds[B]
        # llama.cpp: batch-1 prefill from llama-bench pp; decode from batched-bench, and at batch 1 the
        # better of llama-bench tg and batched-bench (the peer's best)
        lp = llama_b.get(1, {}).get("prefill") if B == 1 else None
        ld = llama_bb.get(B, {}).get("decode")
        if B == 1 and llama_b.get(1, {}).get("decode"):
            ld = max(ld or 0, llama_b[1]["decode"])
        if lp or ld:
            print(f"| dsinfer / llama.cpp | {B} | {ratio(d.get('prefill'), lp)} | {ratio(d.get('decode'), ld)} |")
        if B in hf:
            hp = hf[B].get("prefill") if B == 1 else None
            print(f"| dsinfer / HF | {B} | {ratio(d.get('prefill'), hp)} | {ratio(d.get('decode'), hf[B].get('decode'))} |")
    print()
    print("Prefill ratios are for batch 1 only (one prompt); decode ratios at every batch.")
print()
print(f"Machine: {E['CPU']}, {E['NCPU']} CPUs, {E['MEM_GIB']} GiB RAM; load average before "
      f"{E['LOAD_BEFORE']}, after {E['LOAD_AFTER']}")
print(f"Date: {E['DATE']}; llama.cpp {E.get('LLAMA_COMMIT') or '?'} (llama-cpp-python 0.3.36 sdist); "
      f"run took {E['ELAPSED']} s")
print()
print("Commands:")
print("```")
for c in cmds:
    print(c)
print("```")
PY
echo "raw outputs: $OUT" >&2
