#!/bin/bash
# A/B, interleaved run by run: `dsinfer bench` of a base binary against a new one on the bench
# models (tools/make_cpu_bench_model.py); one line per run with the 1-minute load average.
# Usage: BASE=old/dsinfer NEW=build/src/cli/dsinfer [M=bf16 dir] [M8=fp8 dir] [REPS=2]
#        [CASES="b1 b8 b32 p2048 fp8b1 fp8b8 fp8deqb1"] bench/cpu_ab.sh
BASE=${BASE:?set BASE to the base dsinfer binary}
NEW=${NEW:-build/src/cli/dsinfer}
M=${M:-.peers/v2lite-4l}; M8=${M8:-.peers/v2lite-4l-fp8}
REPS=${REPS:-2}
CASES=${CASES:-"b1 b8 fp8b1 fp8deqb1"}
for r in $(seq $REPS); do
  for c in $CASES; do
    for which in base new; do
      bin=$BASE; [ $which = new ] && bin=$NEW
      case $c in
        b1) args="--model $M --batch 1 --prompt-len 128 --gen-len 16";;
        b8) args="--model $M --batch 8 --prompt-len 128 --gen-len 16";;
        b32) args="--model $M --batch 32 --prompt-len 128 --gen-len 16";;
        p2048) args="--model $M --batch 1 --prompt-len 2048 --gen-len 4";;
        fp8b1) args="--model $M8 --batch 1 --prompt-len 128 --gen-len 16";;
        fp8b8) args="--model $M8 --batch 8 --prompt-len 128 --gen-len 16";;
        fp8deqb1) args="--model $M8 --batch 1 --prompt-len 128 --gen-len 16 --dequantize-fp8";;
      esac
      l=$(cut -d' ' -f1 /proc/loadavg)
      out=$($bin bench $args --dtype bf16 --threads 2 2>/dev/null | grep '^{')
      echo "$r $c $which load=$l $out"
    done
  done
done
