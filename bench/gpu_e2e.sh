#!/usr/bin/env bash
# Part 3 of scripts/gpu-check.sh: end to end on one GPU against HF transformers, same weights.
#   v2lite  DeepSeek-V2-Lite config, 27 layers, random bf16 (~15.7B parameters, 31 GB)
#   v3fp8   DeepSeek-V3 dimensions, FP8 e4m3 weights with 128x128 block scales, 2 layers (layer 0
#           dense, layer 1 MoE with 256 experts; ~16 GB); the HF peer dequantises it to bf16 itself
# For each: the model is drawn on the GPU (tools/make_bench_model.py --device cuda) into /dev/shm
# (or /tmp when /dev/shm is too small), then `dsinfer bench --device cuda` at batch 32 and 128
# with 128-token prompts and at batch 1 with a 2048-token prompt (32 generated tokens each), then
# bench/hf_cpu_bench.py --device cuda with the same batches after one load (the last 60-75 s of
# the model's share are kept for it); the model is deleted when done. Summary: tok/s, ratio to HF, decode step against its memory roofline
# (bench/gpu_check_report.py e2e), the copy bandwidth measured with torch first.
#
# Run alone on a GPU machine after scripts/gpu-check.sh has built $BUILD/src/cli/dsinfer:
#   GC_PART_END=$(($(date +%s) + 300)) bash bench/gpu_e2e.sh
# E2E_MODELS (default "v2lite v3fp8"), E2E_V2_LAYERS (27), E2E_V3_LAYERS (2), E2E_GEN (32),
# E2E_BATCHES (default "32 1 128"; batch 1 has the 2048-token prompt);
# GC_DEVICE=cpu rehearses it on a CPU with small dimensions (2 layers, batch 1 / 4).
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/gpu_check_lib.sh
. "$ROOT/bench/gpu_check_lib.sh"
DS=${DS:-$BUILD/src/cli/dsinfer}
E2E=$GC_WORK/e2e
rm -rf "$E2E"
mkdir -p "$E2E"
MODELS=${E2E_MODELS:-v2lite v3fp8}
NPROC=$(nproc)
# Batches in the order of their value (the time limit cuts the last): 32 (the 10x goal), 1 with
# the long prompt (time to first token), 128.
if [[ $GC_DEVICE == cuda ]]; then
  V2_LAYERS=${E2E_V2_LAYERS:-27} V3_LAYERS=${E2E_V3_LAYERS:-2} DIMS=full WORKERS=8
  LONG=2048 PROMPT=128 GEN=${E2E_GEN:-32} DEV_ARGS=("$GC_DEVICE_FLAG" cuda)
  read -r -a BATCHES <<<"${E2E_BATCHES:-32 1 128}"
else  # rehearsal on a CPU: the same steps on small models
  V2_LAYERS=2 V3_LAYERS=2 DIMS=small WORKERS=2 LONG=256 PROMPT=32 GEN=4 BATCHES=(4 1) DEV_ARGS=("$GC_DEVICE_FLAG" cpu --threads "$NPROC")
fi
HF_RESERVE=(60 75)  # seconds kept for the HF peer: v2lite, v3fp8 (it also writes its bf16 copy)
KEEP=()  # model folders to delete on any exit
cleanup() {
  ((${#KEEP[@]})) && rm -rf "${KEEP[@]}"
  rmdir /tmp/dsinfer-gpu-check-models 2>/dev/null
  true
}
trap cleanup EXIT
trap 'exit 143' TERM INT

# A folder for SIZE bytes (+ headroom): /dev/shm (RAM, fast) or /tmp (disk); empty if neither.
model_dir() {
  local name=$1 size=$2 shm tmp
  shm=$(df -B1 --output=avail /dev/shm 2>/dev/null | tail -1)
  tmp=$(df -B1 --output=avail /tmp 2>/dev/null | tail -1)
  if [[ -n $shm ]] && ((shm > size + (8 << 30))); then echo "/dev/shm/dsinfer-gpu-check-$name"
  elif [[ -n $tmp ]] && ((tmp > size + (4 << 30))); then echo "/tmp/dsinfer-gpu-check-models/$name"
  fi
}

# Device copy bandwidth (torch; bytes read + written), the roofline's denominator.
if [[ $GC_DEVICE == cuda ]]; then
  timeout 60 env LD_LIBRARY_PATH="$GC_PY_LD_LIBRARY_PATH" python3 - >"$E2E/copy_bw.json" 2>"$GC_LOGS/e2e_copy_bw.err" <<'PY'
import json, torch
x = torch.empty(2 << 30, dtype=torch.uint8, device="cuda"); y = torch.empty_like(x)
for _ in range(3): y.copy_(x)
s, e = torch.cuda.Event(True), torch.cuda.Event(True); s.record()
for _ in range(10): y.copy_(x)
e.record(); torch.cuda.synchronize()
print(json.dumps({"copy_GBps": 2 * x.numel() * 10 / (s.elapsed_time(e) / 1e3) / 1e9,
                  "gpu": torch.cuda.get_device_name()}))
PY
fi

FAILS=()
# run_model FAMILY LAYERS SECONDS
run_model() {
  local fam=$1 layers=$2 end=$(($(date +%s) + $3)) dir size t0 rc b p tag=${1}_${2}l
  local out=$E2E/$tag
  mleft() { local l=$((end - $(date +%s) - ${1:-0})); ((l < 1)) && l=1; echo "$l"; }
  mkdir -p "$out"
  size=$(py "$ROOT/tools/make_bench_model.py" --family "$fam" --layers "$layers" --dims "$DIMS" --print-size)
  dir=$(model_dir "$tag" "${size:-0}")
  if [[ -z $dir ]]; then
    FAILS+=("$tag: no room for $((size >> 30)) GiB in /dev/shm or /tmp")
    return
  fi
  KEEP+=("$dir")
  rm -rf "$dir" "$dir.tmp"
  t0=$(date +%s)
  timeout -k 5 "$(mleft 60)" env LD_LIBRARY_PATH="$GC_PY_LD_LIBRARY_PATH" python3 "$ROOT/tools/make_bench_model.py" \
    --family "$fam" --layers "$layers" --dims "$DIMS" --device "$GC_DEVICE" --workers "$WORKERS" --out "$dir" \
    >"$GC_LOGS/e2e_${tag}_make_model.log" 2>&1
  rc=$?
  if ((rc != 0)); then
    FAILS+=("$tag: writing the model failed (rc $rc$( ((rc == 124)) && echo ', timed out')): $(py_error "$GC_LOGS/e2e_${tag}_make_model.log")")
    rm -rf "$dir" "$dir.tmp"
    return
  fi
  local desc
  if [[ $fam == v2lite ]]; then desc="DeepSeek-V2-Lite config, $layers layers, random bf16"
  else desc="DeepSeek-V3 dims, $layers layers (1 dense + $((layers - 1)) MoE), random FP8 e4m3 128x128 blocks"; fi
  [[ $DIMS == small ]] && desc="$desc (SMALL dims: rehearsal)"
  py - "$dir" "$out/model.json" "$desc" "$(($(date +%s) - t0))" "$size" "$(dirname "$dir")" <<'PY'
import json, os, subprocess, sys
d, out, desc, gen_s, size, where = sys.argv[1:]
b = json.loads(subprocess.check_output([sys.executable, os.environ["GC_REPORT"], "model-bytes", d]))
json.dump({"desc": desc, "dir": d, "where": where, "gen_s": float(gen_s), "size_gb": int(size) / 1e9,
           "config": json.load(open(d + "/config.json")), "bytes": b}, open(out, "w"))
PY
  # dsinfer; batch 1 has the long prompt (prefill figure, and decode at that context).
  local reserve=${HF_RESERVE[$([[ $fam == v2lite ]] && echo 0 || echo 1)]}
  for b in "${BATCHES[@]}"; do
    p=$([[ $b == 1 ]] && echo "$LONG" || echo "$PROMPT")
    local cmd=("$DS" bench --model "$dir" "${DEV_ARGS[@]}" --batch "$b" --prompt-len "$p" --gen-len "$GEN")
    echo "dsinfer bench --model <$desc> ${DEV_ARGS[*]} --batch $b --prompt-len $p --gen-len $GEN" >"$out/ds_$b.cmd"
    if (($(mleft "$reserve") < 30)); then
      echo "not run: no time left (${reserve}s kept for the HF peer)" >"$out/ds_$b.error"
      FAILS+=("$tag dsinfer batch $b: not run, no time left")
      continue
    fi
    timeout -k 5 "$(min "$(mleft "$reserve")" 120)" "${cmd[@]}" >"$out/ds_$b.json" 2>"$out/ds_$b.err"
    rc=$?
    if ((rc != 0)); then
      echo "rc $rc$( ((rc == 124)) && echo ' (timed out)'): $(first_error "$out/ds_$b.err")" >"$out/ds_$b.error"
      FAILS+=("$tag dsinfer batch $b: $(cat "$out/ds_$b.error")")
    fi
  done
  # HF transformers: one load, the same batches. FP8: the peer writes its own bf16 copy first.
  local runs="" hf_dir="" hf_args=()
  for b in "${BATCHES[@]}"; do runs+="${runs:+,}$b:$([[ $b == 1 ]] && echo "$LONG" || echo "$PROMPT")"; done
  if [[ $fam == v3fp8 ]]; then
    hf_dir=$(model_dir "${tag}-bf16" $((size * 2)))
    [[ -n $hf_dir ]] && { KEEP+=("$hf_dir"); hf_args=(--dequant-fp8 "$hf_dir"); }
  fi
  if [[ $fam == v3fp8 && -z $hf_dir ]]; then
    echo "no room for the bf16 copy the HF peer needs" >"$out/hf.error"
  elif (($(mleft) < 30)); then
    echo "not run: no time left" >"$out/hf.error"
    FAILS+=("$tag HF: not run, no time left")
  else
    local hcmd=(python3 "$ROOT/bench/hf_cpu_bench.py" --model "$dir" --device "$([[ $GC_DEVICE == cuda ]] && echo cuda || echo cpu)"
      --threads "$NPROC" --runs "$runs" --prompt-len "$LONG" --gen-len "$GEN" --reps 1 "${hf_args[@]}")
    echo "python3 bench/hf_cpu_bench.py --model <same> --device $GC_DEVICE --runs $runs --prompt-len $LONG --gen-len $GEN --reps 1${hf_args[*]:+ --dequant-fp8 DIR}" >"$out/hf.cmd"
    timeout -k 5 "$(mleft 3)" env LD_LIBRARY_PATH="$GC_PY_LD_LIBRARY_PATH" PYTHONUNBUFFERED=1 "${hcmd[@]}" \
      >"$out/hf.jsonl" 2>"$out/hf.err"
    rc=$?
    if ((rc != 0)); then
      echo "rc $rc$( ((rc == 124)) && echo ' (timed out; runs finished before are kept)'): $(py_error "$out/hf.err")" >"$out/hf.error"
      FAILS+=("$tag HF: $(cat "$out/hf.error")")
    fi
  fi
  rm -rf "$dir" "$dir.tmp" ${hf_dir:+"$hf_dir"}
}

export GC_REPORT=$ROOT/bench/gpu_check_report.py
set -- $MODELS
while (($#)); do
  fam=$1
  shift
  layers=$([[ $fam == v2lite ]] && echo "$V2_LAYERS" || echo "$V3_LAYERS")
  # The first model leaves the second at least 120 s (the V3-dimension one loads more slowly:
  # dsinfer dequantises its FP8 weights on load, the HF peer writes a bf16 copy first).
  # With less than 240 s in all they split 55:45, with less than 120 s the first takes it all.
  share=$(tleft 5)
  if (($#)); then
    if ((share >= 240)); then share=$(min $((share - 120)) 160)
    elif ((share >= 120)); then share=$((share * 55 / 100)); fi
  fi
  if ((share < 40)); then
    FAILS+=("${fam}_${layers}l: not run, ${share}s left")
    continue
  fi
  run_model "$fam" "$layers" "$share"
done

py "$ROOT/bench/gpu_check_report.py" e2e "$E2E" --out "$OUT/e2e.json" --rows "$GC_WORK/rows.tsv" --part "$GC_PART" \
  >"$E2E/summary.txt" 2>"$GC_LOGS/e2e_report.err" || echo "report failed: $(tail -1 "$GC_LOGS/e2e_report.err")" >>"$E2E/summary.txt"
[[ $GC_DEVICE == cpu ]] && detail "REHEARSAL on the CPU (--device cpu, small dims): not GPU figures"
while IFS= read -r l; do detail "$l"; done <"$E2E/summary.txt"
cp -r "$E2E" "$GC_LOGS/e2e" 2>/dev/null
if ((${#FAILS[@]})); then
  for f in "${FAILS[@]}"; do detail "problem: $f"; done
  status fail "${#FAILS[@]} problem(s): ${FAILS[0]}"
else
  status pass "$(echo $MODELS | wc -w) models, dsinfer and HF at every batch"
fi
