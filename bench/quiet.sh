#!/usr/bin/env bash
# Runs a benchmark command with every other autogroup of this machine reniced to 19, and puts their
# nice values back afterwards. On a shared development machine with autogroup scheduling
# (/proc/sys/kernel/sched_autogroup_enabled = 1) each session is scheduled as one group, so
# `nice` on other processes does not keep them off the benchmark's cores; the group's nice does.
# Needs root (or CAP_SYS_NICE for groups of other users). Usage: bench/quiet.sh CMD [ARGS...]
set -uo pipefail
declare -A saved  # autogroup file -> its nice before
mine=$(cut -d' ' -f1 /proc/$$/autogroup)
restore() {
  for f in "${!saved[@]}"; do echo "${saved[$f]}" > "$f" 2>/dev/null; done
}
trap restore EXIT
"$@" &
bench=$!
while kill -0 "$bench" 2>/dev/null; do
  for f in /proc/[0-9]*/autogroup; do
    line=$(cat "$f" 2>/dev/null) || continue
    [[ "${line%% *}" == "$mine" ]] && continue
    [[ -n "${saved[$f]:-}" ]] && continue
    saved[$f]=${line##* }
    echo 19 > "$f" 2>/dev/null
  done
  sleep 2
done
wait "$bench"
