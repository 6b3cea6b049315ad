#!/usr/bin/env bash
# Raw SSE framing of the OpenAI API, as `curl -N` sees it: text/event-stream over chunked
# transfer, every event one `data: <json>` line followed by a blank line, chunks in OpenAI's
# shape, a usage chunk when asked, and `data: [DONE]` last.
#   openai_sse_curl_test.sh DSINFER MAKE_TINY_MODEL MODEL_DIR WORK_DIR
# Exit 77 (skipped) without curl.
set -euo pipefail
dsinfer=$1 make_tiny=$2 model=$3 work=$4
command -v curl >/dev/null || { echo "SKIP: curl not installed" >&2; exit 77; }
mkdir -p "$work" "$(dirname "$model")"
model=$(cd "$(dirname "$model")" && pwd)/$(basename "$model")
if [[ ! -f $model/config.json ]]; then
  tmp=$(mktemp -d "$(dirname "$model")/tiny-v3.XXXXXX")
  "$make_tiny" --out "$tmp"
  mv -T "$tmp" "$model" 2>/dev/null || rm -rf "$tmp"  # another test may have won the race
fi
key=sse-test-key
cat >"$work/server.yaml" <<YAML
model_path: $model
dtype: f32
threads: 2
grpc_listen: 127.0.0.1:0
http_listen: 127.0.0.1:0
openai_listen: 127.0.0.1:0
kv_cache:
  num_blocks: 128
tenants:
  - id: county
    api_key_sha256: [$(printf %s "$key" | sha256sum | cut -d' ' -f1)]
log_level: info
YAML
"$dsinfer" serve --config "$work/server.yaml" 2>"$work/server.log" >/dev/null &
pid=$!
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true' EXIT
port=""
for _ in $(seq 600); do
  grep -q '"event":"serving"' "$work/server.log" 2>/dev/null && break
  kill -0 $pid 2>/dev/null || { cat "$work/server.log"; echo "FAIL: server exited" >&2; exit 1; }
  sleep 0.1
done
port=$(grep -o '"openai_port":[0-9]*' "$work/server.log" | head -1 | cut -d: -f2)
[[ -n $port ]] || { cat "$work/server.log"; echo "FAIL: no openai_port" >&2; exit 1; }

curl -sS -N -D "$work/headers" -o "$work/body" --max-time 60 \
  -H "Authorization: Bearer $key" -H "Content-Type: application/json" \
  "http://127.0.0.1:$port/v1/chat/completions" \
  -d '{"model":"tiny-v3","messages":[{"role":"user","content":"Hello county"}],"max_tokens":6,
       "temperature":0,"stream":true,"stream_options":{"include_usage":true}}'

fail() { echo "FAIL: $*" >&2; echo "--- headers"; cat "$work/headers"; echo "--- body"; cat -A "$work/body"; exit 1; }
grep -qi '^content-type: text/event-stream' "$work/headers" || fail "content type"
grep -qi '^transfer-encoding: chunked' "$work/headers" || fail "not chunked"
head -1 "$work/headers" | grep -q ' 200' || fail "status"
python3 - "$work/body" <<'PY' || fail "framing"
import json, sys
raw = open(sys.argv[1], "rb").read().decode()
assert raw.endswith("data: [DONE]\n\n"), "must end with data: [DONE] and a blank line"
events = raw.split("\n\n")[:-1]
assert len(events) >= 3, events
for ev in events:
    assert ev.startswith("data: ") and "\n" not in ev, f"bad event {ev!r}"
chunks = [json.loads(ev[6:]) for ev in events[:-1]]
for c in chunks:
    assert c["object"] == "chat.completion.chunk" and c["id"].startswith("chatcmpl-"), c
assert chunks[0]["choices"][0]["delta"]["role"] == "assistant", chunks[0]
finals = [c for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]]
assert len(finals) == 1 and finals[0]["choices"][0]["finish_reason"] in ("stop", "length")
usage = chunks[-1]
assert usage["choices"] == [] and usage["usage"]["total_tokens"] == (
    usage["usage"]["prompt_tokens"] + usage["usage"]["completion_tokens"]), usage
print(f"ok: {len(events)} events")
PY

# Errors are JSON in OpenAI's shape, never an SSE stream.
code=$(curl -sS -o "$work/err" -w '%{http_code}' -H "Authorization: Bearer wrong" \
  -H "Content-Type: application/json" "http://127.0.0.1:$port/v1/chat/completions" \
  -d '{"model":"tiny-v3","messages":[{"role":"user","content":"x"}],"stream":true}')
[[ $code == 401 ]] || fail "wrong key: $code"
grep -q '"error"' "$work/err" || fail "401 body"
echo ok
