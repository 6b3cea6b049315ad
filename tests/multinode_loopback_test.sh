#!/usr/bin/env bash
# Two "nodes" on loopback: `dsinfer serve` leads a tp 4 / ep 2 layout with 2 ranks per node and
# hosts the gRPC rendezvous; `dsinfer worker --config --node-rank 1 --leader` brings the other
# node's 2 ranks (what a LeaderWorkerSet worker pod runs). Checks: greedy output through the
# leader equals one rank's, and killing the worker node turns /readyz 503 and requests
# UNAVAILABLE (not a hang); the leader still drains and exits 0 on SIGTERM.
# With "netns" the two nodes are network namespaces joined by a veth pair (10.77.N.1 and
# 10.77.N.2), each rank binding its node's address; exit 77 (skip) where namespaces cannot be made.
#   multinode_loopback_test.sh DSINFER MODEL_DIR WORK_DIR [netns]
set -uo pipefail
bin=$1 model=$2 work=$3 mode=${4:-loopback}
rm -rf "$work" && mkdir -p "$work"
if [[ $mode == netns ]]; then
  sub=$(( $$ % 200 + 20 ))
  A=dsi-a-$$ B=dsi-b-$$
  ip netns add $A 2>/dev/null || { echo "SKIP: cannot create network namespaces"; exit 77; }
  cleanup() { ip netns pids $A 2>/dev/null | xargs -r kill -9; ip netns pids $B 2>/dev/null | xargs -r kill -9
              ip netns del $A 2>/dev/null; ip netns del $B 2>/dev/null; }
  trap cleanup EXIT
  ip netns add $B && ip link add va-$$ type veth peer name vb-$$ &&
    ip link set va-$$ netns $A && ip link set vb-$$ netns $B &&
    ip -n $A addr add 10.77.$sub.1/24 dev va-$$ && ip -n $B addr add 10.77.$sub.2/24 dev vb-$$ &&
    ip -n $A link set va-$$ up && ip -n $B link set vb-$$ up &&
    ip -n $A link set lo up && ip -n $B link set lo up || { echo "SKIP: veth setup failed"; exit 77; }
  host=10.77.$sub.1 worker_host=10.77.$sub.2
  on_a() { ip netns exec $A "$@"; }
  on_b() { ip netns exec $B "$@"; }
  grpc=50051 http=9090 rdzv=29500
else
  host=127.0.0.1 worker_host=127.0.0.1
  on_a() { "$@"; }
  on_b() { "$@"; }
  ports=($(python3 -c 'import socket
s=[socket.socket() for _ in range(3)]
[x.bind(("127.0.0.1",0)) for x in s]
print(*[x.getsockname()[1] for x in s])'))
  grpc=${ports[0]} http=${ports[1]} rdzv=${ports[2]}
fi
cat > "$work/server.yaml" <<YAML
model_path: $model
dtype: f32
threads: 1
grpc_listen: $host:$grpc
http_listen: $host:$http
allow_unauthenticated: true
kv_cache: {num_blocks: 64}
parallel: {tp: 4, ep: 2, ranks_per_node: 2, rendezvous_listen: "$host:$rdzv", bind_address: "$host",
           timeout_seconds: 10}
log_level: warning
YAML
fail() { echo "FAIL: $*"; pkill -9 -f "$work/server.yaml"; kill -9 $leader $node 2>/dev/null; exit 1; }
on_a "$bin" serve --config "$work/server.yaml" 2> "$work/serve.log" & leader=$!
on_b "$bin" worker --config "$work/server.yaml" --node-rank 1 --leader $host:$rdzv \
  --bind $worker_host 2> "$work/worker.log" & node=$!
for i in $(seq 1 100); do
  [[ $(on_a curl -s -o /dev/null -w '%{http_code}' $host:$http/readyz) == 200 ]] && break
  sleep 0.2
done
[[ $(on_a curl -s -o /dev/null -w '%{http_code}' $host:$http/readyz) == 200 ]] || fail "not ready"
got=$(on_a "$bin" client --address $host:$grpc --ids 3,14,15,92,65 --max-tokens 12 --ignore-eos \
        2>&1 >/dev/null | tail -1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["token_ids"])')
want=$("$bin" generate --model "$model" --ids 3,14,15,92,65 --max-tokens 12 --ignore-eos \
         --dtype f32 --threads 1 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["ids"])')
[[ "$got" == "$want" ]] || fail "leader gave $got, one rank gives $want"
echo "greedy through the leader = one rank: $got"
# The node worker itself ($node may be a subshell or `ip netns exec`); its ranks die with it.
pkill -9 -f "worker --config $work/server.yaml --node-rank 1"
for i in $(seq 1 50); do
  [[ $(on_a curl -s -o /dev/null -w '%{http_code}' $host:$http/readyz) == 503 ]] && break
  sleep 0.2
done
on_a curl -s $host:$http/readyz | grep -q "ranks are no longer complete" || fail "/readyz: $(on_a curl -s $host:$http/readyz)"
err=$(on_a timeout 10 "$bin" client --address $host:$grpc --ids 3,14 --max-tokens 2 2>&1)
echo "$err" | grep -q "UNAVAILABLE" || fail "request after the node died: $err"
echo "worker node killed: /readyz 503, requests UNAVAILABLE"
# SIGTERM to the server itself (in netns mode $leader is `ip netns exec`, its parent).
server=$(pgrep -f "serve --config $work/server.yaml" | sort -n | tail -1)
kill -TERM $server
timeout 30 tail --pid=$server -f /dev/null || fail "leader did not exit"
wait $leader 2>/dev/null; rc=$?
[[ $rc == 0 ]] || fail "leader exited $rc"
echo "PASS"
