#!/usr/bin/env bash
# Two "nodes" on loopback: `dsinfer serve` leads a tp 4 / ep 2 layout with 2 ranks per node and
# hosts the gRPC rendezvous; `dsinfer worker --config --node-rank 1 --leader` brings the other
# node's 2 ranks (what a LeaderWorkerSet worker pod runs). Checks: greedy output through the
# leader equals one rank's, and killing the worker node turns /readyz 503 and requests
# UNAVAILABLE (not a hang); the leader still drains and exits 0 on SIGTERM.
#   multinode_loopback_test.sh DSINFER MODEL_DIR WORK_DIR
set -uo pipefail
bin=$1 model=$2 work=$3
rm -rf "$work" && mkdir -p "$work"
ports=($(python3 -c 'import socket
s=[socket.socket() for _ in range(3)]
[x.bind(("127.0.0.1",0)) for x in s]
print(*[x.getsockname()[1] for x in s])'))
grpc=${ports[0]} http=${ports[1]} rdzv=${ports[2]}
cat > "$work/server.yaml" <<YAML
model_path: $model
dtype: f32
threads: 1
grpc_listen: 127.0.0.1:$grpc
http_listen: 127.0.0.1:$http
allow_unauthenticated: true
kv_cache: {num_blocks: 64}
parallel: {tp: 4, ep: 2, ranks_per_node: 2, rendezvous_listen: "127.0.0.1:$rdzv", timeout_seconds: 10}
log_level: warning
YAML
fail() { echo "FAIL: $*"; kill -9 $leader $node 2>/dev/null; exit 1; }
"$bin" serve --config "$work/server.yaml" 2> "$work/serve.log" & leader=$!
"$bin" worker --config "$work/server.yaml" --node-rank 1 --leader 127.0.0.1:$rdzv \
  --bind 127.0.0.1 2> "$work/worker.log" & node=$!
for i in $(seq 1 100); do
  [[ $(curl -s -o /dev/null -w '%{http_code}' 127.0.0.1:$http/readyz) == 200 ]] && break
  sleep 0.2
done
[[ $(curl -s -o /dev/null -w '%{http_code}' 127.0.0.1:$http/readyz) == 200 ]] || fail "not ready"
got=$("$bin" client --address 127.0.0.1:$grpc --ids 3,14,15,92,65 --max-tokens 12 --ignore-eos \
        2>&1 >/dev/null | tail -1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["token_ids"])')
want=$("$bin" generate --model "$model" --ids 3,14,15,92,65 --max-tokens 12 --ignore-eos \
         --dtype f32 --threads 1 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["ids"])')
[[ "$got" == "$want" ]] || fail "leader gave $got, one rank gives $want"
echo "greedy through the leader = one rank: $got"
kill -9 $node
for i in $(seq 1 50); do
  [[ $(curl -s -o /dev/null -w '%{http_code}' 127.0.0.1:$http/readyz) == 503 ]] && break
  sleep 0.2
done
curl -s 127.0.0.1:$http/readyz | grep -q "ranks are no longer complete" || fail "/readyz: $(curl -s 127.0.0.1:$http/readyz)"
err=$(timeout 10 "$bin" client --address 127.0.0.1:$grpc --ids 3,14 --max-tokens 2 2>&1)
echo "$err" | grep -q "UNAVAILABLE" || fail "request after the node died: $err"
echo "worker node killed: /readyz 503, requests UNAVAILABLE"
kill -TERM $leader
timeout 30 tail --pid=$leader -f /dev/null || fail "leader did not exit"
wait $leader; rc=$?
[[ $rc == 0 ]] || fail "leader exited $rc"
echo "PASS"
