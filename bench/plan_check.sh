#!/usr/bin/env bash
# Checks `dsinfer plan` against a measured CPU run (docs/capacity_planning.md, "Check"):
#   1. fits the planner's `measured:` step costs (a step time per batch size, per extra token and
#      per attended context token) to `dsinfer bench` runs of the bundled tiny model (median of
#      REPS runs per point);
#   2. serves the tiny model (`dsinfer serve`, f32, THREADS threads, loopback) and drives it with
#      dsinfer-loadgen, Poisson arrivals from 4 county tenants, prompts 32-64, outputs 64-128:
#      a moderate load (RATE req/s in all) and an overload (OVER_RATE req/s);
#   3. runs `dsinfer plan` on configs/plan/cpu-tiny.yaml with the fitted coefficients and the
#      same rates, and prints measured vs simulated throughput and TTFT/TPOT (goal: within 20%).
# Usage: bench/plan_check.sh [BUILD_DIR]  (needs dsinfer with serve + plan, dsinfer-loadgen,
#   dsinfer-make-tiny-model; SERVE_BIN overrides the binary that serves and benches)
# Env: OUT (reports; default a fresh /tmp dir), RATE (3), OVER_RATE (10), DURATION (120),
#   WARMUP (20), REPS (3), THREADS (nproc), FIT_ONLY=1 (only step 1), SKIP_OVERLOAD=1.
# Loopback only; every wait is bounded; the server is killed on exit.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${1:-${BUILD:-$ROOT/build}}
DSINFER=${DSINFER:-$BUILD/src/cli/dsinfer}
SERVE_BIN=${SERVE_BIN:-$DSINFER}
LOADGEN=${LOADGEN:-$BUILD/bench/dsinfer-loadgen}
MAKE_MODEL=${MAKE_MODEL:-$BUILD/tools/dsinfer-make-tiny-model}
OUT=${OUT:-$(mktemp -d /tmp/dsinfer-plan-check.XXXXXX)}
mkdir -p "$OUT"
THREADS=${THREADS:-$(nproc)}
RATE=${RATE:-3} OVER_RATE=${OVER_RATE:-10} DURATION=${DURATION:-120} WARMUP=${WARMUP:-20}
REPS=${REPS:-3}

log() { echo "[plan_check $(date +%H:%M:%S)] $*" >&2; }
for bin in "$DSINFER" "$SERVE_BIN" "$MAKE_MODEL"; do
  [[ -x "$bin" ]] || { echo "missing $bin (ninja -C $BUILD dsinfer dsinfer-loadgen dsinfer-make-tiny-model)" >&2; exit 1; }
done
[[ "$("$DSINFER" help)" == *"  plan "* ]] || { echo "$DSINFER has no plan command" >&2; exit 1; }

MODEL=$OUT/tiny-v3
[[ -f "$MODEL/config.json" ]] || "$MAKE_MODEL" --out "$MODEL" >/dev/null

# --- 1. step-cost fit from dsinfer bench --------------------------------------------------------
# Each run: B prompts of P tokens prefilled one per step, then 31 decode steps of B sequences.
GRID_P=${GRID_P:-"32 64 128"} GRID_B=${GRID_B:-"1 2 4 8 16 32 64"}
log "fitting step costs: dsinfer bench, P in {$GRID_P}, B in {$GRID_B}, $REPS reps"
: >"$OUT/bench.jsonl"
for rep in $(seq 1 "$REPS"); do
  for p in $GRID_P; do
    for b in $GRID_B; do
      "$SERVE_BIN" bench --model "$MODEL" --dtype f32 --threads "$THREADS" --batch "$b" \
        --prompt-len "$p" --gen-len 32 2>/dev/null >>"$OUT/bench.jsonl"
    done
  done
done
python3 - "$OUT" "$GRID_B" <<'PY'
import itertools, json, statistics, sys
import numpy as np
out, grid_b = sys.argv[1], [int(b) for b in sys.argv[2].split()]
runs = {}
for line in open(f"{out}/bench.jsonl"):
    r = json.loads(line)
    runs.setdefault((r["prompt_len"], r["batch"]), []).append(r)
# Unknowns: base(B) for each B of the grid (a step of B one-token items), token_seconds (each
# further token of an item), context_token_seconds (each attended (query, key) pair).
nb = len(grid_b)
rows = []  # (coefficient vector, seconds, label)
G = 32  # --gen-len: decode steps attend P+1 .. P+G-1 tokens (mean P + G/2)
for P in sorted({p for p, _ in runs}):
    # One prompt per prefill step, in every run with this P.
    t = statistics.median(P / r["prefill_tok_s"] for (p, _), rs in runs.items() if p == P for r in rs)
    x = [0.0] * (nb + 2)
    x[grid_b.index(1)], x[nb], x[nb + 1] = 1, P - 1, P * (P + 1) / 2
    rows.append((x, t, f"prefill P={P}"))
for (P, B), rs in sorted(runs.items()):
    x = [0.0] * (nb + 2)
    x[grid_b.index(B)], x[nb + 1] = 1, B * (P + G / 2)
    rows.append((x, statistics.median(r["decode_step_ms"] / 1e3 for r in rs), f"decode B={B} P={P}"))
def fit(free):  # least squares on relative error over the columns in `free`
    A = np.array([[x[c] / t for c in free] for x, t, _ in rows])
    coef, *_ = np.linalg.lstsq(A, np.ones(len(rows)), rcond=None)
    full = np.zeros(nb + 2)
    full[free] = coef
    return full
cols = list(range(nb + 2))
c = fit(cols)
while min(c) < 0:  # a negative coefficient is dropped (fixed at 0) and the rest refitted
    cols.remove(int(np.argmin(c)))
    c = fit(cols)
result = {"fit": {"token_seconds": float(c[nb]), "context_token_seconds": float(c[nb + 1]),
                  "batch_seconds": [[b, float(c[i])] for i, b in enumerate(grid_b)]},
          "points": []}
for x, t, w in rows:
    f = float(np.dot(c, x))
    result["points"].append({"what": w, "measured_s": t, "fitted_s": f})
    print(f"  {w:20s} measured {t * 1e3:7.2f} ms  fitted {f * 1e3:7.2f} ms  ({100 * (f / t - 1):+.0f}%)",
          file=sys.stderr)
print("  fit: token_seconds %.3g, context_token_seconds %.3g, batch_seconds %s" % (
    c[nb], c[nb + 1], ", ".join(f"{b}: {1e3 * c[i]:.2f} ms" for i, b in enumerate(grid_b))), file=sys.stderr)
json.dump(result, open(f"{out}/fit.json", "w"), indent=1)
PY
# The planner input with the fresh coefficients (the committed file's other settings).
python3 - "$ROOT/configs/plan/cpu-tiny.yaml" "$OUT" <<'PY'
import json, re, sys
src, out = sys.argv[1], sys.argv[2]
fit = json.load(open(f"{out}/fit.json"))["fit"]
text = open(src).read()
def fmt(v):
    return "[" + ", ".join(f"[{b}, {s:.5f}]" for b, s in v) + "]" if isinstance(v, list) else f"{v:.4g}"
for k, v in fit.items():
    text, n = re.subn(rf"(\n\s+{k}: ).*", lambda m: m.group(1) + fmt(v), text)
    assert n == 1, k
text = text.replace("config: tiny-v3-config.json", f"config: {out}/tiny-v3/config.json")
open(f"{out}/cpu-tiny.yaml", "w").write(text)
PY
if [[ "${FIT_ONLY:-0}" == 1 ]]; then
  python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1]))["fit"]))' "$OUT/fit.json"
  exit 0
fi
[[ -x "$LOADGEN" ]] || { echo "missing $LOADGEN" >&2; exit 1; }

# --- 2. the measured serving runs ---------------------------------------------------------------
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'; }
sha() { printf %s "$1" | sha256sum | cut -d' ' -f1; }
GRPC=$(free_port) HTTP=$(free_port)
{
  cat <<EOF
model_path: $MODEL
dtype: f32
backend: cpu
threads: $THREADS
grpc_listen: 127.0.0.1:$GRPC
http_listen: 127.0.0.1:$HTTP
tls:
  enabled: false
scheduler:
  max_batched_tokens: 1024
  max_running: 64
  max_waiting: 64
  max_queue_seconds: 30
  prefill_chunk: 256
kv_cache:
  num_blocks: 1024
  prefix_caching: true
tenants:
EOF
  for i in 1 2 3 4; do
    printf '  - id: county-%d\n    weight: 1.0\n    max_priority: interactive\n    api_key_sha256: [%s]\n' \
      "$i" "$(sha plan-check-key-$i)"
  done
  printf 'allow_unauthenticated: false\ndrain_grace_seconds: 2\nlog_level: warning\n'
} >"$OUT/serve.yaml"

SERVER_PID=""
stop_server() {
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  SERVER_PID=""
}
trap stop_server EXIT
trap 'exit 130' INT TERM
"$SERVE_BIN" serve --config "$OUT/serve.yaml" >"$OUT/serve.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 600); do
  curl -sf "http://127.0.0.1:$HTTP/readyz" >/dev/null 2>&1 && break
  kill -0 "$SERVER_PID" 2>/dev/null || { tail -20 "$OUT/serve.log" >&2; exit 1; }
  sleep 0.2
done
curl -sf "http://127.0.0.1:$HTTP/readyz" >/dev/null || { echo "server not ready" >&2; exit 1; }

spec() {  # spec TOTAL_RATE DURATION WARMUP SEED
  python3 - "$@" <<'PY'
import json, sys
rate, dur, warm, seed = float(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
print(json.dumps({"duration_s": dur, "warmup_s": warm, "drain_s": 120, "seed": seed,
  "max_requests": 100000, "tenants": [
    {"name": f"county-{i}", "api_key": f"plan-check-key-{i}", "rate": rate / 4,
     "priority_mix": {"interactive": 1}, "prompt_tokens": [32, 64], "output_tokens": [64, 128]}
    for i in range(1, 5)]}))
PY
}
scrape() { curl -sf "http://127.0.0.1:$HTTP/metrics" >"$1" || : >"$1"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$SERVER_PID/stat"; }
run_load() {  # run_load NAME TOTAL_RATE
  spec "$2" "$DURATION" "$WARMUP" 11 >"$OUT/$1.spec.json"
  scrape "$OUT/$1.metrics_before"
  local t0 k0 rc=0
  t0=$(date +%s.%N) k0=$(cpu_ticks)
  "$LOADGEN" --target "127.0.0.1:$GRPC" --label "$1" --spec "$OUT/$1.spec.json" \
    >"$OUT/$1.json" 2>"$OUT/$1.txt" || rc=$?
  [[ $rc -le 2 ]] || { echo "loadgen $1 failed ($rc)" >&2; exit 1; }
  echo "$(cpu_ticks) $k0 $(date +%s.%N) $t0 $(getconf CLK_TCK) $(cut -d' ' -f1 /proc/loadavg)" >"$OUT/$1.cpu"
  scrape "$OUT/$1.metrics_after"
}
log "warm-up"
spec 2 8 0 3 >"$OUT/warmup.spec.json"
"$LOADGEN" --target "127.0.0.1:$GRPC" --spec "$OUT/warmup.spec.json" >/dev/null 2>&1 || true
log "measured: Poisson $RATE req/s for $DURATION s (first $WARMUP s not counted)"
run_load moderate "$RATE"
if [[ "${SKIP_OVERLOAD:-0}" != 1 ]]; then
  log "measured: Poisson $OVER_RATE req/s (overload) for $DURATION s"
  run_load overload "$OVER_RATE"
fi
stop_server

# --- 3. the planner on the same workloads -------------------------------------------------------
# cpu-tiny.yaml offers 3 req/s; --scale sets the total rate.
log "dsinfer plan"
"$DSINFER" plan --input "$OUT/cpu-tiny.yaml" --scale "$(python3 -c "print($RATE / 3)")" \
  >"$OUT/plan_moderate.json"
if [[ "${SKIP_OVERLOAD:-0}" != 1 ]]; then
  "$DSINFER" plan --input "$OUT/cpu-tiny.yaml" --scale "$(python3 -c "print($OVER_RATE / 3)")" \
    >"$OUT/plan_overload.json"
fi

python3 - "$OUT" <<'PY'
import json, os, re, sys
out = sys.argv[1]
def metric(path, name):
    try: text = open(path).read()
    except OSError: return None
    m = re.search(r"^" + re.escape(name) + r" ([0-9.eE+-]+)$", text, re.M)
    return float(m.group(1)) if m else None
summary = {"fit": json.load(open(f"{out}/fit.json"))["fit"]}
print("| load | metric | measured (loadgen) | simulated (dsinfer plan) | sim / measured |")
print("|---|---|---|---|---|")
for name in ("moderate", "overload"):
    if not os.path.exists(f"{out}/{name}.json"): continue
    m = json.load(open(f"{out}/{name}.json"))["total"]
    p = json.load(open(f"{out}/plan_{name}.json"))["deployments"][0]["per_replica"]
    s = p["total"]
    b, a = f"{out}/{name}.metrics_before", f"{out}/{name}.metrics_after"
    d = lambda n: (metric(a, n) or 0) - (metric(b, n) or 0)
    steps = d("dsinfer_step_duration_seconds_count")
    k1, k0, w1, w0, tck, load = (float(x) for x in open(f"{out}/{name}.cpu").read().split())
    rows = [("output tok/s", m["output_token_throughput_tps"], p["output_tokens_per_s"]),
            ("requests/s", m["request_throughput_rps"], p["requests_per_s"]),
            ("TTFT p50 (ms)", 1e3 * m["ttft_s"]["p50"], 1e3 * s["ttft_s"]["p50"]),
            ("TTFT p90 (ms)", 1e3 * m["ttft_s"]["p90"], 1e3 * s["ttft_s"]["p90"]),
            ("TTFT p99 (ms)", 1e3 * m["ttft_s"]["p99"], 1e3 * s["ttft_s"]["p99"]),
            ("TPOT p50 (ms)", 1e3 * m["tpot_s"]["p50"], 1e3 * s["tpot_s"]["p50"]),
            ("TPOT p90 (ms)", 1e3 * m["tpot_s"]["p90"], 1e3 * s["tpot_s"]["p90"]),
            ("mean step (ms)", 1e3 * d("dsinfer_step_duration_seconds_sum") / steps if steps else 0,
             1e3 * p["mean_step_s"]),
            ("mean batch (sequences)", d("dsinfer_batch_sequences_sum") / steps if steps else 0,
             p["mean_batch_sequences"])]
    summary[name] = {"server_cpu_share": (k1 - k0) / tck / (w1 - w0) / os.cpu_count(),
                     "load_average_1m_after": load, "codes": m["status_codes"], "rows": {}}
    for what, x, y in rows:
        r = y / x if x else float("nan")
        summary[name]["rows"][what] = {"measured": x, "simulated": y, "ratio": r}
        print(f"| {name} | {what} | {x:.1f} | {y:.1f} | {r:.2f} |")
    print(f"| {name} | server CPU share; 1-min load after; codes | {100 * summary[name]['server_cpu_share']:.0f}% of "
          f"{os.cpu_count()} cores; {load:.1f}; {m['status_codes']} | | |")
json.dump(summary, open(f"{out}/summary.json", "w"), indent=1)
PY
log "reports in $OUT"
