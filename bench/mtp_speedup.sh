#!/usr/bin/env bash
# MTP speculative decoding against plain decoding, same run: `dsinfer bench` on a DeepSeek
# checkpoint with an MTP layer whose drafts the main model mostly accepts (default: the
# mtp_v3_fp8 fixture of tools/gen_mtp_fixtures.py, or MODEL=dir), greedy, at batch 1 and 8, with
# k drafts per step for each k in DRAFTS; the configurations alternate (off, k..., then reversed)
# so a drifting shared machine weighs on all alike.
# Usage: bench/mtp_speedup.sh [BUILD_DIR]   (env: MODEL, REPS=2, PROMPT=32, GEN=64, THREADS=2,
#        DTYPE=f32, BATCHES="1 8", DRAFTS="1")
# Prints each run and, per batch size and k, the median decode tok/s off and on, their ratio, the
# acceptance rate (overall and per draft position) and the tokens per sequence per decode step.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${1:-${BUILD:-$ROOT/build}}
DSINFER=${DSINFER:-$BUILD/src/cli/dsinfer}
MODEL=${MODEL:-$ROOT/tests/fixtures/models/mtp_v3_fp8}
REPS=${REPS:-2} PROMPT=${PROMPT:-32} GEN=${GEN:-64} THREADS=${THREADS:-2} DTYPE=${DTYPE:-f32}
BATCHES=${BATCHES:-"1 8"} DRAFTS=${DRAFTS:-"1"}
[[ -x "$DSINFER" ]] || { echo "missing $DSINFER (cmake --build $BUILD --target dsinfer)" >&2; exit 1; }

run() {  # batch, k (0: MTP off) -> one JSON line
  local extra=()
  (($2 > 0)) && extra=(--mtp --mtp-draft-tokens "$2")
  "$DSINFER" bench --model "$MODEL" --dtype "$DTYPE" --threads "$THREADS" --batch "$1" \
    --prompt-len "$PROMPT" --gen-len "$GEN" "${extra[@]}" 2>/dev/null
}

for b in $BATCHES; do
  configs=(0 $DRAFTS)
  declare -A results=()
  for ((r = 0; r < REPS; r++)); do
    order=("${configs[@]}")
    if ((r % 2 == 1)); then
      order=(); for ((i = ${#configs[@]} - 1; i >= 0; i--)); do order+=("${configs[i]}"); done
    fi
    for k in "${order[@]}"; do
      line=$(run "$b" "$k")
      results[$k]+="$line"$'\n'
      echo "batch $b rep $r k $k: $line"
    done
  done
  for k in $DRAFTS; do
    python3 - "$b" "$k" "${results[0]}" "${results[$k]}" <<'PY'
import json, statistics, sys
b, k = sys.argv[1], sys.argv[2]
off = [json.loads(x) for x in sys.argv[3].splitlines() if x.strip()]
on = [json.loads(x) for x in sys.argv[4].splitlines() if x.strip()]
m_off = statistics.median(r["decode_tok_s"] for r in off)
m_on = statistics.median(r["decode_tok_s"] for r in on)
acc = statistics.median(r["mtp"]["acceptance"] for r in on)
pos = [statistics.median(r["mtp"]["acceptance_by_position"][j] for r in on) for j in range(int(k))]
tps = statistics.median(r["mtp"]["decode_tokens_per_step"] for r in on) / int(b)
print(f"SUMMARY batch {b} k {k}: decode tok/s off {m_off:.1f} on {m_on:.1f} ratio "
      f"{m_on / m_off:.2f}x; acceptance {acc:.2f} (by position "
      f"{' '.join(f'{p:.2f}' for p in pos)}); tokens per sequence per decode step {tps:.2f}")
PY
  done
  unset results
done
