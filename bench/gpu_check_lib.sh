# shellcheck shell=bash
# Helpers shared by scripts/gpu-check.sh and the part scripts it runs (bench/gpu_e2e.sh,
# bench/gpu_parallel_check.sh, bench/gpu_serving_check.sh); sourced, never run. Each part
# records its result in $GC_WORK (status, summary lines, RESULTS.md rows); run alone, a part
# script gets defaults here and its results land in /tmp/gpu-check-work.
GC_LIB_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
: "${GC_WORK:=/tmp/gpu-check-work}"
: "${GC_PART:=$(basename "$0" .sh)}"
: "${GC_PART_END:=$(($(date +%s) + 600))}"
: "${GC_DEVICE:=cuda}"
: "${BUILD:=$GC_LIB_ROOT/build-gpu-check}"
: "${OUT:=/tmp/gpu-check-out}"
: "${GC_DEVICE_FLAG:=--device}" "${GC_TP_FLAG:=--tp}" "${GC_EP_FLAG:=--ep}"
: "${GC_PY_LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}}"
export GC_WORK GC_PART GC_PART_END GC_DEVICE BUILD OUT GC_DEVICE_FLAG GC_TP_FLAG GC_EP_FLAG GC_PY_LD_LIBRARY_PATH
mkdir -p "$GC_WORK/status" "$GC_WORK/details" "$GC_WORK/logs" "$OUT"
export GC_LOGS=$GC_WORK/logs

# A part's result: status pass|fail|skip "why" (the last call wins); detail "a summary line".
status() { printf '%s: %s\n' "$1" "$2" >"$GC_WORK/status/$GC_PART"; }
detail() { printf '%s\n' "$*" >>"$GC_WORK/details/$GC_PART"; }
# A figure for bench/RESULTS.md: row "command" "figures" "peer" "ratio".
row() { printf '%s\t%s\t%s\t%s\t%s\n' "$GC_PART" "$1" "$2" "$3" "$4" >>"$GC_WORK/rows.tsv"; }
# Seconds left in this part, less MARGIN, at least 1 (`timeout 0` would mean no limit).
tleft() {
  local l=$((GC_PART_END - $(date +%s) - ${1:-0}))
  ((l < 1)) && l=1
  echo "$l"
}
# min A B
min() { echo $(($1 < $2 ? $1 : $2)); }
# The line of a failed dsinfer command's stderr that says why ("dsinfer CMD: message"), else
# its last line that is not a progress line.
first_error() {
  local line
  line=$(tr '\r' '\n' <"$1" | grep -m1 -E '^dsinfer[ -]' || true)
  [[ -n $line ]] || line=$(tr '\r' '\n' <"$1" | grep -v '^[[:space:]]*$' | grep -v '[0-9]%' | tail -1)
  [[ -n $line ]] || line=$(tr '\r' '\n' <"$1" | grep -v '^[[:space:]]*$' | tail -1)
  printf '%s' "${line:0:300}"
}
# The exception line of a Python traceback in FILE, else its last line.
py_error() {
  local line
  line=$(tr '\r' '\n' <"$1" | grep -E '^[A-Za-z_.]*(Error|Exception|Interrupt)\b' | tail -1)
  [[ -n $line ]] || line=$(tr '\r' '\n' <"$1" | grep -v '^[[:space:]]*$' | tail -1)
  printf '%s' "${line:0:250}"
}
# GPUs present (GC_GPUS once the main script has asked nvidia-smi).
gpu_count() {
  if [[ -n ${GC_GPUS:-} ]]; then echo "$GC_GPUS"; else timeout 20 nvidia-smi -L 2>/dev/null | grep -c '^GPU ' || true; fi
}
have_gpu() { (($(gpu_count) > 0)); }
# Python tools run with the library path the machine had (not the carried packages').
py() { LD_LIBRARY_PATH=$GC_PY_LD_LIBRARY_PATH python3 "$@"; }
# A free loopback TCP port.
free_port() {
  py -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}
