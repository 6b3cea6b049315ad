#!/usr/bin/env python3
"""Compact float32 reference for DeepSeek-V2/V3 inference semantics.

Follows DeepSeek's own reference inference code (DeepSeek-V3 `inference/model.py`,
"naive" attention): MLA with q-LoRA or a plain q_proj, RMSNorm, interleaved-pair
RoPE with YaRN inv_freq correction and mscale, MoE gate with softmax or sigmoid
scores, e_score_correction_bias for selection only, group-limited routing with
dropped groups masked to -inf, shared experts and dense first layers.

It reads a checkpoint in Hugging Face layout (config.json + one or more
safetensors files, optionally sharded with model.safetensors.index.json).
FP8 E4M3 weights with `weight_scale_inv` are dequantised with DeepSeek's
fixed 128x128 block rule (edge blocks cropped); BF16/F16 are upcast. All
computation is float32 on the CPU.

Usage as a tool:
    python3 tools/deepseek_reference.py tests/fixtures/models/v3_fp8 --prompt 5,6,7 --greedy 8
"""

from __future__ import annotations

import argparse
import json
import math
import os
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from safetensors import safe_open

FP8_BLOCK = 128

# Routing conventions for the top-k weights of softmax (V2-style) gates.
#   "deepseek":     normalise when norm_topk_prob (always for sigmoid), then
#                   multiply by routed_scaling_factor (DeepSeek-V3 reference,
#                   vLLM, SGLang).
#   "v2_remote":    DeepSeek-V2's original modeling_deepseek.py: normalise when
#                   norm_topk_prob, otherwise multiply by routed_scaling_factor
#                   (never both).
#   "hf_v2":        Hugging Face transformers DeepseekV2: never normalise,
#                   always multiply by routed_scaling_factor.
ROUTER_CONVENTIONS = ("deepseek", "v2_remote", "hf_v2")


# ---------------------------------------------------------------------------
# Checkpoint loading
# ---------------------------------------------------------------------------

def dequant_fp8_block(q: torch.Tensor, scale_inv: torch.Tensor, block: int = FP8_BLOCK) -> torch.Tensor:
    """w[i, j] = float(q[i, j]) * scale_inv[i // block, j // block] (edge blocks cropped)."""
    out, inp = q.shape
    rows, cols = (out + block - 1) // block, (inp + block - 1) // block
    if tuple(scale_inv.shape) != (rows, cols):
        raise ValueError(f"scale_inv shape {tuple(scale_inv.shape)} does not match {(rows, cols)} for {tuple(q.shape)}")
    s = scale_inv.float().repeat_interleave(block, 0).repeat_interleave(block, 1)[:out, :inp]
    return q.float() * s


def quant_fp8_block(w: torch.Tensor, block: int = FP8_BLOCK) -> tuple[torch.Tensor, torch.Tensor]:
    """Blockwise E4M3 quantisation: scale_inv = amax(block) / 448, q = fp8(w / scale_inv)."""
    w = w.float()
    out, inp = w.shape
    rows, cols = (out + block - 1) // block, (inp + block - 1) // block
    scale_inv = torch.empty(rows, cols, dtype=torch.float32)
    q = torch.empty(out, inp, dtype=torch.float8_e4m3fn)
    fmax = torch.finfo(torch.float8_e4m3fn).max  # 448
    for r in range(rows):
        for c in range(cols):
            blk = w[r * block:(r + 1) * block, c * block:(c + 1) * block]
            amax = blk.abs().max().clamp(min=1e-12)
            s = (amax / fmax).to(torch.float32)
            scale_inv[r, c] = s
            q[r * block:(r + 1) * block, c * block:(c + 1) * block] = (blk / s).clamp(-fmax, fmax).to(torch.float8_e4m3fn)
    return q, scale_inv


def load_raw_tensors(model_dir: str) -> dict[str, torch.Tensor]:
    """All tensors of the checkpoint as stored (no dtype change)."""
    index = os.path.join(model_dir, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index) as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
    else:
        files = ["model.safetensors"]
    tensors: dict[str, torch.Tensor] = {}
    for fn in files:
        with safe_open(os.path.join(model_dir, fn), framework="pt") as f:
            for k in f.keys():
                tensors[k] = f.get_tensor(k)
    return tensors


def load_f32_state(model_dir: str) -> dict[str, torch.Tensor]:
    """Checkpoint as float32: FP8 dequantised with 128x128 blocks, others upcast.

    `weight_scale_inv` tensors are consumed and not returned.
    """
    raw = load_raw_tensors(model_dir)
    out: dict[str, torch.Tensor] = {}
    for k, t in raw.items():
        if k.endswith(".weight_scale_inv"):
            continue
        if t.dtype == torch.float8_e4m3fn:
            s = raw.get(k + "_scale_inv")
            if s is None:
                raise ValueError(f"FP8 tensor {k} has no {k}_scale_inv")
            out[k] = dequant_fp8_block(t, s)
        else:
            out[k] = t.float()
    return out


# ---------------------------------------------------------------------------
# Config
# ---------------------------------------------------------------------------

@dataclass
class RefConfig:
    vocab_size: int
    dim: int
    inter_dim: int
    moe_inter_dim: int
    n_layers: int
    n_dense_layers: int
    n_heads: int
    n_routed_experts: int
    n_shared_experts: int
    n_activated_experts: int
    n_groups: int
    topk_groups: int
    topk_method: str
    score_func: str
    norm_topk_prob: bool
    route_scale: float
    q_lora_rank: int
    kv_lora_rank: int
    qk_nope_head_dim: int
    qk_rope_head_dim: int
    v_head_dim: int
    rms_norm_eps: float
    rope_theta: float
    max_seq_len: int
    # YaRN (rope_factor 1 means none)
    original_seq_len: int
    rope_factor: float
    beta_fast: float
    beta_slow: float
    mscale: float
    mscale_all_dim: float
    moe_layer_freq: int = 1

    @staticmethod
    def from_hf(cfg: dict) -> "RefConfig":
        rs = cfg.get("rope_scaling") or {}
        yarn = rs.get("type", rs.get("rope_type")) == "yarn"
        return RefConfig(
            vocab_size=cfg["vocab_size"],
            dim=cfg["hidden_size"],
            inter_dim=cfg["intermediate_size"],
            moe_inter_dim=cfg["moe_intermediate_size"],
            n_layers=cfg["num_hidden_layers"],
            n_dense_layers=cfg.get("first_k_dense_replace", 0),
            n_heads=cfg["num_attention_heads"],
            n_routed_experts=cfg["n_routed_experts"],
            n_shared_experts=cfg.get("n_shared_experts") or 0,
            n_activated_experts=cfg["num_experts_per_tok"],
            n_groups=cfg.get("n_group") or 1,
            topk_groups=cfg.get("topk_group") or 1,
            topk_method=cfg.get("topk_method", "greedy"),
            score_func=cfg.get("scoring_func", "softmax"),
            norm_topk_prob=bool(cfg.get("norm_topk_prob", False)),
            route_scale=float(cfg.get("routed_scaling_factor", 1.0)),
            q_lora_rank=cfg.get("q_lora_rank") or 0,
            kv_lora_rank=cfg["kv_lora_rank"],
            qk_nope_head_dim=cfg["qk_nope_head_dim"],
            qk_rope_head_dim=cfg["qk_rope_head_dim"],
            v_head_dim=cfg["v_head_dim"],
            rms_norm_eps=float(cfg.get("rms_norm_eps", 1e-6)),
            rope_theta=float(cfg.get("rope_theta", 10000.0)),
            max_seq_len=cfg["max_position_embeddings"],
            original_seq_len=rs.get("original_max_position_embeddings", cfg["max_position_embeddings"]) if yarn else cfg["max_position_embeddings"],
            rope_factor=float(rs.get("factor", 1.0)) if yarn else 1.0,
            beta_fast=float(rs.get("beta_fast", 32)),
            beta_slow=float(rs.get("beta_slow", 1)),
            mscale=float(rs.get("mscale", 1.0)),
            mscale_all_dim=float(rs.get("mscale_all_dim", 1.0)),
            moe_layer_freq=cfg.get("moe_layer_freq", 1),
        )


# ---------------------------------------------------------------------------
# RoPE (DeepSeek precompute_freqs_cis / apply_rotary_emb)
# ---------------------------------------------------------------------------

def yarn_mscale(factor: float, mscale: float) -> float:
    if factor <= 1:
        return 1.0
    return 0.1 * mscale * math.log(factor) + 1.0


def precompute_freqs_cis(c: RefConfig, seqlen: int) -> torch.Tensor:
    dim, base, factor = c.qk_rope_head_dim, c.rope_theta, c.rope_factor

    def find_correction_dim(num_rotations, dim, base, max_seq_len):
        return dim * math.log(max_seq_len / (num_rotations * 2 * math.pi)) / (2 * math.log(base))

    def find_correction_range(low_rot, high_rot, dim, base, max_seq_len):
        low = math.floor(find_correction_dim(low_rot, dim, base, max_seq_len))
        high = math.ceil(find_correction_dim(high_rot, dim, base, max_seq_len))
        return max(low, 0), min(high, dim - 1)

    def linear_ramp_factor(lo, hi, dim):
        if lo == hi:
            hi += 0.001
        return torch.clamp((torch.arange(dim, dtype=torch.float32) - lo) / (hi - lo), 0, 1)

    freqs = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim))
    attn_factor = 1.0
    if c.max_seq_len > c.original_seq_len and factor > 1:
        low, high = find_correction_range(c.beta_fast, c.beta_slow, dim, base, c.original_seq_len)
        smooth = 1 - linear_ramp_factor(low, high, dim // 2)
        freqs = freqs / factor * (1 - smooth) + freqs * smooth
        # cos/sin magnitude (DeepSeek-V2 YaRN); 1.0 whenever mscale == mscale_all_dim
        attn_factor = yarn_mscale(factor, c.mscale) / yarn_mscale(factor, c.mscale_all_dim)
    t = torch.arange(seqlen, dtype=torch.float32)
    freqs = torch.outer(t, freqs)
    return torch.polar(torch.full_like(freqs, attn_factor), freqs)


def apply_rotary_emb(x: torch.Tensor, freqs_cis: torch.Tensor) -> torch.Tensor:
    """x: [seq, heads, rope_dim], interleaved pairs (x0, x1), (x2, x3), ..."""
    xc = torch.view_as_complex(x.float().reshape(*x.shape[:-1], -1, 2))
    fc = freqs_cis.view(xc.size(0), 1, xc.size(-1))
    return torch.view_as_real(xc * fc).flatten(-2)


# ---------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------

def rms_norm(x: torch.Tensor, w: torch.Tensor, eps: float) -> torch.Tensor:
    x = x.float()
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


class DeepseekReference:
    def __init__(self, model_dir: str, router_convention: str = "deepseek", state: dict | None = None):
        if router_convention not in ROUTER_CONVENTIONS:
            raise ValueError(router_convention)
        with open(os.path.join(model_dir, "config.json")) as f:
            self.hf_config = json.load(f)
        self.c = RefConfig.from_hf(self.hf_config)
        self.w = state if state is not None else load_f32_state(model_dir)
        self.router_convention = router_convention
        c = self.c
        self.qk_head_dim = c.qk_nope_head_dim + c.qk_rope_head_dim
        self.softmax_scale = self.qk_head_dim ** -0.5
        if c.max_seq_len > c.original_seq_len and c.rope_factor > 1:
            m = yarn_mscale(c.rope_factor, c.mscale_all_dim)
            self.softmax_scale = self.softmax_scale * m * m
        self.freqs_cis = precompute_freqs_cis(c, max(c.max_seq_len, 1))
        self.router_stats: list[dict] = []  # filled when record_routing is on
        self.record_routing = False
        # value written into experts of dropped groups before top-k; DeepSeek uses -inf
        # (0 is what some ports use: it differs once biased scores can be negative)
        self.dropped_group_fill = float("-inf")

    # -- helpers --
    def _lin(self, x, name):
        return x @ self.w[name + ".weight"].t()

    def _mlp(self, x, p):
        return self._lin(F.silu(self._lin(x, p + ".gate_proj")) * self._lin(x, p + ".up_proj"), p + ".down_proj")

    def _attn(self, x, p, freqs_cis):
        c = self.c
        T = x.size(0)
        if c.q_lora_rank:
            q = self._lin(rms_norm(self._lin(x, p + ".q_a_proj"), self.w[p + ".q_a_layernorm.weight"], c.rms_norm_eps), p + ".q_b_proj")
        else:
            q = self._lin(x, p + ".q_proj")
        q = q.view(T, c.n_heads, self.qk_head_dim)
        q_nope, q_pe = torch.split(q, [c.qk_nope_head_dim, c.qk_rope_head_dim], dim=-1)
        q_pe = apply_rotary_emb(q_pe, freqs_cis)
        kv = self._lin(x, p + ".kv_a_proj_with_mqa")
        kv, k_pe = torch.split(kv, [c.kv_lora_rank, c.qk_rope_head_dim], dim=-1)
        k_pe = apply_rotary_emb(k_pe.unsqueeze(1), freqs_cis)  # [T, 1, rope]
        q = torch.cat([q_nope, q_pe], dim=-1)
        kv = self._lin(rms_norm(kv, self.w[p + ".kv_a_layernorm.weight"], c.rms_norm_eps), p + ".kv_b_proj")
        kv = kv.view(T, c.n_heads, c.qk_nope_head_dim + c.v_head_dim)
        k_nope, v = torch.split(kv, [c.qk_nope_head_dim, c.v_head_dim], dim=-1)
        k = torch.cat([k_nope, k_pe.expand(-1, c.n_heads, -1)], dim=-1)
        scores = torch.einsum("shd,thd->sht", q, k) * self.softmax_scale
        mask = torch.full((T, T), float("-inf")).triu_(1)
        scores = scores + mask.unsqueeze(1)
        scores = scores.softmax(dim=-1, dtype=torch.float32)
        o = torch.einsum("sht,thd->shd", scores, v)
        return self._lin(o.flatten(1), p + ".o_proj")

    def gate(self, x, p):
        """Returns (weights [T, k], indices [T, k]) following DeepSeek's Gate."""
        c = self.c
        scores = x.float() @ self.w[p + ".gate.weight"].float().t()
        if c.score_func == "softmax":
            scores = scores.softmax(dim=-1, dtype=torch.float32)
        elif c.score_func == "sigmoid":
            scores = scores.sigmoid()
        else:
            raise ValueError(c.score_func)
        original_scores = scores
        bias = self.w.get(p + ".gate.e_score_correction_bias")
        if c.topk_method == "noaux_tc" and bias is None:
            raise ValueError(f"{p}: noaux_tc without e_score_correction_bias")
        if bias is not None:
            scores = scores + bias.float()
        group_margin = None
        if c.n_groups > 1:
            scores = scores.view(x.size(0), c.n_groups, -1)
            if bias is None:
                group_scores = scores.amax(dim=-1)
            else:
                group_scores = scores.topk(2, dim=-1)[0].sum(dim=-1)
            gs = group_scores.sort(dim=-1, descending=True)[0]
            group_margin = (gs[:, c.topk_groups - 1] - gs[:, c.topk_groups]).min().item()
            idx = group_scores.topk(c.topk_groups, dim=-1)[1]
            mask = scores.new_ones(x.size(0), c.n_groups, dtype=torch.bool).scatter_(1, idx, False)
            scores = scores.masked_fill(mask.unsqueeze(-1), self.dropped_group_fill).flatten(1)
        srt = scores.sort(dim=-1, descending=True)[0]
        k = c.n_activated_experts
        expert_margin = (srt[:, k - 1] - srt[:, k]).min().item()
        indices = torch.topk(scores, k, dim=-1)[1]
        weights = original_scores.gather(1, indices)
        conv = self.router_convention
        normalise = c.score_func == "sigmoid" or c.norm_topk_prob
        if conv == "hf_v2" and c.score_func == "softmax":
            normalise = False
        if normalise:
            weights = weights / weights.sum(dim=-1, keepdim=True)
        if not (conv == "v2_remote" and normalise and c.score_func == "softmax"):
            weights = weights * c.route_scale
        if self.record_routing:
            self.router_stats.append({
                "layer": p,
                "indices": indices.clone(),
                "expert_margin": expert_margin,
                "group_margin": group_margin,
                "min_selected_biased_score": scores.gather(1, indices).min().item(),
                "any_negative_biased_score": bool((original_scores + (bias if bias is not None else 0)).lt(0).any()),
            })
        return weights, indices

    def _moe(self, x, p):
        c = self.c
        weights, indices = self.gate(x, p)
        y = torch.zeros_like(x)
        for e in range(c.n_routed_experts):
            tok, slot = torch.where(indices == e)
            if tok.numel() == 0:
                continue
            y[tok] += self._mlp(x[tok], f"{p}.experts.{e}") * weights[tok, slot, None]
        z = self._mlp(x, p + ".shared_experts") if c.n_shared_experts else 0
        return y + z

    def _is_moe(self, i):
        c = self.c
        return c.n_routed_experts and i >= c.n_dense_layers and i % c.moe_layer_freq == 0

    def block(self, h, i, freqs_cis):
        c = self.c
        p = f"model.layers.{i}"
        h = h + self._attn(rms_norm(h, self.w[p + ".input_layernorm.weight"], c.rms_norm_eps), p + ".self_attn", freqs_cis)
        x = rms_norm(h, self.w[p + ".post_attention_layernorm.weight"], c.rms_norm_eps)
        h = h + (self._moe(x, p + ".mlp") if self._is_moe(i) else self._mlp(x, p + ".mlp"))
        return h

    @torch.no_grad()
    def forward(self, tokens: list[int] | torch.Tensor) -> torch.Tensor:
        """Full causal forward over one sequence; returns logits [T, vocab] (float32)."""
        c = self.c
        tokens = torch.as_tensor(tokens, dtype=torch.long)
        T = tokens.numel()
        if T > self.freqs_cis.size(0):
            raise ValueError("sequence longer than max_position_embeddings")
        freqs_cis = self.freqs_cis[:T]
        h = self.w["model.embed_tokens.weight"][tokens]
        for i in range(c.n_layers):
            h = self.block(h, i, freqs_cis)
        h = rms_norm(h, self.w["model.norm.weight"], c.rms_norm_eps)
        return h @ self.w["lm_head.weight"].t()

    @torch.no_grad()
    def greedy(self, prompt: list[int], n: int) -> list[int]:
        """Greedy decoding by full recompute (no KV cache)."""
        seq = list(prompt)
        out = []
        for _ in range(n):
            nxt = int(self.forward(seq)[-1].argmax())
            out.append(nxt)
            seq.append(nxt)
        return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model_dir")
    ap.add_argument("--prompt", required=True, help="comma-separated token ids")
    ap.add_argument("--greedy", type=int, default=0, help="number of greedy tokens to decode")
    ap.add_argument("--router", default="deepseek", choices=ROUTER_CONVENTIONS)
    a = ap.parse_args()
    ids = [int(t) for t in a.prompt.split(",")]
    m = DeepseekReference(a.model_dir, router_convention=a.router)
    logits = m.forward(ids)
    print("last logits top5:", logits[-1].topk(5))
    if a.greedy:
        print("greedy:", m.greedy(ids, a.greedy))


if __name__ == "__main__":
    main()
