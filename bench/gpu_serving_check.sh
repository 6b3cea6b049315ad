#!/usr/bin/env bash
# Part 4 of scripts/gpu-check.sh: `dsinfer serve` with `backend: cuda` on the bundled tiny model
# (DeepSeek-V3 architecture, 4 layers, hidden 256, vocab 129,280: chosen over the V2-Lite-config
# model because it loads in seconds and part 3 has already spent that model's time) under
# dsinfer-loadgen: 64 closed-loop clients in three tenants with their own priority (40
# interactive, 20 batch, 4 emergency), prompts 64-256 and outputs 64-128 token ids, 20 s; throughput,
# TTFT and TPOT p50 / p99 overall and per priority, the engine step from /metrics. One greedy
# request (dsinfer client, temperature 0) is sent alone before the load and again while the load
# runs: the two outputs must be the same.
# Run alone: GC_PART_END=$(($(date +%s) + 120)) bash bench/gpu_serving_check.sh
# (GC_DEVICE=cpu: backend cpu, shorter runs; the script's own check). Loopback only; the server
# is stopped on every exit; every wait is bounded.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/gpu_check_lib.sh
. "$ROOT/bench/gpu_check_lib.sh"
# shellcheck source=bench/server_lib.sh
. "$ROOT/bench/server_lib.sh"
DS=${DS:-$BUILD/src/cli/dsinfer}
LOADGEN=$BUILD/bench/dsinfer-loadgen
MAKE_MODEL=$BUILD/tools/dsinfer-make-tiny-model
S=$GC_WORK/serving
rm -rf "$S"
mkdir -p "$S"
BACKEND=$GC_DEVICE
if [[ $BACKEND == cuda ]]; then DURATION=20 WARMUP=3 PROMPT=64:256 OUTPUT=64:128
else DURATION=15 WARMUP=3 PROMPT=16:32 OUTPUT=4:8; fi  # rehearsal: a CPU is ~100x slower
finish() {
  cp "$S"/*.txt "$S"/*.log "$S"/*.yaml "$S"/*.json "$GC_LOGS/" 2>/dev/null
  py "$ROOT/bench/gpu_check_report.py" serving "$S" --out "$OUT/serving.json" --rows "$GC_WORK/rows.tsv" \
    --part "$GC_PART" >"$S/summary.txt" 2>"$GC_LOGS/serving_report.err"
  [[ $BACKEND == cpu ]] && detail "REHEARSAL on the CPU (backend: cpu): the script's own check, not a GPU result"
  while IFS= read -r l; do detail "$l"; done <"$S/summary.txt"
}

for bin in "$DS" "$LOADGEN" "$MAKE_MODEL"; do
  [[ -x $bin ]] || { status fail "$(basename "$bin") was not built"; exit 0; }
done
if "$DS" serve 2>&1 | grep -q 'unknown command'; then
  status fail "dsinfer was built without the gRPC server"
  exit 0
fi
"$MAKE_MODEL" --out "$S/tiny-v3" >"$S/make_model.log" 2>&1 || { status fail "dsinfer-make-tiny-model failed"; exit 0; }

sha() { printf %s "$1" | sha256sum | cut -d' ' -f1; }
K_COUNTY=gpu-check-county K_BATCH=gpu-check-analytics K_EM=gpu-check-dispatch
GRPC=$(free_port) HTTP=$(free_port)
cat >"$S/serve.yaml" <<EOF
model_path: $S/tiny-v3
dtype: bf16
backend: $BACKEND
threads: 0
grpc_listen: 127.0.0.1:$GRPC
http_listen: 127.0.0.1:$HTTP
tls:
  enabled: false
scheduler:
  max_batched_tokens: 4096
  max_running: 64
  max_waiting: 256
  max_queue_seconds: 60
  prefill_chunk: 512
kv_cache:
  num_blocks: 4096
  prefix_caching: true
tenants:
  - id: county
    weight: 1.0
    max_priority: interactive
    max_concurrent: 0
    max_queued: 0
    tokens_per_minute: 0
    api_key_sha256: [$(sha "$K_COUNTY")]
  - id: analytics
    weight: 0.25
    max_priority: batch
    max_concurrent: 0
    max_queued: 0
    tokens_per_minute: 0
    api_key_sha256: [$(sha "$K_BATCH")]
  - id: dispatch
    weight: 4.0
    max_priority: emergency
    max_concurrent: 0
    max_queued: 0
    tokens_per_minute: 0
    api_key_sha256: [$(sha "$K_EM")]
allow_unauthenticated: false
drain_grace_seconds: 2
log_request_content: false
log_level: info
EOF
IFS=: read -r out_lo out_hi <<<"$OUTPUT"
IFS=: read -r pr_lo pr_hi <<<"$PROMPT"
cat >"$S/spec.json" <<EOF
{"duration_s": $DURATION, "warmup_s": $WARMUP, "drain_s": 30, "max_requests": 100000, "seed": 17,
 "request_timeout_s": 60, "tenants": [
  {"name": "county", "api_key": "$K_COUNTY", "concurrency": 40, "priority_mix": {"interactive": 1},
   "prompt_tokens": [$pr_lo, $pr_hi], "output_tokens": [$out_lo, $out_hi]},
  {"name": "analytics", "api_key": "$K_BATCH", "concurrency": 20, "priority_mix": {"batch": 1},
   "prompt_tokens": [$pr_lo, $pr_hi], "output_tokens": [$out_lo, $out_hi]},
  {"name": "dispatch", "api_key": "$K_EM", "concurrency": 4, "priority_mix": {"emergency": 1},
   "prompt_tokens": [$pr_lo, $pr_hi], "output_tokens": [$out_lo, $out_hi]}]}
EOF

scrape() {
  py -c 'import sys, urllib.request
try:
    sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())
except Exception as e:
    sys.stderr.write(str(e) + "\n")' "http://127.0.0.1:$HTTP/$1"
}
ready() { py -c 'import sys, urllib.request
try:
    sys.exit(0 if urllib.request.urlopen(sys.argv[1], timeout=2).status == 200 else 1)
except Exception:
    sys.exit(1)' "http://127.0.0.1:$HTTP/readyz"; }

t0=$(date +%s)
"$DS" serve --config "$S/serve.yaml" >"$S/server.log" 2>&1 &
SERVER_PID=$!
up=0
while (($(tleft 15) > 1)); do
  if ready; then up=1; break; fi
  kill -0 "$SERVER_PID" 2>/dev/null || break
  sleep 0.5
done
if ((up == 0)); then
  status fail "server not ready: $(first_error "$S/server.log")"
  stop_server
  finish
  exit 0
fi
detail "server ready in $(($(date +%s) - t0))s (backend: $BACKEND, tiny model, max_running 64)"

GREEDY_IDS=1000,2000,3000,4000,5000,6000,7000,8000,9000,10000,11000,12000,13000,14000,15000,16000
client() {
  timeout 60 "$DS" client --address "127.0.0.1:$GRPC" --api-key "$K_COUNTY" --ids "$GREEDY_IDS" \
    --max-tokens 32 --ignore-eos --temperature 0 --priority interactive --timeout 50 \
    >"$S/client_$1.txt" 2>"$S/client_$1.err"
  local rc=$?
  grep '^{' "$S/client_$1.err" | tail -1 >"$S/client_$1.json"
  ((rc == 0)) || echo "client ($1): rc $rc: $(first_error "$S/client_$1.err")" >>"$S/client.error"
}
client alone
scrape metrics >"$S/metrics_before.txt"
lg_start=$(date +%s)
timeout -k 5 "$(min "$(tleft 8)" $((DURATION + 60)))" "$LOADGEN" --target "127.0.0.1:$GRPC" \
  --label gpu-check-serving --spec "$S/spec.json" >"$S/loadgen.json" 2>"$S/loadgen.txt" &
LG=$!
# The same greedy request again, once the load is running (after the loadgen's warm-up).
while (($(date +%s) - lg_start < WARMUP + 2)) && kill -0 "$LG" 2>/dev/null; do sleep 0.5; done
running=$(scrape metrics | awk '/^dsinfer_sequences_running /{print $2}')
client loaded
wait "$LG"
lg_rc=$?
scrape metrics >"$S/metrics_after.txt"
stop_server
cat >"$S/info.json" <<EOF
{"what": "dsinfer serve (backend: $BACKEND, bundled tiny model: DeepSeek-V3 architecture, 4 layers, hidden 256)",
 "clients": 64, "mix": "interactive 40 / batch 20 / emergency 4 clients (one tenant each)",
 "prompt": "$pr_lo-$pr_hi", "output": "$out_lo-$out_hi", "running_during": "${running:-?}",
 "cmd": "dsinfer-loadgen --spec spec.json (64 clients, ${DURATION}s, warm-up ${WARMUP}s) against dsinfer serve backend: $BACKEND",
 "client_cmd": "dsinfer client --ids 1000,...,16000 --max-tokens 32 --ignore-eos --temperature 0, alone then under load"}
EOF
finish
problems=()
((lg_rc == 0)) || problems+=("loadgen rc $lg_rc$( ((lg_rc == 2)) && echo ' (stream checks failed)')$( ((lg_rc == 124)) && echo ' (timed out)'): $(grep -v '^\[loadgen' "$S/loadgen.txt" | grep -v '^[[:space:]]*$' | tail -1 | cut -c1-150)")
[[ -s $S/client.error ]] && problems+=("$(head -1 "$S/client.error")")
same=$(py -c 'import json, sys; print(json.load(open(sys.argv[1])).get("greedy_same"))' "$OUT/serving.json" 2>/dev/null)
[[ $same == True ]] || problems+=("greedy output alone vs under load: ${same/False/different}")
grep -q '"level": *"error"' "$S/server.log" && problems+=("server logged errors: $(grep -m1 '"level": *"error"' "$S/server.log" | cut -c1-150)")
if ((${#problems[@]})); then status fail "${problems[*]}"
else status pass "64 clients served, checks passed, greedy identical alone and under load"; fi
