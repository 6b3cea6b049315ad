#!/usr/bin/env bash
# dsinfer bench vs HF transformers (bench/hf_cpu_bench.py) on a V4-Flash-dims checkpoint from
# tools/make_v4_bench_model.py: prefill of one 128-token prompt, decode at batch 1 and 8,
# 2 threads, ROUNDS interleaved rounds (best of is taken by the summary). Peak RSS: dsinfer's
# sampled from /proc (anonymous and file-backed apart), HF's from /usr/bin/time -v; the 1-minute
# load average is logged before each run.
# HF_POLICIES sets OMP_WAIT_POLICY for the HF runs only (PASSIVE: torch's OpenMP threads sleep
# instead of spinning at barriers; on a shared machine the default spin made a 2-thread decode
# step up to 50x slower). HF_POLICIES="default PASSIVE" runs HF once per policy per round
# ("default": OMP_WAIT_POLICY unset).
#   MODEL=DIR DSINFER=build/src/cli/dsinfer [OUT=DIR] [ROUNDS=2] [GEN=16] [DP8=128] [HF_EXPERTS=eager]
#   [HF_POLICIES="default PASSIVE"] bench/v4_cpu_peers.sh
set -uo pipefail
M="${MODEL:?MODEL=checkpoint dir}"; DS="${DSINFER:-build/src/cli/dsinfer}"
ROUNDS="${ROUNDS:-2}"; GEN="${GEN:-16}"; P=128
DP8="${DP8:-$P}"  # prompt before the batch-8 decode (dsinfer's V4 MoE is one GEMV per token: 8x128 takes minutes)
OUT="${OUT:-bench-v4-$(date +%Y%m%d-%H%M%S)}"; mkdir -p "$OUT"
HF_EXTRA=(); [ -n "${HF_EXPERTS:-}" ] && HF_EXTRA=(--experts-impl "$HF_EXPERTS")
load() { cut -d' ' -f1-3 /proc/loadavg; }
# peak VmRSS / RssAnon / RssFile (kB) of a running process, sampled every 0.2 s, and the share of
# one core it got (CPU seconds / wall seconds, from /proc/PID/stat), to $2
peak_rss() {
  local pid=$1 out=$2 rss=0 anon=0 file=0 ticks=0 v t0 t1
  t0=$(date +%s.%N)
  while kill -0 "$pid" 2>/dev/null; do
    if v=$(awk '/^VmRSS|^RssAnon|^RssFile/{printf "%s ", $2}' "/proc/$pid/status" 2>/dev/null) && [ -n "$v" ]; then
      set -- $v; [ "$1" -gt $rss ] && rss=$1; [ "$2" -gt $anon ] && anon=$2; [ "$3" -gt $file ] && file=$3
    fi
    v=$(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null) && [ -n "$v" ] && ticks=$v
    sleep 0.2
  done
  t1=$(date +%s.%N)
  echo "{\"peak_vmrss_kb\": $rss, \"peak_rss_anon_kb\": $anon, \"peak_rss_file_kb\": $file, \"cpu_s\": $(awk -v t=$ticks -v hz="$(getconf CLK_TCK)" 'BEGIN{printf "%.2f", t / hz}'), \"wall_s\": $(awk -v a=$t0 -v b=$t1 'BEGIN{printf "%.2f", b - a}')}" > "$out"
}
for r in $(seq 1 "$ROUNDS"); do
  for B in 1 8; do
    PL=$P; [ $B = 8 ] && PL=$DP8
    echo "round $r dsinfer b$B prompt $PL start $(date -u +%H:%M:%S) load $(load) binary $(sha256sum "$DS" | cut -c1-12) $(date -u -r "$DS" +%H:%M)" | tee -a "$OUT/log"
    "$DS" bench --model "$M" --dtype bf16 --batch $B --prompt-len $PL --gen-len "$GEN" \
      --threads 2 > "$OUT/ds.b$B.$r.json" 2> "$OUT/ds.b$B.$r.err" &
    pid=$!; peak_rss $pid "$OUT/ds.b$B.$r.rss"; wait $pid
    tail -1 "$OUT/ds.b$B.$r.json"
  done
  for pol in ${HF_POLICIES:-default}; do
    echo "round $r hf omp_wait_policy=$pol start $(date -u +%H:%M:%S) load $(load)" | tee -a "$OUT/log"
    envs=(); [ "$pol" != default ] && envs=(OMP_WAIT_POLICY="$pol")
    env "${envs[@]}" /usr/bin/time -v python3 bench/hf_cpu_bench.py --model "$M" --threads 2 --runs 1:$P,8:$DP8 \
      --prompt-len $P --gen-len "$GEN" --dtype bf16 --reps 1 "${HF_EXTRA[@]}" \
      > "$OUT/hf.$pol.$r.jsonl" 2> "$OUT/hf.$pol.$r.err"
    cat "$OUT/hf.$pol.$r.jsonl"
  done
done
echo "after $(date -u +%H:%M:%S) load $(load)" | tee -a "$OUT/log"
python3 - "$OUT" <<'PY'
import glob, json, re, sys
o = sys.argv[1]
def mem(f):
    try:
        d = json.load(open(f))
        r = {k[5:-3] + "_GiB": round(v / 2**20, 2) for k, v in d.items() if k.endswith("_kb")}
        r["cores_used"] = round(d["cpu_s"] / d["wall_s"], 2)
        return r
    except Exception:
        return None
def rss(err):
    t = open(err).read()
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", t)
    c = re.search(r"Percent of CPU this job got: (\d+)%", t)
    return {"peak_vmrss_GiB": round(int(m.group(1)) / 2**20, 2) if m else None,
            "cores_used": int(c.group(1)) / 100 if c else None}
best = {}
for f in sorted(glob.glob(o + "/ds.b*.json")):
    lines = open(f).read().strip().splitlines()
    if not lines: continue
    d = json.loads(lines[-1]); b = d["batch"]
    print(f, "batch", b, "prefill", round(d["prefill_tok_s"], 1), "decode", round(d["decode_tok_s"], 2),
          "mem", mem(f[:-5] + ".rss"), "weight_GB", round(d["weight_bytes"] / 1e9, 2))
    k = ("dsinfer", b); best.setdefault(k, [0, 0]); best[k][0] = max(best[k][0], d["prefill_tok_s"]); best[k][1] = max(best[k][1], d["decode_tok_s"])
for f in sorted(glob.glob(o + "/hf.*.jsonl")):
    pol = f.split("/hf.")[-1].split(".")[0]
    for l in open(f):
        if not l.startswith("{"): continue
        d = json.loads(l); b = d["batch"]
        pre = d.get("prefill_tok_s", d["batch_prefill_tok_s"] if b > 1 else 0)
        print(f, "batch", b, "prefill", pre, "batch_prefill", d["batch_prefill_tok_s"], "decode", d["decode_tok_s"],
              "experts", d["experts_implementation"], "mem", rss(f[:-6] + ".err"))
        k = ("hf-" + pol, b); best.setdefault(k, [0, 0]); best[k][0] = max(best[k][0], pre); best[k][1] = max(best[k][1], d["decode_tok_s"])
print("best:", json.dumps({f"{e} b{b}": [round(x, 2) for x in v] for (e, b), v in sorted(best.items())}))
for (e, b), h in sorted(best.items()):
    if e.startswith("hf") and ("dsinfer", b) in best:
        d = best[("dsinfer", b)]
        print(f"dsinfer/{e} b{b}: prefill {d[0] / h[0]:.2f}x decode {d[1] / h[1]:.2f}x")
PY
echo "$OUT"
