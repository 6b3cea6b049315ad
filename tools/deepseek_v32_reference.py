#!/usr/bin/env python3
"""Float32 reference for DeepSeek-V3.2 (DeepSeek Sparse Attention) inference semantics.

Extends tools/deepseek_reference.py (DeepSeek-V3 semantics) with the lightning indexer of
DeepSeek's published V3.2-Exp inference code (`inference/model.py` class `Indexer`, `MLA` with
the index mask; `kernel.py` `act_quant` and `fp8_index`), written from reading it:

  q = wq_b(q_a_layernorm(q_a_proj(x)))  [T, heads, 128], k = LayerNorm(wk(x)) [T, 128]
  the first qk_rope_head_dim values of q and k get RoPE in the half-split (non-interleaved)
  layout, then both are Hadamard-rotated (scale 128**-0.5) and quantised like act_quant:
  s = max(amax, 1e-4) * (1/448) (ue8m0: rounded up to a power of two), codes = e4m3(x / s);
  w = weights_proj(x) * heads**-0.5 * q_scale * 128**-0.5
  score[s, t] = k_scale[t] * sum_h w[s, h] * relu(q_fp8[s, h] . k_fp8[t])      (t <= s)
  MLA attends only to the top index_topk positions of each query (all when fewer).

The whole computation is float32; the FP8 steps are simulated exactly (torch float8_e4m3fn).
The Hadamard transform is written as butterflies (stride 1, 2, 4, ...) so that its float32
rounding matches dsinfer's CPU twin. Departures from DeepSeek's demo code, on purpose:
- the MLA latent is kept in float32 (the demo also rounds it through FP8 to mimic an FP8 KV
  cache; dsinfer's cache is f32 / bf16 for every family);
- ties in the top-k go to the lower position (torch.topk leaves them unspecified).

With quantize_index=False the indexer is Hugging Face transformers' simplification (no
Hadamard, no FP8: plain float q.k), used to cross-check HF where the two select the same keys.
"""

from __future__ import annotations

import argparse
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import deepseek_reference as ref  # noqa: E402

E4M3_MAX = 448.0


def hadamard(x: torch.Tensor) -> torch.Tensor:
    """Walsh-Hadamard transform of the last dim (a power of two), times n**-0.5."""
    n = x.size(-1)
    lead = x.shape[:-1]
    h = 1
    while h < n:
        v = x.reshape(*lead, n // (2 * h), 2, h)
        a, b = v[..., 0, :], v[..., 1, :]
        x = torch.stack([a + b, a - b], dim=-2).reshape(*lead, n)
        h *= 2
    return x * (n ** -0.5)


def act_quant(x: torch.Tensor, ue8m0: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """One 128-value block per row of the last dim: (decoded e4m3 values, scale)."""
    amax = x.abs().amax(dim=-1).clamp(min=1e-4)
    s = amax * torch.tensor(1.0 / E4M3_MAX, dtype=torch.float32)
    if ue8m0:
        bits = s.view(torch.int32)
        e = ((bits >> 23) & 0xFF) - 127 + ((bits & 0x7FFFFF) != 0).to(torch.int32)
        s = torch.ldexp(torch.ones_like(s), e)
    codes = (x / s.unsqueeze(-1)).clamp(-E4M3_MAX, E4M3_MAX).to(torch.float8_e4m3fn)
    return codes.float(), s


def rope_half(x: torch.Tensor, freqs_cis: torch.Tensor) -> torch.Tensor:
    """x: [T, heads, r]; pairs (x[i], x[i + r/2]) rotate by freqs_cis[t, i] (half-split layout)."""
    half = x.size(-1) // 2
    a, b = x[..., :half], x[..., half:]
    fc = freqs_cis.view(x.size(0), 1, half)
    c, s = fc.real, fc.imag
    return torch.cat([a * c - b * s, a * s + b * c], dim=-1)


class DeepseekV32Reference(ref.DeepseekReference):
    def __init__(self, model_dir: str, quantize_index: bool = True, state: dict | None = None):
        super().__init__(model_dir, router_convention="deepseek", state=state)
        cfg = self.hf_config
        self.index_heads = cfg.get("index_n_heads", 64)
        self.index_dim = cfg.get("index_head_dim", 128)
        self.index_topk = cfg.get("index_topk", 2048)
        self.ue8m0 = (cfg.get("quantization_config") or {}).get("scale_fmt") == "ue8m0"
        self.quantize_index = quantize_index
        if self.index_dim != 128:
            raise ValueError("DeepSeek's indexer quantises one 128-value block per key")
        self.record_index = False
        self.index_stats: list[dict] = []  # per layer call: selection and top-k boundary gap

    def index_select(self, x, qr, p, freqs_cis) -> torch.Tensor:
        """Boolean [T, T]: key t selected for query s (causal, top-k)."""
        T, H, D, R = x.size(0), self.index_heads, self.index_dim, self.c.qk_rope_head_dim
        ip = p + ".indexer"
        q = self._lin(qr, ip + ".wq_b").view(T, H, D)
        q = torch.cat([rope_half(q[..., :R], freqs_cis), q[..., R:]], dim=-1)
        k = F.layer_norm(self._lin(x, ip + ".wk"), (D,), self.w[ip + ".k_norm.weight"],
                         self.w[ip + ".k_norm.bias"], 1e-6)
        k = torch.cat([rope_half(k[:, None, :R], freqs_cis)[:, 0], k[:, R:]], dim=-1)
        w = self._lin(x, ip + ".weights_proj") * (H ** -0.5)
        if self.quantize_index:
            q, q_s = act_quant(hadamard(q), self.ue8m0)
            k, k_s = act_quant(hadamard(k), self.ue8m0)
            w = w * q_s * (D ** -0.5)
            logits = torch.einsum("shd,td->sht", q, k).relu()
            scores = (logits * w.unsqueeze(-1)).sum(dim=1) * k_s.unsqueeze(0)
        else:  # HF transformers' DeepseekV32Indexer
            logits = (torch.einsum("shd,td->sht", q, k) * (D ** -0.5)).relu()
            scores = (logits * w.unsqueeze(-1)).sum(dim=1)
        causal = torch.ones(T, T, dtype=torch.bool).tril_()
        scores = scores.masked_fill(~causal, float("-inf"))
        order = torch.sort(scores, dim=-1, descending=True, stable=True)
        K = self.index_topk
        sel = torch.zeros(T, T, dtype=torch.bool)
        gap = float("inf")
        for s in range(T):
            n = min(K, s + 1)
            sel[s, order.indices[s, :n]] = True
            if s + 1 > K:
                row = order.values[s]
                gap = min(gap, float((row[K - 1] - row[K]) / row[: s + 1].abs().max().clamp(min=1e-30)))
        if self.record_index:
            self.index_stats.append({"layer": p, "selected": sel.clone(), "min_rel_gap": gap})
        return sel

    def _attn(self, x, p, freqs_cis):
        c = self.c
        T = x.size(0)
        qr = ref.rms_norm(self._lin(x, p + ".q_a_proj"), self.w[p + ".q_a_layernorm.weight"], c.rms_norm_eps)
        q = self._lin(qr, p + ".q_b_proj").view(T, c.n_heads, self.qk_head_dim)
        q_nope, q_pe = torch.split(q, [c.qk_nope_head_dim, c.qk_rope_head_dim], dim=-1)
        q_pe = ref.apply_rotary_emb(q_pe, freqs_cis)
        kv = self._lin(x, p + ".kv_a_proj_with_mqa")
        kv, k_pe = torch.split(kv, [c.kv_lora_rank, c.qk_rope_head_dim], dim=-1)
        k_pe = ref.apply_rotary_emb(k_pe.unsqueeze(1), freqs_cis)
        q = torch.cat([q_nope, q_pe], dim=-1)
        kv = self._lin(ref.rms_norm(kv, self.w[p + ".kv_a_layernorm.weight"], c.rms_norm_eps), p + ".kv_b_proj")
        kv = kv.view(T, c.n_heads, c.qk_nope_head_dim + c.v_head_dim)
        k_nope, v = torch.split(kv, [c.qk_nope_head_dim, c.v_head_dim], dim=-1)
        k = torch.cat([k_nope, k_pe.expand(-1, c.n_heads, -1)], dim=-1)
        scores = torch.einsum("shd,thd->sht", q, k) * self.softmax_scale
        sel = self.index_select(x, qr, p, freqs_cis)
        mask = torch.zeros(T, T).masked_fill_(~sel, float("-inf"))
        scores = (scores + mask.unsqueeze(1)).softmax(dim=-1, dtype=torch.float32)
        o = torch.einsum("sht,thd->shd", scores, v)
        return self._lin(o.flatten(1), p + ".o_proj")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model_dir")
    ap.add_argument("--prompt", required=True, help="comma-separated token ids")
    ap.add_argument("--greedy", type=int, default=0)
    ap.add_argument("--hf-indexer", action="store_true", help="HF's indexer (no Hadamard, no FP8)")
    a = ap.parse_args()
    ids = [int(t) for t in a.prompt.split(",")]
    m = DeepseekV32Reference(a.model_dir, quantize_index=not a.hf_indexer)
    print("last logits top5:", m.forward(ids)[-1].topk(5))
    if a.greedy:
        print("greedy:", m.greedy(ids, a.greedy))


if __name__ == "__main__":
    main()
