#!/usr/bin/env bash
# End to end on one GPU (issue: full DeepSeek-V2-Lite config, 27 layers, ~15.7B random bf16
# parameters): dsinfer --device cuda against HF transformers on the same weights and GPU, output
# tok/s at batch 1 / 32 / 128 and time to first token of a 2k prompt, plus the decode step
# against its memory roofline (weight + KV bytes read per step / measured copy bandwidth).
# Run it on the GPU machine after scripts/gpu-check.sh has built $BUILD/src/cli/dsinfer:
#   BUILD=build-gpu-check OUT=gpu-e2e-out bench/gpu_e2e.sh [LAYERS]
# LAYERS (default 27) smaller for a quick try; HF's batch-128 run is skipped with HF_MAX_BATCH.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$ROOT/build-gpu-check}
OUT=${OUT:-$ROOT/gpu-e2e-out}
LAYERS=${1:-27}
MODEL=${MODEL:-/tmp/v2lite-${LAYERS}l}
HF_MAX_BATCH=${HF_MAX_BATCH:-128}
GEN=${GEN:-32}
mkdir -p "$OUT"
DS="$BUILD/src/cli/dsinfer"
log() { echo "[$(date +%T)] $*" | tee -a "$OUT/summary.txt"; }

[[ -f "$MODEL/config.json" ]] || {
  log "writing the random-weight model ($LAYERS layers) to $MODEL"
  python3 "$ROOT/tools/make_bench_model.py" --layers "$LAYERS" --out "$MODEL" >"$OUT/make_model.log" 2>&1 ||
    { log "model writing failed"; tail -5 "$OUT/make_model.log"; exit 1; }
}
log "model: $(du -sh "$MODEL" | cut -f1)"

# Device-to-device copy bandwidth (bytes read + written), the roofline's denominator.
python3 - >"$OUT/copy_bw.json" <<'PY'
import json, torch
x = torch.empty(2 << 30, dtype=torch.uint8, device="cuda"); y = torch.empty_like(x)
for _ in range(3): y.copy_(x)
s, e = torch.cuda.Event(True), torch.cuda.Event(True); s.record()
for _ in range(10): y.copy_(x)
e.record(); torch.cuda.synchronize()
print(json.dumps({"copy_GBps": 2 * x.numel() * 10 / (s.elapsed_time(e) / 1e3) / 1e9,
                  "gpu": torch.cuda.get_device_name()}))
PY
log "copy bandwidth: $(cat "$OUT/copy_bw.json")"

for b in 1 32 128; do
  timeout 300 "$DS" bench --model "$MODEL" --device cuda --batch $b --prompt-len 128 --gen-len $GEN \
    2>>"$OUT/dsinfer.log" | tee -a "$OUT/dsinfer.jsonl"
done
timeout 300 "$DS" bench --model "$MODEL" --device cuda --batch 1 --prompt-len 2048 --gen-len 1 \
  2>>"$OUT/dsinfer.log" | tee -a "$OUT/dsinfer_ttft.jsonl"

for b in 1 32 128; do
  ((b > HF_MAX_BATCH)) && continue
  timeout 600 python3 "$ROOT/bench/hf_cpu_bench.py" --model "$MODEL" --device cuda --batch $b \
    --prompt-len 2048 --decode-prompt-len 128 --gen-len $GEN --reps 1 $([[ $b -gt 1 ]] && echo --no-prefill) \
    2>>"$OUT/hf.log" | tee -a "$OUT/hf.jsonl"
done

python3 - "$MODEL/config.json" "$OUT" <<'PY' | tee -a "$OUT/summary.txt"
import json, sys, os
cfg = json.load(open(sys.argv[1])); out = sys.argv[2]
rows = lambda f: [json.loads(l) for l in open(os.path.join(out, f)) if l.strip().startswith("{")] \
    if os.path.exists(os.path.join(out, f)) else []
ds, hf = rows("dsinfer.jsonl"), {r["batch"]: r for r in rows("hf.jsonl")}
bw = json.load(open(os.path.join(out, "copy_bw.json")))["copy_GBps"] * 1e9
D, L, V = cfg["hidden_size"], cfg["num_hidden_layers"], cfg["vocab_size"]
E, k, I, Im = cfg["n_routed_experts"], cfg["num_experts_per_tok"], cfg["moe_intermediate_size"], cfg["intermediate_size"]
H, r, n, v, kvl = cfg["num_attention_heads"], cfg["qk_rope_head_dim"], cfg["qk_nope_head_dim"], cfg["v_head_dim"], cfg["kv_lora_rank"]
dense = cfg["first_k_dense_replace"]; moe = L - dense; sh = cfg["n_shared_experts"]
attn = D * H * (n + r) + D * (kvl + r) + kvl * H * (n + v) + H * v * D
print(f"{'batch':>6}{'dsinfer tok/s':>15}{'HF tok/s':>10}{'ratio':>8}{'step ms':>9}{'roofline ms':>12}{'of roofline':>12}")
for r_ in ds:
    B = r_["batch"]
    touched = E * (1 - (1 - k / E) ** B)  # distinct experts a decode step reads, per MoE layer
    params = L * attn + dense * 3 * D * Im + moe * (3 * D * I * (touched + sh) + D * E) + V * D
    ctx = 128 + r_["gen_len"] / 2
    kv = B * ctx * L * (kvl + r) * 2
    roof_ms = 1e3 * (2 * params + kv) / (bw / 2)  # copy bw counts read + write
    h = hf.get(B, {}).get("decode_tok_s")
    print(f"{B:>6}{r_['decode_tok_s']:>15.1f}{(h or 0):>10.1f}{(r_['decode_tok_s'] / h if h else 0):>8.1f}"
          f"{r_['decode_step_ms']:>9.2f}{roof_ms:>12.2f}{roof_ms / r_['decode_step_ms']:>12.2f}")
t = rows("dsinfer_ttft.jsonl")
if t:
    print(f"TTFT 2048 prompt: dsinfer {2048 / t[0]['prefill_tok_s'] * 1e3:.0f} ms", end="")
    if 1 in hf and "prefill_s" in hf[1]:
        print(f", HF {hf[1]['prefill_s'] * 1e3:.0f} ms", end="")
    print()
PY
