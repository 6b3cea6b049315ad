#!/usr/bin/env bash
# MTP speculative decoding against plain decoding, same run: `dsinfer bench` on a DeepSeek
# checkpoint with an MTP layer whose drafts the main model mostly accepts (default: the
# mtp_v3_fp8 fixture of tools/gen_mtp_fixtures.py, or MODEL=dir), greedy, at batch 1 and 8,
# alternating off / on (ABBA) so a drifting shared machine weighs on both alike.
# Usage: bench/mtp_speedup.sh [BUILD_DIR]   (env: MODEL, REPS=2, PROMPT=32, GEN=64, THREADS=2,
#        DTYPE=f32, BATCHES="1 8")
# Prints each run and, per batch size, the median decode tok/s off and on, their ratio, the
# acceptance rate and the tokens per sequence per decode step with MTP.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${1:-${BUILD:-$ROOT/build}}
DSINFER=${DSINFER:-$BUILD/src/cli/dsinfer}
MODEL=${MODEL:-$ROOT/tests/fixtures/models/mtp_v3_fp8}
REPS=${REPS:-2} PROMPT=${PROMPT:-32} GEN=${GEN:-64} THREADS=${THREADS:-2} DTYPE=${DTYPE:-f32}
BATCHES=${BATCHES:-"1 8"}
[[ -x "$DSINFER" ]] || { echo "missing $DSINFER (cmake --build $BUILD --target dsinfer)" >&2; exit 1; }

run() {  # batch, extra flags -> one JSON line
  "$DSINFER" bench --model "$MODEL" --dtype "$DTYPE" --threads "$THREADS" --batch "$1" \
    --prompt-len "$PROMPT" --gen-len "$GEN" "${@:2}" 2>/dev/null
}

for b in $BATCHES; do
  off=() on=()
  for ((r = 0; r < REPS; r++)); do
    if ((r % 2 == 0)); then
      off+=("$(run "$b")"); on+=("$(run "$b" --mtp)")
    else
      on+=("$(run "$b" --mtp)"); off+=("$(run "$b")")
    fi
    echo "batch $b rep $r off: ${off[-1]}"
    echo "batch $b rep $r on:  ${on[-1]}"
  done
  python3 - "$b" "${#off[@]}" "${off[@]}" "${on[@]}" <<'PY'
import json, statistics, sys
b, n = sys.argv[1], int(sys.argv[2])
off = [json.loads(x) for x in sys.argv[3:3 + n]]
on = [json.loads(x) for x in sys.argv[3 + n:]]
m_off = statistics.median(r["decode_tok_s"] for r in off)
m_on = statistics.median(r["decode_tok_s"] for r in on)
acc = statistics.median(r["mtp"]["acceptance"] for r in on)
tps = statistics.median(r["mtp"]["decode_tokens_per_step"] for r in on) / int(b)
print(f"SUMMARY batch {b}: decode tok/s off {m_off:.1f} on {m_on:.1f} ratio {m_on / m_off:.2f}x; "
      f"acceptance {acc:.2f}; tokens per sequence per decode step with MTP {tps:.2f}")
PY
done
