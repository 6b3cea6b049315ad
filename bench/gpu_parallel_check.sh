#!/usr/bin/env bash
# Part 5 of scripts/gpu-check.sh: a model sharded over local ranks that share the one GPU,
# against one rank, on the v2_lite_bf16 and v3_fp8 fixtures:
#   dsinfer logits   --device cuda --tp 2 [--ep 2]  vs --tp 1: max |got - want| / max |want| <= 3e-2
#   dsinfer generate --device cuda --tp 2 [--ep 2] --max-tokens 12 (greedy): the same ids as --tp 1
# then nccl_communicator_test on every GPU present. A command the binary refuses is a failed
# check that says why ("failed: rc 1: dsinfer logits: ..."). The flag spellings come from
# scripts/gpu-check.sh (GC_TP_FLAG, GC_EP_FLAG, GC_DEVICE_FLAG).
# Run alone: GC_PART_END=$(($(date +%s) + 120)) bash bench/gpu_parallel_check.sh
# (GC_DEVICE=cpu runs the same comparisons with --device cpu, the script's own check).
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/gpu_check_lib.sh
. "$ROOT/bench/gpu_check_lib.sh"
DS=${DS:-$BUILD/src/cli/dsinfer}
P=$GC_WORK/parallel
rm -rf "$P"
mkdir -p "$P"
CHECKS=$P/checks.jsonl
: >"$CHECKS"
FIX=$ROOT/tests/fixtures/models
IDS=3,14,15,92,65,35,89,79,32,38,46,26,43
BAR=3e-2
DEV=("$GC_DEVICE_FLAG" "$GC_DEVICE")
LAYOUTS=("$GC_TP_FLAG 2" "$GC_TP_FLAG 2 $GC_EP_FLAG 2")

# check KEY VALUE ...: one JSON line in checks.jsonl ("ok" true/false is a JSON bool).
check() {
  py -c 'import json, sys
a = sys.argv[1:]
d = dict(zip(a[::2], a[1::2]))
d["ok"] = d.get("ok") == "true"
print(json.dumps(d))' "$@" >>"$CHECKS"
}
# run NAME ARGS...: dsinfer ARGS with a time limit (30 s: the fixtures are tiny); stdout NAME.out,
# stderr NAME.err; ERR says why it failed (empty when it worked). Once a sharded run of a layout
# (LAYOUT) timed out, the others of that layout are not started: a hang would eat the part.
TIMED_OUT=" "
run() {
  local name=$1 rc
  shift
  ERR=""
  if (($(tleft) < 12)); then
    ERR="not run: no time left"
  elif [[ -n $LAYOUT && $TIMED_OUT == *" $LAYOUT "* ]]; then
    ERR="not run: an earlier $LAYOUT run timed out"
  else
    timeout -k 5 "$(min "$(tleft 8)" 30)" "$DS" "$@" >"$P/$name.out" 2>"$P/$name.err"
    rc=$?
    local why
    why=$(first_error "$P/$name.err")
    if ((rc == 124 || rc == 137)); then
      [[ -n $LAYOUT ]] && TIMED_OUT+="$LAYOUT "
      ERR="rc $rc (timed out after 30 s)${why:+: $why}"
    elif ((rc != 0)); then
      ERR="rc $rc${why:+: $why}"
    fi
  fi
}

for model in v2_lite_bf16 v3_fp8; do
  M=$FIX/$model
  # The fixture's tensor-parallel slices do not start on 128-row FP8 blocks, so sharded ranks
  # would mix FP8 and dequantised GEMMs where one rank keeps FP8 throughout: compare the
  # dequantised model (FP8 kept is checked against its CPU twin in cuda_runner_test).
  DEVM=("${DEV[@]}")
  [[ $model == v3_fp8 ]] && DEVM+=(--dequantize-fp8)
  LAYOUT=""
  run "${model}_logits_tp1" logits --model "$M" --ids "$IDS" "${DEVM[@]}" "$GC_TP_FLAG" 1
  base_logits=$ERR
  run "${model}_gen_tp1" generate --model "$M" --ids "$IDS" --max-tokens 12 --ignore-eos "${DEVM[@]}" "$GC_TP_FLAG" 1
  base_gen=$ERR
  want_ids=$(py -c 'import json, sys; print(json.load(open(sys.argv[1]))["ids"])' "$P/${model}_gen_tp1.out" 2>/dev/null)
  for layout in "${LAYOUTS[@]}"; do
    tag=$(echo "$layout" | tr -d ' -')
    LAYOUT=$tag
    # shellcheck disable=SC2086  # a layout is several flags
    lcmd="dsinfer logits --model tests/fixtures/models/$model --ids $IDS ${DEVM[*]} $layout"
    if [[ -n $base_logits ]]; then
      check what "$model logits $layout vs 1 rank" cmd "$lcmd" ok false error "the one-rank run failed: $base_logits"
    else
      run "${model}_logits_$tag" logits --model "$M" --ids "$IDS" "${DEVM[@]}" $layout
      err=$ERR
      if [[ -n $err ]]; then
        check what "$model logits $layout vs 1 rank" cmd "$lcmd" ok false error "$err"
      else
        cmp=$(py "$ROOT/bench/gpu_check_report.py" compare-logits "$P/${model}_logits_tp1.out" "$P/${model}_logits_$tag.out")
        rel=$(py -c 'import json, sys; print(json.loads(sys.argv[1]).get("rel", "nan"))' "$cmp" 2>/dev/null || echo nan)
        ok=$(py -c 'import sys; r = float(sys.argv[1]); print("true" if r <= float(sys.argv[2]) else "false")' "$rel" "$BAR")
        check what "$model logits $layout vs 1 rank" cmd "$lcmd" ok "$ok" \
          figure "max abs(got - want) / max abs(want) = $(printf '%.2e' "$rel") (bar $BAR)" peer "one rank ${DEVM[*]}" \
          ratio "$(printf '%.2e' "$rel")"
      fi
    fi
    gcmd="dsinfer generate --model tests/fixtures/models/$model --ids $IDS --max-tokens 12 --ignore-eos ${DEVM[*]} $layout"
    if [[ -n $base_gen ]]; then
      check what "$model greedy 12 tokens $layout vs 1 rank" cmd "$gcmd" ok false error "the one-rank run failed: $base_gen"
    else
      run "${model}_gen_$tag" generate --model "$M" --ids "$IDS" --max-tokens 12 --ignore-eos "${DEVM[@]}" $layout
      err=$ERR
      if [[ -n $err ]]; then
        check what "$model greedy 12 tokens $layout vs 1 rank" cmd "$gcmd" ok false error "$err"
      else
        got_ids=$(py -c 'import json, sys; print(json.load(open(sys.argv[1]))["ids"])' "$P/${model}_gen_$tag.out" 2>/dev/null)
        if [[ -n $got_ids && $got_ids == "$want_ids" ]]; then
          check what "$model greedy 12 tokens $layout vs 1 rank" cmd "$gcmd" ok true figure "identical: $got_ids" peer "one rank"
        else
          check what "$model greedy 12 tokens $layout vs 1 rank" cmd "$gcmd" ok false \
            figure "different: $got_ids vs one rank $want_ids" peer "one rank"
        fi
      fi
    fi
  done
done

# NCCL: the communicator tests on every GPU present (a group of 1 and of all GPUs).
NT=$BUILD/tests/nccl_communicator_test
NGPU=$(gpu_count)
if ((NGPU == 0)); then
  detail "nccl_communicator_test: not run (no GPU)"
elif [[ ! -x $NT ]]; then
  check what "nccl_communicator_test on $NGPU GPU(s)" cmd "build-gpu-check/tests/nccl_communicator_test" ok false \
    error "not built (NCCL not found when configuring, or the build failed: see configure.log)"
elif (($(tleft) < 10)); then
  check what "nccl_communicator_test on $NGPU GPU(s)" ok false error "not run: no time left"
else
  timeout -k 5 "$(min "$(tleft 3)" 90)" "$NT" >"$P/nccl_communicator_test.log" 2>&1
  rc=$?
  passed=$(grep -o '\[  PASSED  \] [0-9]* test' "$P/nccl_communicator_test.log" | grep -o '[0-9]*' | head -1)
  skipped=$(grep -o '\[  SKIPPED \] [0-9]* test' "$P/nccl_communicator_test.log" | grep -o '[0-9]*' | head -1)
  failed=$(grep '^\[  FAILED  \]' "$P/nccl_communicator_test.log" | grep -v 'listed below' | head -3 | tr '\n' ' ')
  args=(figure "${passed:-0} passed, ${skipped:-0} skipped")
  if ((rc == 0)); then args+=(ok true)
  elif ((rc == 124)); then args+=(ok false error "timed out${failed:+; failed: $failed}")
  else args+=(ok false error "rc $rc${failed:+: $failed}"); fi
  check what "nccl_communicator_test on $NGPU GPU(s)" cmd "build-gpu-check/tests/nccl_communicator_test" "${args[@]}"
fi

cp "$P"/*.err "$GC_LOGS/" 2>/dev/null
cp "$P"/nccl_communicator_test.log "$GC_LOGS/" 2>/dev/null
py "$ROOT/bench/gpu_check_report.py" parallel "$P" --out "$OUT/parallel.json" --rows "$GC_WORK/rows.tsv" \
  --part "$GC_PART" >"$P/summary.txt" 2>"$GC_LOGS/parallel_report.err"
[[ $GC_DEVICE == cpu ]] && detail "REHEARSAL on the CPU (--device cpu): the script's own check, not a GPU result"
while IFS= read -r l; do detail "$l"; done <"$P/summary.txt"
n=$(wc -l <"$CHECKS")
bad=$(grep -c '"ok": false' "$CHECKS" || true)
first=$(grep -m1 '"ok": false' "$CHECKS" | py -c 'import json, sys
d = json.loads(sys.stdin.read() or "{}")
print(d.get("what", ""), "-", d.get("error") or d.get("figure", ""))' 2>/dev/null)
if ((n == 0)); then status fail "no check ran"
elif ((bad == 0)); then status pass "$n checks passed"
else status fail "$bad of $n checks failed; first: ${first:0:250}"; fi
