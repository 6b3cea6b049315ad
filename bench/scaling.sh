#!/usr/bin/env bash
# CPU multi-process scale-out: decode throughput and communication per decode step by layout
# (tp 1 / 2 / 4, ep 1 / 2 / 4), with the volume each layout must move computed from the model
# config next to the measured bytes. Needs a quiet machine; ranks share its cores.
#   bench/scaling.sh [MODEL_DIR] [BUILD_DIR]   (default .peers/v2lite-4l, build)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
model=${1:-$root/.peers/v2lite-4l}
build=${2:-$root/build}
batch=${BATCH:-8}
out=${OUT_JSON:-$root/.peers/results/scaling.jsonl}
mkdir -p "$(dirname "$out")"
: > "$out"
echo "# $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores, $(date -u +%F)"
for layout in "1 1" "2 1" "2 2" "4 2" "4 4"; do
  set -- $layout
  args=(bench --model "$model" --batch "$batch" --prompt-len 32 --gen-len 16 --dtype bf16)
  [[ $1 -gt 1 ]] && args+=(--tp "$1" --ep "$2")
  "$build/src/cli/dsinfer" "${args[@]}" 2>/dev/null | tee -a "$out"
done
python3 - "$model/config.json" "$out" "$batch" <<'PY'
import json, sys
cfg = json.load(open(sys.argv[1])); rows = [json.loads(l) for l in open(sys.argv[2])]
B = int(sys.argv[3]); D = cfg["hidden_size"]; L = cfg["num_hidden_layers"]
E = cfg["n_routed_experts"]; K = cfg["num_experts_per_tok"]; V = cfg["vocab_size"]
dense = min(cfg.get("first_k_dense_replace", 0), L); moe = L - dense
base = rows[0]["decode_tok_s"]
print(f"\n{'layout':<10}{'tok/s':>8}{'x1 rank':>9}{'step ms':>9}{'comm ms':>9}"
      f"{'bytes/step':>12}{'must move':>11}")
for r in rows:
    W = r.get("tp", 1); M = r.get("ep", 1); T = W // M
    c = r.get("comm_per_decode_step", {})
    got = sum(v["bytes"] for v in c.values()); ms = sum(v["ms"] for v in c.values())
    # What rank 0 must contribute per decode step under this layout (f32 activations):
    #  embedding + one all-reduce per attention and per dense MLP: B*D*4 each;
    #  MoE: its B/W tokens to every rank of each expert group they hit (random routing:
    #  M(1-(1-1/M)^K) groups x T ranks) and back, then its slice to the all-gather;
    #  logits: its vocab share of B rows.
    groups = M * (1 - (1 - 1 / M) ** K)
    need = 0 if W == 1 else (1 + L + dense) * B * D * 4 + moe * (
        (B / W) * groups * T * ((D + 2 * K) * 4 + D * 4) + (B / W) * D * 4) + B * V / W * 4
    print(f"{('tp%d ep%d' % (W, M)):<10}{r['decode_tok_s']:8.1f}{r['decode_tok_s'] / base:9.2f}"
          f"{r['decode_step_ms']:9.1f}{ms:9.1f}{got:12.0f}{need:11.0f}")
PY
