#!/usr/bin/env bash
# Serving benchmark: starts `dsinfer serve` on loopback with the bundled tiny model and drives it
# with dsinfer-loadgen, all in one run:
#   (a) output-token throughput with 1, 8, 32, 64 closed-loop clients (goal: 32 >= 8x of 1);
#       1 and 32 run twice, interleaved, because a shared machine drifts
#   (b) two equal tenants, one flooding at 10x the other's rate: the other's p99 TTFT vs alone
#       (goal: within 2x)
#   (c) an emergency request's TTFT while a batch tenant saturates the server, vs idle
#   (d) overload: 64 clients against a small global queue (second server): time to rejection
#       p99, nothing lost or duplicated among admitted requests, retry hints
#   (e) rejections during long steps: 2,000-token prompts in 2,048-token steps (third server,
#       max_running 4, max_waiting 4), 10 clients looping: time to rejection p99 (goal < 20 ms)
#       against the step time
#   plus the scheduler's time per step (bench/scheduler_bench, fake executor) vs a real step
#   (dsinfer_step_duration_seconds from /metrics during the 64-client run).
# Usage: bench/serving_bench.sh [BUILD_DIR]   (default build-load; QUICK=1 shortens every run;
#        PARTS="b e" runs only those parts, (b) and (c) with the server of (a);
#        T_TPUT, T_WARM, T_FAIR, T_EMERG, T_OVER, T_LONG override a part's duration in seconds,
#        e.g. T_FAIR=150 PARTS=b for >= 300 victim requests per (b) case at 2.1 req/s, so that
#        p99 is not the worst one or two requests)
# Writes every report under $OUT (default a fresh /tmp dir) and prints a markdown summary.
# Loopback only; every wait is bounded; the servers are killed on exit.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${1:-${BUILD:-$ROOT/build-load}}
DSINFER=${DSINFER:-$BUILD/src/cli/dsinfer}  # override to bench another binary
LOADGEN=$BUILD/bench/dsinfer-loadgen
MAKE_MODEL=$BUILD/tools/dsinfer-make-tiny-model
SCHED_BENCH=$BUILD/bench/scheduler_bench
OUT=${OUT:-$(mktemp -d /tmp/dsinfer-serving-bench.XXXXXX)}
mkdir -p "$OUT"
THREADS=${THREADS:-$(nproc)}

# Durations (seconds); QUICK=1 for a smoke run of the script itself; each can be set from the
# environment (T_FAIR=150 ...).
if [[ "${QUICK:-0}" == 1 ]]; then
  D_TPUT=6 D_WARM=1 D_FAIR=10 D_EMERG=8 D_OVER=6 D_LONG=10
else
  D_TPUT=20 D_WARM=4 D_FAIR=30 D_EMERG=25 D_OVER=15 D_LONG=20
fi
T_TPUT=${T_TPUT:-$D_TPUT} T_WARM=${T_WARM:-$D_WARM} T_FAIR=${T_FAIR:-$D_FAIR}
T_EMERG=${T_EMERG:-$D_EMERG} T_OVER=${T_OVER:-$D_OVER} T_LONG=${T_LONG:-$D_LONG}
PARTS=${PARTS:-a b c d e}
part() { [[ " $PARTS " == *" $1 "* ]]; }

for bin in "$DSINFER" "$LOADGEN" "$MAKE_MODEL"; do
  [[ -x "$bin" ]] || { echo "missing $bin (ninja -C $BUILD dsinfer dsinfer-loadgen dsinfer-make-tiny-model)" >&2; exit 1; }
done
if "$DSINFER" serve 2>&1 | grep -q "unknown command"; then
  echo "$DSINFER was built without the server (dsinfer serve)" >&2; exit 1
fi

log() { echo "[serving_bench $(date +%H:%M:%S)] $*" >&2; }

source "$(dirname "${BASH_SOURCE[0]}")/server_lib.sh"

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}
sha() { printf %s "$1" | sha256sum | cut -d' ' -f1; }

# --- model -------------------------------------------------------------------------------------
MODEL=$OUT/tiny-v3
if [[ ! -f "$MODEL/config.json" ]]; then
  log "making the bundled tiny model in $MODEL"
  "$MAKE_MODEL" --out "$MODEL" >/dev/null
fi

# Bench keys (generated config only; the server stores their hashes).
KEY_C1=bench-key-county-1 KEY_C2=bench-key-county-2 KEY_C3=bench-key-county-3
KEY_C4=bench-key-county-4 KEY_EM=bench-key-emergency KEY_BATCH=bench-key-analytics
KEY_OPEN1=bench-key-open-1 KEY_OPEN2=bench-key-open-2

# write_config FILE GRPC_PORT HTTP_PORT MAX_RUNNING MAX_WAITING MAX_QUEUE_S [STEP_TOKENS]
write_config() {
  cat >"$1" <<EOF
model_path: $MODEL
dtype: f32
backend: cpu
threads: $THREADS
grpc_listen: 127.0.0.1:$2
http_listen: 127.0.0.1:$3
tls:
  enabled: false
scheduler:
  max_batched_tokens: ${7:-1024}
  max_running: $4
  max_waiting: $5
  max_queue_seconds: $6
  prefill_chunk: ${7:-256}
kv_cache:
  num_blocks: 1024
  prefix_caching: true
tenants:
EOF
  local i
  for i in 1 2 3 4; do
    local key_var=KEY_C$i
    cat >>"$1" <<EOF
  - id: county-$i
    weight: 1.0
    max_priority: interactive
    max_concurrent: 16
    max_queued: 48
    tokens_per_minute: 0
    api_key_sha256: [$(sha "${!key_var}")]
EOF
  done
  for i in 1 2; do
    local key_var=KEY_OPEN$i
    cat >>"$1" <<EOF
  - id: open-$i
    weight: 1.0
    max_priority: interactive
    max_concurrent: 0
    max_queued: 48
    api_key_sha256: [$(sha "${!key_var}")]
EOF
  done
  cat >>"$1" <<EOF
  - id: emergency-dispatch
    weight: 4.0
    max_priority: emergency
    api_key_sha256: [$(sha "$KEY_EM")]
  - id: provincial-analytics
    weight: 0.25
    max_priority: batch
    api_key_sha256: [$(sha "$KEY_BATCH")]
allow_unauthenticated: false
drain_grace_seconds: 2
log_request_content: false
log_level: warning
EOF
}

# start_server CONFIG LOG: starts, waits (bounded) for /readyz.
start_server() {
  "$DSINFER" serve --config "$1" >"$2" 2>&1 &
  SERVER_PID=$!
  local http
  http=$(sed -n 's/^http_listen: //p' "$1")
  for _ in $(seq 1 600); do
    if curl -sf "http://$http/readyz" >/dev/null 2>&1; then return 0; fi
    kill -0 "$SERVER_PID" 2>/dev/null || { echo "server exited:" >&2; tail -20 "$2" >&2; exit 1; }
    sleep 0.2
  done
  echo "server not ready after 120 s" >&2; tail -20 "$2" >&2; exit 1
}

# loadgen NAME ARGS...: one run; JSON to $OUT/NAME.json, table to $OUT/NAME.txt (and stderr).
loadgen() {
  local name=$1; shift
  local rc=0
  "$LOADGEN" --target "127.0.0.1:$GRPC" --label "$name" "$@" >"$OUT/$name.json" 2>"$OUT/$name.txt" || rc=$?
  grep -v '^\[loadgen' "$OUT/$name.txt" >&2 || true
  [[ $rc -le 2 ]] || { echo "loadgen $name failed ($rc)" >&2; exit 1; }
}

scrape() { curl -sf "http://127.0.0.1:$HTTP/metrics" >"$1" || : >"$1"; }

# --- server 1: throughput, fairness, emergency ----------------------------------------------------
if part a || part b || part c; then
GRPC=$(free_port) HTTP=$(free_port)
write_config "$OUT/serve.yaml" "$GRPC" "$HTTP" 64 256 30
log "starting dsinfer serve on 127.0.0.1:$GRPC (metrics :$HTTP), threads $THREADS"
start_server "$OUT/serve.yaml" "$OUT/serve.log"

COUNTY_KEYS=$KEY_C1,$KEY_C2,$KEY_C3,$KEY_C4
LENS=(--prompt-tokens 32:64 --output-tokens 64:128)

log "warm-up"
loadgen warmup --api-keys "$COUNTY_KEYS" --concurrency 8 --duration 3 "${LENS[@]}" --drain 30

# (a) closed-loop throughput.
# Runs 1 and 32 twice, interleaved (1, 32, 8, 64, 1, 32): on a shared machine the pairs show
# the drift. Each run also records the server's CPU time, to see what share of the cores it got.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$SERVER_PID/stat"; }
part a && for run in c1 c32 c8 c64 c1_again c32_again; do
  c=${run#c}; c=${c%_again}
  log "(a) $c concurrent clients ($run)"
  scrape "$OUT/metrics_before_$run.txt"
  t0=$(date +%s.%N) k0=$(cpu_ticks)
  loadgen "tput_$run" --api-keys "$COUNTY_KEYS" --names county-1,county-2,county-3,county-4 \
    --concurrency "$c" --duration "$T_TPUT" --warmup "$T_WARM" "${LENS[@]}" --drain 60 --seed "$c"
  echo "$(cpu_ticks) $k0 $(date +%s.%N) $t0 $(getconf CLK_TCK) $THREADS" >"$OUT/cpu_$run.txt"
  scrape "$OUT/metrics_after_$run.txt"
done

# (b) fairness: victim at 15% of the best request capacity seen in (a) for the (b) length mix
# (mean output 48 tokens), flooder at 10x that (so ~1.5x what the server can do).
# Without (a): the capacity (output tok/s) from CAPACITY_TPS (default 680, the last (a) run).
VICTIM_RATE=$(python3 - "$OUT" "${CAPACITY_TPS:-680}" <<'EOF'
import glob, json, sys
files = glob.glob(sys.argv[1] + "/tput_c*.json")
tps = max(json.load(open(f))["total"]["output_token_throughput_tps"] for f in files) if files else float(sys.argv[2])
print(f"{max(0.2, 0.15 * tps / 48.0):.3f}")
EOF
)
if part b; then
log "(b) victim rate $VICTIM_RATE/s alone, then with a 10x flooder"
# fair_spec VICTIM_NAME VICTIM_KEY FLOODER_NAME FLOODER_KEY FACTOR (FACTOR 0: victim alone)
fair_spec() {
  local flooder=""
  if [[ $5 != 0 ]]; then
    flooder=',
  {"name": "'$3'", "api_key": "'$4'", "rate": '$VICTIM_RATE', "flood_factor": '$5',
   "prompt_tokens": [32, 64], "output_tokens": [32, 64]}'
  fi
  cat <<EOF
{"duration_s": $T_FAIR, "max_requests": 20000, "drain_s": 60, "seed": 7, "tenants": [
  {"name": "$1", "api_key": "$2", "rate": $VICTIM_RATE,
   "prompt_tokens": [32, 64], "output_tokens": [32, 64]}$flooder]}
EOF
}
# County tenants run at most 16 sequences each (max_concurrent); open-* tenants have no cap.
fair_spec county-1 "$KEY_C1" - - 0 >"$OUT/fair_alone.spec.json"
fair_spec county-1 "$KEY_C1" county-2 "$KEY_C2" 1 >"$OUT/fair_equal.spec.json"
fair_spec county-1 "$KEY_C1" county-2 "$KEY_C2" 10 >"$OUT/fair_flood.spec.json"
fair_spec open-1 "$KEY_OPEN1" open-2 "$KEY_OPEN2" 10 >"$OUT/fair_flood_uncapped.spec.json"
loadgen fair_alone --spec "$OUT/fair_alone.spec.json"
loadgen fair_equal --spec "$OUT/fair_equal.spec.json"
loadgen fair_flood --spec "$OUT/fair_flood.spec.json"
loadgen fair_flood_uncapped --spec "$OUT/fair_flood_uncapped.spec.json"
fi

# (c) emergency TTFT: idle, then with the batch tenant saturating (96 clients > max_running 64)
# and an interactive county at the same rate for comparison.
if part c; then
log "(c) emergency requests idle, then under a saturating batch load"
EM_TENANT='{"name": "emergency-dispatch", "api_key": "'$KEY_EM'", "rate": 1.0, "start_s": 3,
   "priority_mix": {"emergency": 1}, "prompt_tokens": [32, 64], "output_tokens": [16, 32]}'
cat >"$OUT/emerg_idle.spec.json" <<EOF
{"duration_s": $T_EMERG, "max_requests": 20000, "drain_s": 60, "seed": 11, "tenants": [$EM_TENANT]}
EOF
cat >"$OUT/emerg_load.spec.json" <<EOF
{"duration_s": $T_EMERG, "max_requests": 20000, "drain_s": 90, "seed": 11, "tenants": [$EM_TENANT,
  {"name": "county-3", "api_key": "$KEY_C3", "rate": 1.0, "start_s": 3,
   "priority_mix": {"interactive": 1}, "prompt_tokens": [32, 64], "output_tokens": [16, 32]},
  {"name": "provincial-analytics", "api_key": "$KEY_BATCH", "concurrency": 96,
   "priority_mix": {"batch": 1}, "prompt_tokens": [32, 64], "output_tokens": [64, 128]}]}
EOF
loadgen emerg_idle --spec "$OUT/emerg_idle.spec.json"
scrape "$OUT/metrics_before_emerg.txt"
loadgen emerg_load --spec "$OUT/emerg_load.spec.json"
scrape "$OUT/metrics_after_emerg.txt"
fi
stop_server
fi

# --- server 2: overload against a small global queue -------------------------------------------------
if part d; then
GRPC=$(free_port) HTTP=$(free_port)
write_config "$OUT/serve_small.yaml" "$GRPC" "$HTTP" 8 8 5
log "(d) overload: 64 clients, max_running 8, max_waiting 8 (second server on :$GRPC)"
start_server "$OUT/serve_small.yaml" "$OUT/serve_small.log"
loadgen overload --api-keys "$COUNTY_KEYS" --names county-1,county-2,county-3,county-4 \
  --concurrency 64 --duration "$T_OVER" --prompt-tokens 32:64 --output-tokens 16:32 \
  --reject-backoff 0.1 --max-requests 50000 --drain 60
scrape "$OUT/metrics_overload.txt"
stop_server
fi

# --- server 3: rejections while long CPU steps run ---------------------------------------------------
if part e; then
GRPC=$(free_port) HTTP=$(free_port)
# max_queue_seconds 600: every rejection here is an admission decision, none a queue timeout.
write_config "$OUT/serve_long.yaml" "$GRPC" "$HTTP" 4 4 600 2048
log "(e) 10 clients looping 2,000-token prompts, 2,048-token steps, max_running 4, max_waiting 4"
start_server "$OUT/serve_long.yaml" "$OUT/serve_long.log"
scrape "$OUT/metrics_before_long.txt"
loadgen long_steps --api-keys "$KEY_OPEN1,$KEY_OPEN2" --names open-1,open-2 \
  --concurrency 10 --duration "$T_LONG" --prompt-tokens 2000:2000 --output-tokens 4:8 \
  --reject-backoff 0.05 --max-requests 50000 --drain 120
scrape "$OUT/metrics_after_long.txt"
stop_server
fi

# --- scheduler time per step on a fake executor ------------------------------------------------------
if part a && [[ -x "$SCHED_BENCH" ]]; then
  log "scheduler_bench"
  timeout 300 "$SCHED_BENCH" --benchmark_filter='BM_SchedulerStep' --benchmark_format=json \
    >"$OUT/scheduler_bench.json" 2>/dev/null || : >"$OUT/scheduler_bench.json"
else
  : >"$OUT/scheduler_bench.json"
fi

# --- summary -----------------------------------------------------------------------------------------
python3 - "$OUT" <<'EOF'
import json, os, re, sys
out = sys.argv[1]
def load(n):
    with open(os.path.join(out, n + ".json")) as f: return json.load(f)
def metric(path, name):
    try: text = open(path).read()
    except OSError: return None
    m = re.search(r"^" + re.escape(name) + r" ([0-9.eE+-]+)$", text, re.M)
    return float(m.group(1)) if m else None
def ms(x): return f"{x * 1e3:.0f}"
def step_stats(before, after):
    """Mean step time (s) and mean sequences per step between two scrapes."""
    b, a = (os.path.join(out, f) for f in (before, after))
    def delta(name):
        x, y = metric(b, name), metric(a, name)
        return None if x is None or y is None else y - x
    n, t = delta("dsinfer_step_duration_seconds_count"), delta("dsinfer_step_duration_seconds_sum")
    m, q = delta("dsinfer_batch_sequences_count"), delta("dsinfer_batch_sequences_sum")
    return (t / n if n else None), (q / m if m else None)
summary = {}
print("| case | value | goal | met |\n|---|---|---|---|")
def cpu_share(run):
    try:
        k1, k0, w1, w0, tck, threads = (float(x) for x in open(os.path.join(out, f"cpu_{run}.txt")).read().split())
        return (k1 - k0) / tck / (w1 - w0) / threads
    except (OSError, ValueError):
        return None
def have(n): return os.path.exists(os.path.join(out, n + ".json"))
if have("tput_c1"):
    runs = ("c1", "c32", "c8", "c64", "c1_again", "c32_again")
    t = {run: load(f"tput_{run}")["total"] for run in runs}
    tps = {run: t[run]["output_token_throughput_tps"] for run in runs}
    base = (tps["c1"] + tps["c1_again"]) / 2
    for run in runs:
        r = t[run]
        st, sq = step_stats(f"metrics_before_{run}.txt", f"metrics_after_{run}.txt")
        cs = cpu_share(run)
        summary[f"tput_{run}"] = {"tok_s": tps[run], "req_s": r["request_throughput_rps"], "ratio_vs_mean_1": tps[run] / base,
                                  "ttft_p50_s": r["ttft_s"]["p50"], "ttft_p99_s": r["ttft_s"]["p99"],
                                  "tpot_p50_s": r["tpot_s"]["p50"], "step_s": st, "batch_sequences": sq,
                                  "server_cpu_share": cs, "checks": load(f"tput_{run}")["checks"]["passed"]}
        steptxt = f"; step {st * 1e3:.1f} ms at {sq:.1f} seqs" if st and sq else ""
        cputxt = f"; server got {100 * cs:.0f}% of {os.cpu_count()} cores" if cs is not None else ""
        print(f"| (a) {run}: output tok/s | {tps[run]:.1f} ({tps[run] / base:.2f}x of the mean 1-client run; "
              f"{r['request_throughput_rps']:.2f} req/s; TTFT p50/p99 {ms(r['ttft_s']['p50'])}/{ms(r['ttft_s']['p99'])} ms; "
              f"TPOT p50 {ms(r['tpot_s']['p50'])} ms{steptxt}{cputxt}) | | |")
    r32 = (tps["c32"] + tps["c32_again"]) / 2 / base
    pairs = [tps["c32"] / tps["c1"], tps["c32_again"] / tps["c1_again"]]
    # Tokens per second of server CPU time: less sensitive to what else the machine runs.
    per_cpu = {}
    for run in runs:
        cs = cpu_share(run)
        per_cpu[run] = tps[run] / (cs * os.cpu_count()) if cs else None
    cpu_ratio = None
    if all(per_cpu[r] for r in ("c1", "c1_again", "c32", "c32_again")):
        cpu_ratio = (per_cpu["c32"] + per_cpu["c32_again"]) / (per_cpu["c1"] + per_cpu["c1_again"])
    summary["tput_ratio_32_vs_1"] = {"mean_runs": r32, "adjacent_pairs": pairs, "per_server_cpu_second": cpu_ratio,
                                     "tokens_per_server_cpu_second": per_cpu}
    cpu_txt = (f"; per server CPU-second {cpu_ratio:.2f}x ({per_cpu['c1']:.0f}/{per_cpu['c1_again']:.0f} vs "
               f"{per_cpu['c32']:.0f}/{per_cpu['c32_again']:.0f} tok per CPU-s)") if cpu_ratio else ""
    print(f"| (a) 32 clients vs 1 client, output tok/s | {r32:.2f}x (means of two runs each; run pairs "
          f"{pairs[0]:.2f}x and {pairs[1]:.2f}x{cpu_txt}) | >= 8x | {'yes' if r32 >= 8 else 'no'} |")
if have("fair_alone"):
    fa, fe = load("fair_alone"), load("fair_equal")
    va, ve = fa["tenants"]["county-1"], fe["tenants"]["county-1"]
    summary["fairness"] = {"victim_alone": va["ttft_s"], "victim_equal": ve["ttft_s"]}
    print(f"| (b) victim TTFT p50/p99 alone; with an equal 1x co-tenant | {ms(va['ttft_s']['p50'])}/{ms(va['ttft_s']['p99'])} ms; "
          f"{ms(ve['ttft_s']['p50'])}/{ms(ve['ttft_s']['p99'])} ms (n={va['ttft_s']['n']}) | | |")
    for run, victim, flooder, what in (("fair_flood", "county-1", "county-2", "flooder capped at 16 running"),
                                       ("fair_flood_uncapped", "open-1", "open-2", "no per-tenant cap")):
        ff = load(run)
        vf, fl = ff["tenants"][victim], ff["tenants"][flooder]
        ratio = vf["ttft_s"]["p99"] / va["ttft_s"]["p99"] if va["ttft_s"]["p99"] else 0
        summary["fairness"][run] = {"victim": vf["ttft_s"], "ratio_p99": ratio, "victim_codes": vf["status_codes"],
                                    "flooder_codes": fl["status_codes"], "victim_tps": vf["output_token_throughput_tps"],
                                    "flooder_tps": fl["output_token_throughput_tps"], "victim_tpot": vf["tpot_s"]}
        print(f"| (b) victim p99 TTFT with a 10x flooder ({what}) | {ms(va['ttft_s']['p99'])} -> {ms(vf['ttft_s']['p99'])} ms "
              f"({ratio:.2f}x; p50 {ms(vf['ttft_s']['p50'])} ms; victim TPOT p50 {ms(vf['tpot_s']['p50'])} ms vs "
              f"{ms(va['tpot_s']['p50'])} alone; victim codes {vf['status_codes']}; flooder codes {fl['status_codes']}; "
              f"flooder {fl['output_token_throughput_tps']:.0f} tok/s vs victim {vf['output_token_throughput_tps']:.0f}) | <= 2x | "
              f"{'yes' if ratio <= 2 else 'no'} |")
if have("emerg_load"):
    ei, el = load("emerg_idle"), load("emerg_load")
    e0, e1 = ei["tenants"]["emergency-dispatch"], el["tenants"]["emergency-dispatch"]
    inter, batch = el["tenants"]["county-3"], el["tenants"]["provincial-analytics"]
    pre = [metric(os.path.join(out, f), 'dsinfer_preemptions_total{priority="batch"}') for f in ("metrics_before_emerg.txt", "metrics_after_emerg.txt")]
    npre = (pre[1] - pre[0]) if None not in pre else None
    summary["emergency"] = {"idle_ttft_p50_s": e0["ttft_s"]["p50"], "idle_ttft_p99_s": e0["ttft_s"]["p99"],
                            "load_ttft_p50_s": e1["ttft_s"]["p50"], "load_ttft_p99_s": e1["ttft_s"]["p99"],
                            "interactive_load_ttft_p99_s": inter["ttft_s"]["p99"], "batch_preemptions": npre}
    print(f"| (c) emergency TTFT p50/p99 idle -> under batch load | {ms(e0['ttft_s']['p50'])}/{ms(e0['ttft_s']['p99'])} -> "
          f"{ms(e1['ttft_s']['p50'])}/{ms(e1['ttft_s']['p99'])} ms (interactive under the same load "
          f"{ms(inter['ttft_s']['p50'])}/{ms(inter['ttft_s']['p99'])} ms; batch {batch['output_token_throughput_tps']:.0f} tok/s, "
          f"batch preemptions {npre if npre is not None else 'n/a'}) | (no number set) | |")
if have("overload"):
    ov = load("overload")
    o = ov["total"]
    summary["overload"] = {"codes": o["status_codes"], "time_to_rejection_p50_s": o["time_to_rejection_s"]["p50"],
                           "time_to_rejection_p99_s": o["time_to_rejection_s"]["p99"], "checks": ov["checks"]}
    c = ov["checks"]
    print(f"| (d) overload, 64 clients vs queue 8: time to rejection p50/p99 | {o['time_to_rejection_s']['p50'] * 1e3:.1f}/"
          f"{o['time_to_rejection_s']['p99'] * 1e3:.1f} ms (codes {o['status_codes']}; admitted {o['admitted']}, "
          f"started {c['started']} ended {c['ended']} dup {c['duplicate_ends']} lost {c['lost']}, "
          f"checks {'passed' if c['passed'] else 'FAILED'}; {o['output_token_throughput_tps']:.0f} tok/s; retry hints p50/p99 "
          f"{o.get('retry_after_s', {}).get('p50', 0) * 1e3:.0f}/{o.get('retry_after_s', {}).get('p99', 0) * 1e3:.0f} ms) | fast, none lost | "
          f"{'yes' if c['passed'] and o['time_to_rejection_s']['p99'] < 1 else 'no'} |")
if have("long_steps"):
    lg = load("long_steps")["total"]
    st_long, sq_long = step_stats("metrics_before_long.txt", "metrics_after_long.txt")
    rej = lg["time_to_rejection_s"]
    summary["long_steps"] = {"codes": lg["status_codes"], "time_to_rejection_p50_s": rej["p50"],
                             "time_to_rejection_p99_s": rej["p99"], "time_to_rejection_max_s": rej["max"],
                             "rejected": lg["rejected"], "step_s": st_long, "batch_sequences": sq_long,
                             "retry_after_s": lg.get("retry_after_s")}
    steptxt = f"{st_long * 1e3:.0f} ms mean step" if st_long else "step n/a"
    ra = lg.get("retry_after_s", {})
    print(f"| (e) 2,000-token prompts, 2,048-token steps, 10 clients: time to rejection p50/p99 | "
          f"{rej['p50'] * 1e3:.1f}/{rej['p99'] * 1e3:.1f} ms (max {rej['max'] * 1e3:.1f} ms; {lg['rejected']} rejected, "
          f"codes {lg['status_codes']}; {steptxt}; retry hints p50/p99 {ra.get('p50', 0) * 1e3:.0f}/{ra.get('p99', 0) * 1e3:.0f} ms) | "
          f"< 20 ms | {'yes' if rej['p99'] < 0.02 else 'no'} |")
if have("tput_c64"):
    step, seqs = step_stats("metrics_before_c64.txt", "metrics_after_c64.txt")  # the busiest run
    sched = {}
    try:
        for bm in json.load(open(os.path.join(out, "scheduler_bench.json")))["benchmarks"]:
            unit = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}[bm["time_unit"]]
            sched[bm["name"]] = bm["real_time"] * unit
    except (OSError, ValueError, KeyError):
        pass
    s256 = sched.get("BM_SchedulerStep/256/1000")
    summary["step"] = {"real_step_s": step, "real_batch_sequences_mean": seqs, "scheduler_step_s": sched}
    if step and s256:
        print(f"| scheduler step (256 running, fake executor) vs real step ({seqs:.1f} seqs mean, 64-client run) | "
              f"{s256 * 1e6:.1f} us vs {step * 1e3:.1f} ms = {100 * s256 / step:.2f}% | <= 5% | {'yes' if s256 / step <= 0.05 else 'no'} |")
    else:
        print(f"| scheduler step vs real step | scheduler {s256}, step {step} (missing) | <= 5% | |")
json.dump(summary, open(os.path.join(out, "summary.json"), "w"), indent=2)
EOF
log "reports in $OUT"
