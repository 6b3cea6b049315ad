#!/usr/bin/env python3
"""A float32 CPU reference forward for DeepSeek-V4 checkpoints (HF layout, tensor names under "model.").

Follows the semantics of DeepSeek's published V4 inference code (inference/model.py and
inference/kernel.py of the V4 release; written here from reading it, not copied), whole-prompt form:
  - sliding window: query t sees raw keys max(0, t - window + 1) .. t;
  - compressor of rate m: entry w pools tokens w*m .. w*m+m-1 with a per-dim softmax of
    (wgate x + ape[i]); for m == 4 the windows overlap: the first half of the projected dims of
    window w-1 joins the second half of window w (2m candidates, window -1 scores -inf); then
    RMSNorm and RoPE at position w*m; query t sees entries w < (t + 1) // m (closed windows only);
  - rate 4 layers pick their compressed entries with the lightning indexer:
    score_w = sum_h relu(q_h . k_w) * weights_proj(x)_h * index_head_dim^-0.5 * index_heads^-0.5,
    top index_topk among the visible entries (the release's Hadamard rotation is orthogonal and is
    applied to both sides, so it does not change the scores in float32; its FP4 simulation is not
    reproduced: float32 throughout);
  - RoPE: layers with compression use compress_rope_theta with YaRN for q, window kv, compressor and
    indexer; sliding-only layers use rope_theta without YaRN; no YaRN mscale on the softmax scale;
    the attention output is de-rotated on its rope dims before the grouped output projection;
  - attention sink per head in the softmax denominator; K = V (one kv head);
  - mHC (hc_split_sinkhorn), sqrtsoftplus / hash routing, normalised weights x route scale,
    swiglu_limit clamp (up to +-limit, gate to <= limit) on routed and shared experts.
It departs from the release only where the release simulates low precision (FP8 act_quant of the
kv nope dims, FP4 indexer activations, bf16 activations): this reference is float32.

Where HF transformers 5.25's deepseek_v4 departs from this (see src/model/README.md), the golden
fixture tests/fixtures/models/v4_tiny follows this reference.

    python3 tools/deepseek_v4_reference.py MODEL_DIR ID ID ...   # prints last-row logits argmax
"""

from __future__ import annotations

import json
import math
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import deepseek_reference as ref  # noqa: E402


def rms(x, w, eps):
    y = x * torch.rsqrt(x.square().mean(-1, keepdim=True) + eps)
    return y * w if w is not None else y


def inv_freq(rd, base, yarn):
    f = 1.0 / (base ** (torch.arange(0, rd, 2, dtype=torch.float64) / rd))
    if yarn is None:
        return f
    factor, orig, beta_fast, beta_slow = yarn

    def corr(rot):
        return rd * math.log(orig / (rot * 2 * math.pi)) / (2 * math.log(base))

    low, high = max(math.floor(corr(beta_fast)), 0), min(math.ceil(corr(beta_slow)), rd - 1)
    if low == high:
        high += 0.001
    ramp = ((torch.arange(rd // 2, dtype=torch.float64) - low) / (high - low)).clamp(0, 1)
    smooth = 1 - ramp
    return f / factor * (1 - smooth) + f * smooth


def rope(x, pos, freq, inverse=False):
    """Rotates the trailing len(freq)*2 dims of x [..., T, (heads,) d] as interleaved pairs."""
    rd = 2 * freq.numel()
    ang = pos.double()[:, None] * freq[None, :]  # [T, rd/2]
    if inverse:
        ang = -ang
    c, s = torch.cos(ang).float(), torch.sin(ang).float()
    if x.dim() == 3:
        c, s = c[:, None, :], s[:, None, :]
    head, tail = x[..., :-rd], x[..., -rd:]
    a, b = tail[..., 0::2], tail[..., 1::2]
    out = torch.stack([a * c - b * s, a * s + b * c], dim=-1).flatten(-2)
    return torch.cat([head, out], dim=-1)


class V4Reference:
    def __init__(self, model_dir: str, state: dict[str, torch.Tensor] | None = None):
        with open(os.path.join(model_dir, "config.json")) as f:
            self.c = json.load(f)
        self.w = {k: (v.float() if v.is_floating_point() else v) for k, v in (state if state is not None else ref.load_f32_state(model_dir)).items()}
        c = self.c
        self.eps = c["rms_norm_eps"]
        self.rd = c["qk_rope_head_dim"]
        rp = c["rope_parameters"]["compress"]
        yarn = (rp["factor"], rp["original_max_position_embeddings"], rp["beta_fast"], rp["beta_slow"])
        self.freq_main = inv_freq(self.rd, c["rope_theta"], None)
        self.freq_comp = inv_freq(self.rd, c["compress_rope_theta"], yarn)
        self.rates = [c["compress_rates"].get(t, 0) for t in c["layer_types"]]
        # smallest gap between the k-th and (k+1)-th indexer score over all queries seen, relative
        # to the query's largest |score|: a golden whose selection depends on rounding is not one
        self.min_index_gap = float("inf")

    def p(self, name):
        return self.w[name]

    def compress(self, pre, x, m, d, freq):
        """Compressed entries [T // m, d] of the prompt x [T, dim]."""
        T = x.shape[0]
        n = T // m
        if n == 0:
            return x.new_zeros(0, d)
        kv = x @ self.p(pre + "wkv.weight").T
        sc = x @ self.p(pre + "wgate.weight").T
        ape = self.p(pre + "ape")
        kv = kv[: n * m].view(n, m, -1)
        sc = sc[: n * m].view(n, m, -1) + ape
        if m == 4:  # overlapping windows
            pk = torch.zeros(n, m, d)
            ps = torch.full((n, m, d), float("-inf"))
            pk[1:], ps[1:] = kv[:-1, :, :d], sc[:-1, :, :d]
            kv = torch.cat([pk, kv[:, :, d:]], dim=1)
            sc = torch.cat([ps, sc[:, :, d:]], dim=1)
        pooled = (kv * sc.softmax(dim=1)).sum(dim=1)
        e = rms(pooled, self.p(pre + "norm.weight"), self.eps)
        return rope(e, torch.arange(n) * m, freq)

    def attention(self, i, x):
        c, pre = self.c, f"model.layers.{i}.attn."
        T = x.shape[0]
        H, d, m = c["num_attention_heads"], c["head_dim"], self.rates[i]
        freq = self.freq_comp if m else self.freq_main
        pos = torch.arange(T)
        qr = rms(x @ self.p(pre + "wq_a.weight").T, self.p(pre + "q_norm.weight"), self.eps)
        q = (qr @ self.p(pre + "wq_b.weight").T).view(T, H, d)
        q = rope(rms(q, None, self.eps), pos, freq)
        kv = rope(rms(x @ self.p(pre + "wkv.weight").T, self.p(pre + "norm.weight"), self.eps), pos, freq)
        comp = self.compress(pre + "compressor.", x, m, d, freq) if m else None
        sel = None
        if m == 4:
            Hi, di, topk = c["index_n_heads"], c["index_head_dim"], c["index_topk"]
            qi = rope((qr @ self.p(pre + "indexer.wq_b.weight").T).view(T, Hi, di), pos, freq)
            ki = self.compress(pre + "indexer.compressor.", x, m, di, freq)
            wi = (x @ self.p(pre + "indexer.weights_proj.weight").T) * (di ** -0.5 * Hi ** -0.5)
            score = (torch.einsum("thd,nd->thn", qi, ki).relu() * wi[:, :, None]).sum(1)  # [T, n]
            sel = []
            for t in range(T):
                vis = (t + 1) // m
                k = min(topk, vis)
                sel.append(score[t, :vis].topk(k).indices if k > 0 else torch.zeros(0, dtype=torch.long))
                if vis > k:
                    v = score[t, :vis].sort(descending=True).values
                    gap = float(v[k - 1] - v[k]) / max(float(v.abs().max()), 1e-30)
                    self.min_index_gap = min(self.min_index_gap, gap)
        sinks = self.p(pre + "attn_sink")
        out = torch.zeros(T, H, d)
        scale = d ** -0.5
        for t in range(T):
            keys = [kv[max(0, t - c["sliding_window"] + 1): t + 1]]
            if m:
                vis = (t + 1) // m
                keys.append(comp[sel[t]] if sel is not None else comp[:vis])
            K = torch.cat(keys, dim=0)  # [n, d]
            s = (q[t] @ K.T) * scale  # [H, n]
            s = torch.cat([s, sinks[:, None]], dim=1)
            pr = s.softmax(dim=1)[:, :-1]
            out[t] = pr @ K
        out = rope(out, pos, freq, inverse=True)
        G, r = c["o_groups"], c["o_lora_rank"]
        o = out.reshape(T, G, H * d // G)
        wo_a = self.p(pre + "wo_a.weight").view(G, r, H * d // G)
        o = torch.einsum("tgd,grd->tgr", o, wo_a).reshape(T, G * r)
        return o @ self.p(pre + "wo_b.weight").T

    def expert(self, pre, x, limit):
        g = x @ self.p(pre + "w1.weight").T
        u = x @ self.p(pre + "w3.weight").T
        if limit > 0:
            u = u.clamp(-limit, limit)
            g = g.clamp(max=limit)
        return (F.silu(g) * u) @ self.p(pre + "w2.weight").T

    def moe(self, i, x, ids):
        c, pre = self.c, f"model.layers.{i}.ffn."
        lim = c.get("swiglu_limit", 0.0) or 0.0
        s = x @ self.p(pre + "gate.weight").T
        fn = c["scoring_func"]
        s = s.softmax(-1) if fn == "softmax" else (s.sigmoid() if fn == "sigmoid" else F.softplus(s).sqrt())
        if pre + "gate.tid2eid" in self.w:
            idx = self.p(pre + "gate.tid2eid")[ids].long()
        else:
            idx = (s + self.p(pre + "gate.bias")).topk(c["num_experts_per_tok"], dim=-1).indices
        wt = s.gather(1, idx)
        if fn != "softmax":
            wt = wt / wt.sum(-1, keepdim=True)
        wt = wt * c["routed_scaling_factor"]
        y = torch.zeros_like(x)
        for t in range(x.shape[0]):
            for j in range(idx.shape[1]):
                e = int(idx[t, j])
                y[t] += wt[t, j] * self.expert(f"{pre}experts.{e}.", x[t:t + 1], lim)[0]
        return y + self.expert(pre + "shared_experts.", x, lim)

    def hc_pre(self, h, fn, scale, base):
        c = self.c
        hc = c["hc_mult"]
        flat = h.flatten(1)
        mix = (flat @ fn.T) * torch.rsqrt(flat.square().mean(-1, keepdim=True) + self.eps)
        pre = torch.sigmoid(mix[:, :hc] * scale[0] + base[:hc]) + c["hc_eps"]
        post = 2 * torch.sigmoid(mix[:, hc:2 * hc] * scale[1] + base[hc:2 * hc])
        comb = (mix[:, 2 * hc:] * scale[2] + base[2 * hc:]).view(-1, hc, hc).softmax(-1) + c["hc_eps"]
        comb = comb / (comb.sum(-2, keepdim=True) + c["hc_eps"])
        for _ in range(c["hc_sinkhorn_iters"] - 1):
            comb = comb / (comb.sum(-1, keepdim=True) + c["hc_eps"])
            comb = comb / (comb.sum(-2, keepdim=True) + c["hc_eps"])
        return (pre[:, :, None] * h).sum(1), post, comb

    @staticmethod
    def hc_post(y, res, post, comb):
        # out[k] = post[k] * y + sum_j comb[j, k] * res[j]
        return post[:, :, None] * y[:, None, :] + torch.einsum("tjk,tjd->tkd", comb, res)

    @torch.no_grad()
    def logits(self, ids: list[int]) -> torch.Tensor:
        c = self.c
        idt = torch.tensor(ids, dtype=torch.long)
        h = self.p("model.embed_tokens.weight")[idt][:, None, :].repeat(1, c["hc_mult"], 1)
        for i in range(c["num_hidden_layers"]):
            pre = f"model.layers.{i}."
            x, post, comb = self.hc_pre(h, self.p(pre + "hc_attn_fn"), self.p(pre + "hc_attn_scale"),
                                        self.p(pre + "hc_attn_base"))
            h = self.hc_post(self.attention(i, rms(x, self.p(pre + "attn_norm.weight"), self.eps)), h, post, comb)
            x, post, comb = self.hc_pre(h, self.p(pre + "hc_ffn_fn"), self.p(pre + "hc_ffn_scale"),
                                        self.p(pre + "hc_ffn_base"))
            h = self.hc_post(self.moe(i, rms(x, self.p(pre + "ffn_norm.weight"), self.eps), idt), h, post, comb)
        flat = h.flatten(1)
        mix = (flat @ self.p("model.hc_head.hc_fn").T) * torch.rsqrt(flat.square().mean(-1, keepdim=True) + self.eps)
        w = torch.sigmoid(mix * self.p("model.hc_head.hc_scale") + self.p("model.hc_head.hc_base")) + c["hc_eps"]
        x = rms((w[:, :, None] * h).sum(1), self.p("model.norm.weight"), self.eps)
        return x @ self.p("head.weight").T

    def greedy(self, ids: list[int], n: int) -> list[int]:
        seq, out = list(ids), []
        for _ in range(n):
            t = int(self.logits(seq)[-1].argmax())
            out.append(t)
            seq.append(t)
        return out


if __name__ == "__main__":
    r = V4Reference(sys.argv[1])
    lg = r.logits([int(a) for a in sys.argv[2:]])
    print(lg[-1].argmax().item())
