#!/usr/bin/env python3
"""Tokenizer fixtures for the DeepSeek-R1 distills (Qwen2 and Llama-3 tokenizer.json layouts).

The distills ship HF tokenizer.json files whose pipelines differ from DeepSeek-V3's:
  R1-Distill-Qwen:  normalizer NFC; pre-tokenizer Sequence[Split(Qwen2 regex, Isolated),
                    ByteLevel(add_prefix_space=false, use_regex=false)]; ByteLevel decoder; BPE.
  R1-Distill-Llama: no normalizer; Sequence[Split(Llama-3 regex, Isolated), ByteLevel(...)];
                    ByteLevel decoder; BPE with ignore_merges=true.
This tool trains a small byte-level BPE with the `tokenizers` library on the multilingual corpus
(tests/fixtures/tokenizer/corpus.json), builds each layout with exactly those components, adds
the distills' special tokens, and writes tests/fixtures/tokenizer/distill/<name>/:
    tokenizer.json, tokenizer_config.json (DeepSeek-R1's chat template, as the distills ship it)
    cases.json: encode ids (HF encode(text, add_special_tokens=False)) and decode texts
Deterministic; rerun rewrites identical files.

    python3 tools/gen_distill_tokenizer_fixtures.py
"""

from __future__ import annotations

import json
import os

import tokenizers
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIX = os.path.join(ROOT, "tests", "fixtures", "tokenizer")
OUT = os.path.join(FIX, "distill")

QWEN2_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|"
                 r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
                  r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")

TOTAL = 500  # ids, added tokens included

# The distills' added tokens (content, special) after the BPE vocabulary.
SPECIALS = [("<｜begin▁of▁sentence｜>", True), ("<｜end▁of▁sentence｜>", True),
            ("<｜User｜>", False), ("<｜Assistant｜>", False), ("<think>", False),
            ("</think>", False), ("<｜▁pad▁｜>", True)]

# Texts where the two layouts differ from V3's or from each other: NFC (decomposed accents,
# Hangul jamo, Å as A + ring), digit runs (\p{N} vs \p{N}{1,3}), case-insensitive contractions,
# whitespace runs, special tokens inside text.
EXTRA = [
    "Cafe\u0301 re\u0301sume\u0301 na\u00efve \u212b \u0041\u030a \u1100\u1161\u11a8 \ud55c\uad6d\uc5b4",
    "热线电话 12345 和 1234567890，订单号 00042。",
    "DON'T you THINK it's fine? We'LL see, I'M sure they'D agree. You'VE 'S 'T",
    "line one\n\n\nline two\r\n  indented\t\ttabs   trailing   ",
    "<｜User｜>请问如何办理居住证？<｜Assistant｜><think>\n先查政策。\n</think>\n答案如下。<｜end▁of▁sentence｜>",
    "emoji 👩‍👩‍👧 🇨🇳 ﬁ ① ½ ²",
    "Привет, мир! Ελληνικά. العربية. हिन्दी. ไทย.",
    "   leading spaces and <think>inline</think> tags",
    "price: $3,999.99 (≈ ¥28,000) — 50% off!!!",
]


def corpus() -> list[str]:
    with open(os.path.join(FIX, "corpus.json"), encoding="utf-8") as f:
        sections = json.load(f)["sections"]
    return [t for s in sections for t in s["texts"]]


def train(pattern: str, normalizer, ignore_merges: bool, trim_offsets: bool, vocab_size: int,
          texts: list[str]) -> Tokenizer:
    tok = Tokenizer(models.BPE(ignore_merges=ignore_merges))
    if normalizer is not None:
        tok.normalizer = normalizer
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(pattern), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=trim_offsets, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer=trainer)
    return tok


def with_whole_words(tok: Tokenizer, words: list[str]) -> Tokenizer:
    """Adds vocabulary entries that no merge builds (only ignore_merges emits them whole)."""
    spec = json.loads(tok.to_str())
    vocab = spec["model"]["vocab"]
    bl = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    for w in words:
        (piece, _), = bl.pre_tokenize_str(w)
        if piece not in vocab:
            vocab[piece] = len(vocab)
    return Tokenizer.from_str(json.dumps(spec))


def add_specials(tok: Tokenizer) -> None:
    tok.add_tokens([tokenizers.AddedToken(c, special=s, normalized=False) for c, s in SPECIALS
                    if not s])
    tok.add_special_tokens([tokenizers.AddedToken(c, special=True, normalized=False)
                            for c, s in SPECIALS if s])


def chat_template() -> str:
    with open(os.path.join(ROOT, "tests", "fixtures", "chat", "deepseek-r1_tokenizer_config.json"),
              encoding="utf-8") as f:
        return json.load(f)["chat_template"]


def write(name: str, tok: Tokenizer, texts: list[str]) -> None:
    d = os.path.join(OUT, name)
    os.makedirs(d, exist_ok=True)
    spec = json.loads(tok.to_str())
    with open(os.path.join(d, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(spec, f, ensure_ascii=False, indent=1)
        f.write("\n")
    config = {"add_bos_token": True, "add_eos_token": False,
              "bos_token": SPECIALS[0][0], "eos_token": SPECIALS[1][0],
              "clean_up_tokenization_spaces": False, "legacy": True,
              "model_max_length": 16384, "pad_token": SPECIALS[1][0],
              "tokenizer_class": "LlamaTokenizerFast", "chat_template": chat_template()}
    with open(os.path.join(d, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(config, f, ensure_ascii=False, indent=1)
        f.write("\n")
    encode = [{"text": t, "ids": tok.encode(t, add_special_tokens=False).ids} for t in texts]
    vocab = tok.get_vocab_size(with_added_tokens=True)
    decode = []
    for t in texts:
        ids = tok.encode(t, add_special_tokens=False).ids
        decode.append({"ids": ids, "text": tok.decode(ids, skip_special_tokens=False),
                       "text_skip_special": tok.decode(ids, skip_special_tokens=True)})
    cases = {"source": f"tokenizers {tokenizers.__version__}", "vocab_size": vocab,
             "encode": encode, "decode": decode}
    with open(os.path.join(d, "cases.json"), "w", encoding="utf-8") as f:
        json.dump(cases, f, ensure_ascii=False, indent=0)
        f.write("\n")


def main() -> None:
    texts = corpus()
    cases = texts[::3] + EXTRA
    # 500 ids in all, the vocabulary of the dense model fixtures (gen_dense_goldens.py), so a
    # fixture model directory can carry these tokenizers (tests/cli_test.cc).
    qwen = train(QWEN2_PATTERN, normalizers.NFC(), False, False, TOTAL - len(SPECIALS), texts + EXTRA)
    add_specials(qwen)
    write("qwen2", qwen, cases)
    # Whole words for ignore_merges: pieces that exist in the vocabulary but no merge forms.
    whole = [" hotline", "热线电话", " THINK", "123"]
    base = TOTAL - len(SPECIALS)
    llama = with_whole_words(train(LLAMA3_PATTERN, None, True, True, base - len(whole),
                                   texts + EXTRA), whole)
    if llama.get_vocab_size() != base:  # a whole word the training had made already
        llama = with_whole_words(train(LLAMA3_PATTERN, None, True, True,
                                       2 * base - len(whole) - llama.get_vocab_size(),
                                       texts + EXTRA), whole)
    add_specials(llama)
    write("llama3", llama, cases + ["call the hotline 热线电话 123 THINK"])
    for n, t in (("qwen2", qwen), ("llama3", llama)):
        assert t.get_vocab_size(with_added_tokens=True) == TOTAL, (n, t.get_vocab_size(with_added_tokens=True))
    for n in ("qwen2", "llama3"):
        size = sum(os.path.getsize(os.path.join(OUT, n, f)) for f in os.listdir(os.path.join(OUT, n)))
        print(f"{n}: {size / 1e3:.0f} kB")


if __name__ == "__main__":
    main()
