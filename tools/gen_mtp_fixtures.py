#!/usr/bin/env python3
"""MTP (multi-token prediction) fixtures and goldens, float32.

Builds tests/fixtures/models/mtp_v2_lite and mtp_v3_fp8 from the v2_lite_bf16 and v3_fp8
fixtures, with an MTP module whose drafts the main model mostly accepts, so speculative decoding's
accept, reject and roll-back paths all run:

- Main model: the source fixture with every layer's output projections (o_proj and the MLP /
  expert / shared-expert down_proj) scaled by ALPHA (a power of two: exact in bf16, and for FP8
  weights applied to weight_scale_inv, so the codes stay). The residual stream then stays close
  to the token's embedding and the next token depends mostly, not only, on the current one.
- MTP module (DeepSeek-V3 checkpoint layout, model.layers.<num_hidden_layers>.*): enorm and hnorm
  ones, eh_proj = [I | EPS * R] (the embedding of token i+1 passes, the hidden state h_i adds a
  little), its decoder block a copy of the last main layer, shared_head.norm = model.norm.
  mtp_v3_fp8 stores shared_head.head (= lm_head) and embed_tokens as the release does;
  mtp_v2_lite stores neither (the MTP head falls back to the main lm_head).

The golden is the MTP forward written from DeepSeek-V3's design (paper, section 2.2: depth 1,
h'_i = M[RMSNorm(h_i); RMSNorm(Emb(t_{i+1}))], its own Transformer block, the shared output
head), with h_i the main model's final normed hidden state as vLLM and SGLang feed the released
layer, over tools/deepseek_reference.py's float32 blocks (FP8 dequantised with DeepSeek's
128x128 rule). Row i of the MTP logits predicts token i+2 from tokens 0..i+1.

    python3 tools/gen_mtp_fixtures.py            # both fixtures
    python3 tools/gen_mtp_fixtures.py --chain    # only golden_mtp_chain.* (k = 3 chained drafts)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil

import torch
from safetensors.torch import save_file

from deepseek_reference import DeepseekReference, load_f32_state, load_raw_tensors, rms_norm

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "tests", "fixtures", "models")
SOURCES = {"mtp_v2_lite": "v2_lite_bf16", "mtp_v3_fp8": "v3_fp8"}
ALPHA = 0.25
EPS = 0.05
PROMPT_LEN = 10
GREEDY_NEW = 24


def scaled_main(raw: dict[str, torch.Tensor], n_layers: int) -> dict[str, torch.Tensor]:
    out = {}
    for k, t in raw.items():
        parts = k.split(".")
        if k.startswith("model.layers.") and int(parts[2]) >= n_layers:
            continue  # the source's MTP layer is replaced
        out[k] = t
    for k in list(out):
        if not k.startswith("model.layers.") or not (k.endswith("o_proj.weight") or k.endswith("down_proj.weight")):
            continue
        if k + "_scale_inv" in out:
            out[k + "_scale_inv"] = out[k + "_scale_inv"] * ALPHA
        else:
            out[k] = (out[k].float() * ALPHA).to(out[k].dtype)
    return out


def add_mtp(w: dict[str, torch.Tensor], cfg: dict, with_head: bool, seed: int) -> None:
    L, d = cfg["num_hidden_layers"], cfg["hidden_size"]
    src, dst = f"model.layers.{L - 1}.", f"model.layers.{L}."
    for k in [k for k in w if k.startswith(src)]:
        w[dst + k[len(src):]] = w[k].clone()
    g = torch.Generator().manual_seed(seed)
    eh = torch.cat([torch.eye(d), EPS * torch.randn(d, d, generator=g) / d ** 0.5], dim=1)
    w[dst + "eh_proj.weight"] = eh.to(torch.bfloat16)
    w[dst + "enorm.weight"] = torch.ones(d, dtype=torch.bfloat16)
    w[dst + "hnorm.weight"] = torch.ones(d, dtype=torch.bfloat16)
    w[dst + "shared_head.norm.weight"] = w["model.norm.weight"].clone()
    if with_head:
        w[dst + "shared_head.head.weight"] = w["lm_head.weight"].clone()
        w[dst + "embed_tokens.weight"] = w["model.embed_tokens.weight"].clone()


class MtpReference:
    """Main model plus its MTP module in float32."""

    def __init__(self, model_dir: str):
        self.ref = DeepseekReference(model_dir, state=load_f32_state(model_dir))
        self.w = self.ref.w
        self.L = self.ref.c.n_layers
        self.eps = self.ref.c.rms_norm_eps

    @torch.no_grad()
    def forward(self, tokens: list[int], next_tokens: list[int]):
        """Main logits [T, V] and MTP logits [T, V]; MTP row i pairs h_i with next_tokens[i]."""
        w, T = self.w, len(tokens)
        freqs = self.ref.freqs_cis[:T]
        h = w["model.embed_tokens.weight"][torch.as_tensor(tokens)]
        for i in range(self.L):
            h = self.ref.block(h, i, freqs)
        hn = rms_norm(h, w["model.norm.weight"], self.eps)
        logits = hn @ w["lm_head.weight"].t()
        p = f"model.layers.{self.L}."
        e = w["model.embed_tokens.weight"][torch.as_tensor(next_tokens)]
        x = torch.cat([rms_norm(e, w[p + "enorm.weight"], self.eps),
                       rms_norm(hn, w[p + "hnorm.weight"], self.eps)], dim=-1) @ w[p + "eh_proj.weight"].t()
        x = self.ref.block(x, self.L, freqs)
        head = w.get(p + "shared_head.head.weight", w["lm_head.weight"])
        mtp = rms_norm(x, w[p + "shared_head.norm.weight"], self.eps) @ head.t()
        return logits, mtp


    @torch.no_grad()
    def chain(self, prompt: list[int], k: int):
        """Chained drafts after the prompt's greedy token g0 (DeepSeek-V3's sequential MTP with
        the one layer reused, the MTP state fed back after shared_head.norm as SGLang's NextN
        worker does): round 1 is the MTP row of the prompt's last position (pairing its final
        normed hidden state with g0); round j > 1 appends a row at the next position pairing
        round j-1's normed output with its draft. Returns g0, the drafts, logits [k, V]."""
        w, P, L = self.w, len(prompt), self.L
        p = f"model.layers.{L}."
        freqs = self.ref.freqs_cis[:P + k]
        h = w["model.embed_tokens.weight"][torch.as_tensor(prompt)]
        for i in range(L):
            h = self.ref.block(h, i, freqs[:P])
        hn = rms_norm(h, w["model.norm.weight"], self.eps)
        g0 = int((hn[-1] @ w["lm_head.weight"].t()).argmax())
        head = w.get(p + "shared_head.head.weight", w["lm_head.weight"])

        def rows(ids, states):
            e = w["model.embed_tokens.weight"][torch.as_tensor(ids)]
            return torch.cat([rms_norm(e, w[p + "enorm.weight"], self.eps),
                              rms_norm(states, w[p + "hnorm.weight"], self.eps)], dim=-1) @ w[p + "eh_proj.weight"].t()

        x_in = rows(prompt[1:] + [g0], hn)
        drafts, out = [], []
        for j in range(k):
            if j > 0:
                x_in = torch.cat([x_in, rows([drafts[-1]], s)])
            x = self.ref.block(x_in, L, freqs[:P + j])
            s = rms_norm(x[-1:], w[p + "shared_head.norm.weight"], self.eps)
            lg = (s @ head.t())[0]
            out.append(lg)
            drafts.append(int(lg.argmax()))
        return g0, drafts, torch.stack(out)


CHAIN_K = 3


def build_chain(name: str) -> None:
    """golden_mtp_chain.*: the chained drafts of the existing fixture's golden prompt."""
    dst = os.path.join(FIXTURES, name)
    with open(os.path.join(dst, "golden_mtp.json")) as f:
        prompt = json.load(f)["prompt"]
    g0, drafts, logits = MtpReference(dst).chain(prompt, CHAIN_K)
    save_file({"chain_logits": logits.contiguous()}, os.path.join(dst, "golden_mtp_chain.safetensors"))
    with open(os.path.join(dst, "golden_mtp_chain.json"), "w") as f:
        json.dump({"prompt": prompt, "g0": g0, "drafts": drafts,
                   "note": "tools/gen_mtp_fixtures.py --chain: MTP logits of k chained draft rounds"},
                  f, indent=1)
    for fn in ("golden_mtp_chain.safetensors", "golden_mtp_chain.json"):
        os.chmod(os.path.join(dst, fn), 0o644)
    print(f"{name}: g0 {g0}, chained drafts {drafts}")


def build(name: str) -> None:
    src = os.path.join(FIXTURES, SOURCES[name])
    dst = os.path.join(FIXTURES, name)
    with open(os.path.join(src, "config.json")) as f:
        cfg = json.load(f)
    cfg["num_nextn_predict_layers"] = 1
    raw = load_raw_tensors(src)
    w = scaled_main(raw, cfg["num_hidden_layers"])
    add_mtp(w, cfg, with_head=name == "mtp_v3_fp8", seed=len(name))
    shutil.rmtree(dst, ignore_errors=True)
    os.makedirs(dst)
    with open(os.path.join(dst, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    save_file({k: v.contiguous() for k, v in sorted(w.items())}, os.path.join(dst, "model.safetensors"),
              metadata={"format": "pt"})

    m = MtpReference(dst)
    V = cfg["vocab_size"]
    g = torch.Generator().manual_seed(1234)
    ids = torch.randint(2, V, (PROMPT_LEN + 1,), generator=g).tolist()
    prompt, nxt = ids[:PROMPT_LEN], ids[1:]
    logits, mtp = m.forward(prompt, nxt)
    # Greedy continuation of the main model (full recompute).
    seq, greedy = list(prompt), []
    for _ in range(GREEDY_NEW):
        tok = int(m.forward(seq, seq[1:] + [0])[0][-1].argmax())
        greedy.append(tok)
        seq.append(tok)
    # Acceptance: MTP row t (pairing h_t with token t+1) vs the greedy token t+2.
    full = prompt + greedy
    _, mt = m.forward(full[:-1], full[1:])
    n0 = len(prompt) - 1
    accept = sum(int(mt[t].argmax()) == full[t + 2] for t in range(n0, len(full) - 2))
    rate = accept / (len(full) - 2 - n0)
    save_file({"logits": logits.contiguous(), "mtp_logits": mtp.contiguous()},
              os.path.join(dst, "golden_mtp.safetensors"))
    with open(os.path.join(dst, "golden_mtp.json"), "w") as f:
        json.dump({"source": SOURCES[name], "alpha": ALPHA, "eps": EPS, "prompt": prompt,
                   "next_ids": nxt, "greedy": greedy, "greedy_mtp_acceptance": round(rate, 4),
                   "note": "tools/gen_mtp_fixtures.py; float32 MTP forward from DeepSeek-V3's design"},
                  f, indent=1)
    for fn in os.listdir(dst):
        os.chmod(os.path.join(dst, fn), 0o644)
    print(f"{name}: greedy {greedy[:8]}... MTP acceptance on the greedy path {rate:.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="*", default=list(SOURCES))
    ap.add_argument("--chain", action="store_true",
                    help="only the chained-draft golden of the existing fixtures")
    args = ap.parse_args()
    for name in args.names:
        if not args.chain:
            build(name)
        build_chain(name)


if __name__ == "__main__":
    main()
