#!/usr/bin/env bash
# The main job on a fresh machine: install, build, create the bundled tiny DeepSeek-V3-style
# model (deterministic random FP8 weights, the real tokenizer), start the gRPC server on it
# (CPU, loopback, configs/local.yaml) and stream one chat request with dsinfer's own client.
# The server keeps running when DSINFER_DEMO_KEEP_SERVER=1 (stop it with SIGTERM).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
dsinfer=build/src/cli/dsinfer
model=models/generated/tiny-v3
[[ -f $model/config.json ]] || build/tools/dsinfer-make-tiny-model --out "$model"

log=build/demo-server.log
"$dsinfer" serve --config configs/local.yaml 2>"$log" &
server=$!
stop() { kill -TERM "$server" 2>/dev/null && wait "$server" || true; }
[[ "${DSINFER_DEMO_KEEP_SERVER:-0}" == 1 ]] || trap stop EXIT
for _ in $(seq 1 120); do
  "$dsinfer" client --address 127.0.0.1:50051 --health >/dev/null 2>&1 && break
  kill -0 "$server" 2>/dev/null || { cat "$log"; exit 1; }
  sleep 0.5
done
echo "dsinfer serve is up (gRPC 127.0.0.1:50051, metrics http://127.0.0.1:9090/metrics)"
DSINFER_API_KEY=local-key-anning "$dsinfer" client --address 127.0.0.1:50051 --chat \
  --system "You are the 12345 citizen hotline assistant." \
  --prompt "请问如何办理居住证？" --max-tokens 24 --temperature 0.7 --seed 7
echo
