#!/usr/bin/env bash
# HTTP/SSE (OpenAI API) against gRPC on the SAME server in the SAME run: one `dsinfer serve` with
# both listeners on the bundled tiny model (CPU), driven by dsinfer-loadgen in each mode at 1,
# 32 and 64 closed-loop clients. The modes alternate run by run (gRPC, HTTP, then HTTP, gRPC:
# ABBA, so a drifting shared machine weighs on both alike), REPS pairs per client count, the same
# workload (token-id prompts, ignore_eos, greedy). The tiny model keeps the compute per token
# small, so protocol costs are visible rather than drowned. Goal (issue 12): HTTP output
# throughput >= 95% of gRPC's, TTFT p99 within 10%.
# Usage: bench/http_vs_grpc.sh [BUILD_DIR]     (default build; env: REPS=3 T=12 WARM=2
#        CLIENTS="1 32 64" THREADS=nproc HTTP_THREADS=1 OUT=dir)
# Prints every run (with the 1-minute load average before and after it and the server's CPU
# share) and a summary: medians over the repetitions and the HTTP/gRPC ratios. Reports under $OUT.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${1:-${BUILD:-$ROOT/build}}
DSINFER=${DSINFER:-$BUILD/src/cli/dsinfer}
LOADGEN=$BUILD/bench/dsinfer-loadgen
MAKE_MODEL=$BUILD/tools/dsinfer-make-tiny-model
OUT=${OUT:-$(mktemp -d /tmp/dsinfer-http-vs-grpc.XXXXXX)}
REPS=${REPS:-3} T=${T:-12} WARM=${WARM:-2} CLIENTS=${CLIENTS:-"1 32 64"}
THREADS=${THREADS:-$(nproc)} HTTP_THREADS=${HTTP_THREADS:-1}
LENS=(--prompt-tokens 16:32 --output-tokens 32:64)
mkdir -p "$OUT"
for bin in "$DSINFER" "$LOADGEN" "$MAKE_MODEL"; do
  [[ -x "$bin" ]] || { echo "missing $bin (cmake --build $BUILD --target dsinfer dsinfer-loadgen dsinfer-make-tiny-model)" >&2; exit 1; }
done
log() { echo "[http_vs_grpc $(date +%H:%M:%S)] $*" >&2; }
source "$(dirname "${BASH_SOURCE[0]}")/server_lib.sh"
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}
sha() { printf %s "$1" | sha256sum | cut -d' ' -f1; }
loadavg() { cut -d' ' -f1 /proc/loadavg; }

MODEL=$OUT/tiny-v3
[[ -f "$MODEL/config.json" ]] || "$MAKE_MODEL" --out "$MODEL" >/dev/null
KEYS=bench-key-county-1,bench-key-county-2,bench-key-county-3,bench-key-county-4
GRPC=$(free_port) HTTP=$(free_port) OPENAI=$(free_port)
{
  cat <<EOF
model_path: $MODEL
dtype: f32
backend: cpu
threads: $THREADS
grpc_listen: 127.0.0.1:$GRPC
http_listen: 127.0.0.1:$HTTP
openai_listen: 127.0.0.1:$OPENAI
http:
  threads: $HTTP_THREADS
  max_connections_per_address: 256
scheduler:
  max_batched_tokens: 1024
  max_running: 64
  max_waiting: 256
  max_queue_seconds: 30
kv_cache:
  num_blocks: 1024
tenants:
EOF
  for k in ${KEYS//,/ }; do
    printf '  - id: %s\n    max_concurrent: 16\n    api_key_sha256: [%s]\n' "${k#bench-key-}" "$(sha "$k")"
  done
  echo "log_level: warning"
} >"$OUT/serve.yaml"

"$DSINFER" serve --config "$OUT/serve.yaml" >"$OUT/serve.log" 2>&1 &
SERVER_PID=$!
for i in $(seq 1 600); do
  curl -sf "http://127.0.0.1:$HTTP/readyz" >/dev/null 2>&1 && break
  kill -0 "$SERVER_PID" 2>/dev/null || { tail -20 "$OUT/serve.log" >&2; exit 1; }
  ((i < 600)) || { echo "server not ready after 120 s" >&2; exit 1; }
  sleep 0.2
done
log "server: gRPC :$GRPC, OpenAI :$OPENAI, threads $THREADS, http threads $HTTP_THREADS; $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
cpu_ticks() { awk '{print $14 + $15}' "/proc/$SERVER_PID/stat"; }

# run NAME PROTOCOL CLIENTS [ARGS...]: one loadgen run; its report, load and CPU share to $OUT.
run() {
  local name=$1 proto=$2 clients=$3; shift 3
  local target=127.0.0.1:$GRPC
  [[ $proto == openai ]] && target=127.0.0.1:$OPENAI
  local load0 t0 c0 rc=0
  load0=$(loadavg) t0=$(date +%s.%N) c0=$(cpu_ticks)
  "$LOADGEN" --protocol "$proto" --target "$target" --label "$name" --api-keys "$KEYS" \
    --concurrency "$clients" "${LENS[@]}" --max-requests 1000000 --drain 30 "$@" \
    >"$OUT/$name.json" 2>"$OUT/$name.txt" || rc=$?
  ((rc == 0)) || { echo "loadgen $name failed ($rc):" >&2; grep -v '^\[loadgen' "$OUT/$name.txt" >&2; exit 1; }
  local cpu
  cpu=$(awk -v c0="$c0" -v c1="$(cpu_ticks)" -v t0="$t0" -v t1="$(date +%s.%N)" -v hz="$(getconf CLK_TCK)" \
    'BEGIN { printf "%.2f", (c1 - c0) / hz / (t1 - t0) }')
  printf '{"load_before": %s, "load_after": %s, "server_cores": %s}\n' "$load0" "$(loadavg)" "$cpu" \
    >"$OUT/$name.meta.json"
}

log "warm-up (both modes)"
run warm-grpc grpc 8 --duration 3
run warm-openai openai 8 --duration 3
for c in $CLIENTS; do
  for r in $(seq 1 "$REPS"); do
    order="grpc openai"
    ((r % 2 == 0)) && order="openai grpc"
    for proto in $order; do
      log "$c clients, $proto, repetition $r (load $(loadavg))"
      run "c${c}-${proto}-r${r}" "$proto" "$c" --duration "$T" --warmup "$WARM"
    done
  done
done
stop_server

python3 - "$OUT" "$CLIENTS" "$REPS" <<'PY'
import json, statistics, sys
out, clients, reps = sys.argv[1], sys.argv[2].split(), int(sys.argv[3])
med = statistics.median
print(f"\nreports: {out}")
print("| clients | protocol | rep | tok/s | req/s | TTFT p50 ms | TTFT p99 ms | TPOT p50 ms | load before/after | server cores |")
print("|---|---|---|---|---|---|---|---|---|---|")
summary, loads = {}, []
for c in clients:
    for r in range(1, reps + 1):
        for p in ("grpc", "openai"):
            name = f"c{c}-{p}-r{r}"
            rep, meta = json.load(open(f"{out}/{name}.json")), json.load(open(f"{out}/{name}.meta.json"))
            t = rep["total"]
            row = (t["output_token_throughput_tps"], t["request_throughput_rps"],
                   t["ttft_s"]["p50"] * 1e3, t["ttft_s"]["p99"] * 1e3, t["tpot_s"]["p50"] * 1e3)
            summary.setdefault((c, p), []).append(row)
            loads += [meta["load_before"], meta["load_after"]]
            print(f"| {c} | {p} | {r} | {row[0]:.1f} | {row[1]:.2f} | {row[2]:.1f} | {row[3]:.1f} | "
                  f"{row[4]:.1f} | {meta['load_before']}/{meta['load_after']} | {meta['server_cores']} |")
print(f"\n1-minute load average over the runs: min {min(loads)}, median {med(loads)}, max {max(loads)}"
      " (2 cores: above ~1 the server and the client share them with others)")
print("\nMedians over the repetitions; ratio = HTTP / gRPC (goal: throughput >= 0.95, TTFT p99 <= 1.10)")
print("| clients | gRPC tok/s | HTTP tok/s | ratio | gRPC TTFT p50/p99 ms | HTTP TTFT p50/p99 ms | p99 ratio |")
print("|---|---|---|---|---|---|---|")
for c in clients:
    g = [med(x) for x in zip(*summary[(c, "grpc")])]
    h = [med(x) for x in zip(*summary[(c, "openai")])]
    print(f"| {c} | {g[0]:.1f} | {h[0]:.1f} | {h[0] / g[0]:.3f} | {g[2]:.1f}/{g[3]:.1f} | "
          f"{h[2]:.1f}/{h[3]:.1f} | {h[3] / g[3]:.3f} |")
PY
