#!/usr/bin/env python3
"""Kimi-K2 (tiktoken format) tokenizer fixtures for tests/tokenizer_kimi_test.cc.

The real Kimi-K2 `tiktoken.model` (163,584 ranks) is not in this repository, so this tool trains a
small byte-level BPE vocabulary in the same file format on a multilingual corpus, writes it with a
Kimi-style `tokenizer_config.json`, and records what the PyPI `tiktoken` package does with it:

  tests/fixtures/tokenizer/kimi/tiktoken.model          "base64(token bytes) rank" per line
  tests/fixtures/tokenizer/kimi/tokenizer_config.json   added_tokens_decoder, bos/eos, chat_template
  tests/fixtures/tokenizer/kimi/cases.json              expected ids / texts from tiktoken
  tests/fixtures/tokenizer/kimi/unicode_classes.json    code points of each regex class, as
                                                        tiktoken's regex engine matches them
  src/tokenizer/kimi_unicode.inc                        Han ranges and the code points PCRE2
                                                        10.42 (Unicode 14) must add to \\p{..}

Needs: tiktoken (PyPI), regex (a tiktoken dependency), jinja2, and Python 3.11 (its unicodedata
is Unicode 14.0, the tables of PCRE2 10.42). Deterministic: a rerun writes identical files.

    nice -n 19 python3 tools/gen_kimi_tokenizer_fixture.py
"""

import base64
import collections
import importlib
import json
import os
import random
import sys
import types
import unicodedata

import jinja2
import regex
import tiktoken

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_DIR = os.path.join(ROOT, "tests/fixtures/tokenizer/kimi")
INC_PATH = os.path.join(ROOT, "src/tokenizer/kimi_unicode.inc")

# Kimi-K2's pre-tokenizer (TikTokenTokenizer.pat_str in tokenization_kimi.py), in the Rust
# `regex`/`fancy-regex` syntax tiktoken compiles: `&&` intersects character classes.
KIMI_PAT = "|".join([
    r"""[\p{Han}]+""",
    r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}&&[^\p{Han}]]*[\p{Ll}\p{Lm}\p{Lo}\p{M}&&[^\p{Han}]]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
    r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}&&[^\p{Han}]]+[\p{Ll}\p{Lm}\p{Lo}\p{M}&&[^\p{Han}]]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
    r"""\p{N}{1,3}""",
    r""" ?[^\s\p{L}\p{N}]+[\r\n]*""",
    r"""\s*[\r\n]+""",
    r"""\s+(?!\S)""",
    r"""\s+""",
])

# The character classes the pattern is built from (see tiktoken_model.cc). Every class in
# KIMI_PAT is one of these or a negation/union of them and literals.
CLASSES = {
    "han": r"[\p{Han}]",
    "upper": r"[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}&&[^\p{Han}]]",
    "lower": r"[\p{Ll}\p{Lm}\p{Lo}\p{M}&&[^\p{Han}]]",
    "letter": r"\p{L}",
    "number": r"\p{N}",
    "space": r"\s",
}

NUM_RESERVED_SPECIAL_TOKENS = 256  # tokenization_kimi.py
# Kimi-K2's named special tokens, by offset from the first special id (163584 in the real model).
KIMI_SPECIALS = {
    0: "[BOS]", 1: "[EOS]", 2: "<|im_end|>", 3: "<|im_user|>", 4: "<|im_assistant|>",
    6: "<|start_header_id|>", 7: "<|end_header_id|>", 9: "[EOT]", 10: "<|im_system|>",
    11: "<|tool_calls_section_begin|>", 12: "<|tool_calls_section_end|>",
    13: "<|tool_call_begin|>", 14: "<|tool_call_argument_begin|>", 15: "<|tool_call_end|>",
    17: "<|im_middle|>", 254: "[UNK]", 255: "[PAD]",
}

# The text-message part of Kimi-K2-Instruct(-0905)'s chat_template.jinja, as rendered by HF
# (trim_blocks, lstrip_blocks). Used here only to produce the expected chat ids.
KIMI_CHAT_TEMPLATE = (
    "{%- for message in messages -%}\n"
    "  {%- if loop.first and messages[0]['role'] != 'system' -%}\n"
    "    <|im_system|>system<|im_middle|>You are Kimi, an AI assistant created by Moonshot AI.<|im_end|>\n"
    "  {%- endif -%}\n"
    "  {%- set role_name = message.get('name') or message['role'] -%}\n"
    "  {%- if message['role'] == 'user' -%}\n"
    "    <|im_user|>{{role_name}}<|im_middle|>\n"
    "  {%- elif message['role'] == 'assistant' -%}\n"
    "    <|im_assistant|>{{role_name}}<|im_middle|>\n"
    "  {%- else -%}\n"
    "    <|im_system|>{{role_name}}<|im_middle|>\n"
    "  {%- endif -%}\n"
    "  {%- if message['content'] is string -%}\n"
    "    {{ message['content'] }}\n"
    "  {%- endif -%}\n"
    "  {% if (loop.last and add_generation_prompt) or not loop.last %}<|im_end|>{% endif %}\n"
    "{%- endfor -%}\n"
    "{%- if add_generation_prompt -%}\n"
    "  <|im_assistant|>assistant<|im_middle|>\n"
    "{%- endif -%}"
)


def project_corpus():
    """The DeepSeek fixture corpus of tools/gen_tokenizer_fixtures.py (multilingual public-service
    text, code, edge cases). That module imports `tokenizers` at the top, which is not needed for
    its corpus; a placeholder module lets it import where `tokenizers` is not installed."""
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    if importlib.util.find_spec("tokenizers") is None:
        stub = types.ModuleType("tokenizers")
        stub.Regex = stub.Tokenizer = stub.pre_tokenizers = None
        sys.modules["tokenizers"] = stub
    mod = importlib.import_module("gen_tokenizer_fixtures")
    sections = [(name, list(texts)) for name, texts in mod.corpus_sections()]
    return sections, mod.CHATS


KIMI_EXTRA = [
    # Han next to other scripts: the Han-aware first branch splits there.
    "政务服务App上线了，请下载Kimi版本v2.0使用。",
    "你好world世界Hello中文English混合测试ABC中DEF",
    "北京市12345热线：2024年共受理诉求1,234,567件，同比增长3.5%。",
    "〇〡〢〸〹〺 々〻 Han numerals and marks; 。，、；：？！ are not Han",
    "Vietnamese alternate reading marks \U00016ff0\U00016ff1 after 字\U00016ff0",
    "CJK Ext H \U00031350\U00031351 Ext I \U0002ebf0\U0002ebf1 Ext B \U00020000\U0002a6d6",
    "Compatibility 豈更車 radicals ⺀⺁⻳ ⼀⼁⿕",
    # Contractions, including case-folding variants of the (?i:...) group.
    "I'm sure it's fine, they're here, we've done it, you'll see, he'd know, don't.",
    "I'M SURE IT'S FINE, THEY'RE HERE, WE'VE DONE IT, YOU'LL SEE, HE'D KNOW, DON'T.",
    "long s: it'ſ, KELVIN: it'K, ſ alone, 'ſ, Straße'S",
    "CamelCaseWordsAndXMLHttpRequest iPhone eBay McDonald's O'Neil",
    "ǅungla ǈudevit titlecase ǲ Ǆ ǅ ǆ",
    "Greek ΣΊΣΥΦΟΣ σίσυφος, Cyrillic ПРИВЕТ привет, Armenian Բարեւ",
    # Numbers in groups of three, in several scripts.
    "12345678901 ١٢٣٤٥٦٧ ０１２３４５６ ①②③④ ⅫⅬ 𝟘𝟙𝟚𝟛 ༡༢༣༤",
    # Whitespace runs: \s+(?!\S) leaves the last space to the next word.
    "a  b   c    d\t\te\u3000\u3000f\u00a0\u00a0g\u2009\u2009h",
    "end with spaces    ",
    "\n\n  \n\t\n   x",
    "  \u0085\u0085 x",
    # Special-token text (recognised by Encode, plain text for EncodePlain).
    "<|im_user|>user<|im_middle|>你好<|im_end|><|im_assistant|>assistant<|im_middle|>",
    "[BOS]text[EOS] [UNK] [PAD] [EOT] <|reserved_token_5|> <|reserved_token_999999|>",
    "<|im_end|<|im_end|>|> <|IM_END|> < |im_end| > <|im_end",
    "<|tool_calls_section_begin|><|tool_call_begin|>functions.get_weather:0"
    "<|tool_call_argument_begin|>{\"city\": \"北京\"}<|tool_call_end|><|tool_calls_section_end|>",
    # Unusual Unicode.
    "noncharacters \ufdd0\ufffe\uffff\U0001fffe\U0010ffff private \ue000\U000f0000",
    "unassigned \u0378\u0379 \U000e0080 \U0001ffff",
    "tags \U000e0041\U000e0062 variation \ufe0f\ufe0e \U000e0100 ZWJ\u200dZWNJ\u200c",
    "lone combining \u0301\u0302 at start; Tibetan stacks བསྒྲུབས་ Mongolian ᠮᠣᠩᠭᠣᠯ᠋ ᠠ᠎ᠠ",
    "Uyghur ئۇيغۇر تىلى، 2024-يىلى ۋە Kazakh Арабша",
    "RTL mark \u200fעברית\u200e and Arabic tatweel عـــربي",
    "Math 𝐀𝐁𝐂 𝑎𝑏𝑐 ∀x∈ℝ: x²≥0 ∑∫∂√∞",
    "emoji 🧑‍🤝‍🧑🏽 🇨🇳 ❤️‍🔥 😀" * 3,
    "x" * 1000,
    "中" * 500 + "a" * 500 + " " * 500 + "1" * 500,
]


def kimi_regex():
    # Python's `regex` module reads `&&` as class intersection in VERSION1 mode; good enough to
    # pre-split the training corpus (exactness is only needed in tiktoken, which is the oracle).
    return regex.compile("(?V1)" + KIMI_PAT)


def byte_order():
    """Single-byte ranks in GPT-2's byte-level order (printable bytes first), like real tiktoken
    rank files, so that a reader cannot assume rank == byte value."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + \
        list(range(0xAE, 0x100))
    return printable + [b for b in range(256) if b not in printable]


def train_bpe(texts, num_merges):
    """Plain byte-level BPE: count the pre-tokenized words, repeatedly merge the most frequent
    adjacent pair (ties: smallest pair bytes), each merge becoming the next rank."""
    pat = kimi_regex()
    words = collections.Counter()
    for t in texts:
        for w in pat.findall(t):
            words[w.encode("utf-8")] += 1
    ranks = {bytes([b]): i for i, b in enumerate(byte_order())}
    split = {w: [bytes([c]) for c in w] for w in words}
    for _ in range(num_merges):
        pairs = collections.Counter()
        for w, n in words.items():
            s = split[w]
            for a, b in zip(s, s[1:]):
                pairs[(a, b)] += n
        if not pairs:
            break
        best = min(pairs, key=lambda p: (-pairs[p], p))
        if pairs[best] < 2:
            break
        merged = best[0] + best[1]
        ranks[merged] = len(ranks)
        for w, s in split.items():
            i, out = 0, []
            while i < len(s):
                if i + 1 < len(s) and s[i] == best[0] and s[i + 1] == best[1]:
                    out.append(merged)
                    i += 2
                else:
                    out.append(s[i])
                    i += 1
            split[w] = out
    return ranks, words


def add_unreachable(ranks, words, count):
    """Adds frequent words that BPE cannot build (no split into two tokens): tiktoken still
    emits them whole because it looks a piece up before merging."""
    added = []
    for w, _ in sorted(words.items(), key=lambda kv: (-kv[1], kv[0])):
        if len(w) < 4 or w in ranks:
            continue
        if any(w[:k] in ranks and w[k:] in ranks for k in range(1, len(w))):
            continue
        try:
            w.decode("utf-8")
        except UnicodeDecodeError:
            continue
        ranks[w] = len(ranks)
        added.append(w)
        if len(added) == count:
            break
    return added


def adversarial_ranks(rng, words, count):
    """A vocabulary no BPE training would make: random byte slices of corpus words (cut anywhere,
    even inside a character) and concatenations of two tokens, all ranks shuffled (single bytes
    included). Many tokens have several two-token splits and many cannot be built by merges, which
    exercises tiktoken's exact rules: rank of the concatenation, leftmost on ties, whole-piece
    lookup first."""
    toks = [bytes([b]) for b in range(256)]
    seen = set(toks)
    words = sorted(w for w in words if len(w) >= 2)
    while len(toks) < count:
        if rng.random() < 0.5:
            w = rng.choice(words)
            i = rng.randrange(len(w) - 1)
            t = w[i:i + rng.randint(2, 8)]
        else:
            t = rng.choice(toks) + rng.choice(toks)
        if len(t) >= 2 and t not in seen:
            seen.add(t)
            toks.append(t)
    rng.shuffle(toks)
    return {t: i for i, t in enumerate(toks)}


def encoding(ranks, specials):
    return tiktoken.Encoding("kimi-fixture", pat_str=KIMI_PAT, mergeable_ranks=ranks,
                             special_tokens=specials)


def class_members(pattern):
    """Code points (no surrogates) matched by `pattern` in tiktoken's own regex engine: with only
    byte tokens, encode_ordinary returns the bytes of the matches and drops everything else."""
    enc = tiktoken.Encoding("probe", pat_str=pattern,
                            mergeable_ranks={bytes([b]): b for b in range(256)},
                            special_tokens={})
    text = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF)
    return {ord(ch) for ch in enc.decode_bytes(enc.encode_ordinary(text)).decode("utf-8")}


def ranges(code_points):
    out = []
    for c in sorted(code_points):
        if out and out[-1][1] == c - 1:
            out[-1][1] = c
        else:
            out.append([c, c])
    return out


def u14(prefixes):
    """Code points whose Unicode 14 general category starts with one of `prefixes`: what PCRE2
    10.42's \\p{..} matches."""
    assert unicodedata.unidata_version == "14.0.0", "run with Python 3.11 (Unicode 14 data)"
    return {c for c in range(0x110000)
            if not 0xD800 <= c <= 0xDFFF and unicodedata.category(chr(c)).startswith(prefixes)}


def write_json(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, indent=None, separators=(",", ":"))
        f.write("\n")


def write_unicode_inc(members):
    han = members["han"]
    # What PCRE2 10.42 matches for each class of the translated pattern, before additions.
    base = {
        "upper": u14(("Lu", "Lt", "Lm", "Lo", "M")) - han,
        "lower": u14(("Ll", "Lm", "Lo", "M")) - han,
        "letter": u14(("L",)),
        "number": u14(("N",)),
    }
    lines = [
        "// Generated by tools/gen_kimi_tokenizer_fixture.py; do not edit.",
        "// Kimi-K2 pre-tokenizer classes as tiktoken's regex engine (Rust regex, newer Unicode)",
        "// matches them. KIMI_HAN: Script=Han, spelled out. KIMI_ADD(class, first, last): code",
        "// points the class has that PCRE2 10.42 (Unicode 14 tables) lacks; PCRE2 never has more.",
        "// KIMI_PYSPACE: Python's str.isspace() (Unicode 14).",
    ]
    for a, b in ranges(han):
        lines.append(f"KIMI_HAN(0x{a:04X}, 0x{b:04X})")
    # Python's str.isspace(), which tokenization_kimi.py uses to cut long runs before tiktoken.
    for a, b in ranges(c for c in range(0x110000) if chr(c).isspace()):
        lines.append(f"KIMI_PYSPACE(0x{a:04X}, 0x{b:04X})")
    for name, pcre in base.items():
        extra = pcre - members[name]
        assert not extra, f"{name}: PCRE2 matches {sorted(extra)[:5]} which tiktoken does not"
        for a, b in ranges(members[name] - pcre):
            lines.append(f"KIMI_ADD({name}, 0x{a:04X}, 0x{b:04X})")
    with open(INC_PATH, "w") as f:
        f.write("\n".join(lines) + "\n")


def kimi_slices(text, block=400_000, max_run=25_000):
    """How tokenization_kimi.py's encode() cuts text before tiktoken: 400k-character blocks, and
    within a block no slice with more than `max_run` consecutive str.isspace() characters or
    consecutive other characters."""
    for b in range(0, len(text), block):
        s = text[b:b + block]
        start, run, run_space = 0, 0, s[0].isspace() if s else False
        for i, ch in enumerate(s):
            space = ch.isspace()
            if space != run_space:
                run, run_space = 1, space
            else:
                run += 1
                if run > max_run:
                    yield s[start:i]
                    start, run = i, 1
        yield s[start:]


def kimi_encode(enc, text, allow_special):
    ids = []
    for part in kimi_slices(text):
        ids += enc.encode(part, allowed_special="all") if allow_special else \
            enc.encode_ordinary(part)
    return ids


def fnv1a64_ids(ids):
    h = 0xCBF29CE484222325
    for byte in ",".join(map(str, ids)).encode():
        h = ((h ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


# Long texts (kept out of the JSON as [piece, repeat] lists) where Kimi's cutting changes ids.
LONG_TEXTS = [
    [["1", 25010]],                       # a digit run cut at 25,000: 25,000 % 3 != 0
    [[" ", 25002], ["x", 1]],             # a space run cut: "  x" then splits differently
    [["a b ", 100001]],                   # 400k-character blocks: " a" is cut into " " + "a"
    [["<|im_end|>", 2600]],               # specials cut apart by the 25,000-character cut
    [["中", 24999], ["\u001c", 2], ["文", 30]],  # U+001C is str.isspace() but not \\s
]


def render_chat(messages, add_generation_prompt):
    env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True)
    return env.from_string(KIMI_CHAT_TEMPLATE).render(
        messages=messages, add_generation_prompt=add_generation_prompt)


def main():
    os.makedirs(OUT_DIR, exist_ok=True)
    sections, chats = project_corpus()
    sections.append(("kimi", KIMI_EXTRA))
    rng = random.Random(20250711)
    pool = sorted(set("".join(t for _, texts in sections for t in texts)))
    pool += [" ", "  ", "\n", "\r\n", "\t", "'s", "'T", "'ſ", "<|im_end|>", "[BOS]", "123"]
    sections.append(("random_kimi",
                     ["".join(rng.choice(pool) for _ in range(rng.randint(1, 80)))
                      for _ in range(40)]))

    train = [t for name, texts in sections if not name.startswith("random") for t in texts]
    ranks, words = train_bpe(train, num_merges=1800)
    unreachable = add_unreachable(ranks, words, 3)
    num_base = len(ranks)
    specials = {KIMI_SPECIALS.get(i, f"<|reserved_token_{num_base + i}|>"): num_base + i
                for i in range(NUM_RESERVED_SPECIAL_TOKENS)}
    enc = encoding(ranks, specials)

    with open(os.path.join(OUT_DIR, "tiktoken.model"), "w") as f:
        for tok, rank in sorted(ranks.items(), key=lambda kv: kv[1]):
            f.write(f"{base64.b64encode(tok).decode()} {rank}\n")
    config = {
        "added_tokens_decoder": {
            str(num_base + off): {"content": content, "lstrip": False, "normalized": False,
                                  "rstrip": False, "single_word": False, "special": True}
            for off, content in sorted(KIMI_SPECIALS.items())},
        "additional_special_tokens": ["<|im_end|>", "<|im_user|>", "<|im_assistant|>",
                                      "<|start_header_id|>", "<|end_header_id|>", "[EOT]",
                                      "<|im_system|>", "<|im_middle|>"],
        "bos_token": "[BOS]",
        "eos_token": "[EOS]",
        "pad_token": "[PAD]",
        "unk_token": "[UNK]",
        "chat_template": KIMI_CHAT_TEMPLATE,
        "model_max_length": 1000000000000000019884624838656,
        "tokenizer_class": "TikTokenTokenizer",
        "auto_map": {"AutoTokenizer": ["tokenization_kimi.TikTokenTokenizer", None]},
    }
    with open(os.path.join(OUT_DIR, "tokenizer_config.json"), "w") as f:
        json.dump(config, f, ensure_ascii=False, indent=2)
        f.write("\n")

    long_cases = []
    for parts in LONG_TEXTS:
        text = "".join(p * n for p, n in parts)
        case = {"parts": parts, "slice_chars": [len(x) for x in kimi_slices(text)]}
        for key, allow in (("plain", False), ("all", True)):
            ids = kimi_encode(enc, text, allow)
            whole = enc.encode(text, allowed_special="all") if allow else enc.encode_ordinary(text)
            case[key] = {"n": len(ids), "fnv": fnv1a64_ids(ids),
                         "tiktoken_whole_fnv": fnv1a64_ids(whole)}
        long_cases.append(case)

    cases = []
    for name, texts in sections:
        for t in texts:
            case = {"section": name, "text": t, "plain": enc.encode_ordinary(t)}
            assert kimi_encode(enc, t, False) == case["plain"]  # short texts are never cut
            with_specials = enc.encode(t, allowed_special="all")
            if with_specials != case["plain"]:  # else Encode == EncodePlain: not repeated
                case["all"] = with_specials
            cases.append(case)
    # Decode: every id alone hashed, and id sequences that cut characters apart.
    decode_cases = []
    for c in cases[::11]:
        ids = c.get("all", c["plain"])
        for cut in (1, 2, 3):
            part = ids[cut:] if len(ids) > cut else ids
            decode_cases.append({"ids": part, "text": enc.decode(part)})
    for _ in range(40):
        ids = [rng.randrange(num_base + NUM_RESERVED_SPECIAL_TOKENS) for _ in range(rng.randint(1, 12))]
        decode_cases.append({"ids": ids, "text": enc.decode(ids)})

    chat_cases = []
    kimi_chats = [
        ([{"role": "system", "content": "你是政务服务助手，请用用户的语言回答。"},
          {"role": "user", "content": "办理居住证需要哪些材料？"},
          {"role": "assistant", "content": "需要身份证、居住证明和一寸照片2张。"},
          {"role": "user", "content": "What about English speakers? I'm new here."}], True),
    ] + [(msgs, gen) for msgs, gen in chats]
    for messages, gen in kimi_chats:
        text = render_chat(messages, gen)
        chat_cases.append({"messages": messages, "add_generation_prompt": gen, "text": text,
                           "ids": enc.encode(text, allowed_special="all")})

    # A second, adversarial vocabulary (no tokenizer_config.json: reserved specials only);
    # expected ids are kept as hashes to keep the fixture small.
    adv_dir = os.path.join(OUT_DIR, "adversarial")
    os.makedirs(adv_dir, exist_ok=True)
    adv = adversarial_ranks(random.Random(977), words, 4000)
    with open(os.path.join(adv_dir, "tiktoken.model"), "w") as f:
        for tok, rank in sorted(adv.items(), key=lambda kv: kv[1]):
            f.write(f"{base64.b64encode(tok).decode()} {rank}\n")
    adv_enc = encoding(adv, {f"<|reserved_token_{len(adv) + i}|>": len(adv) + i
                             for i in range(NUM_RESERVED_SPECIAL_TOKENS)})
    adversarial_cases = []
    for name, texts in sections:
        for t in texts:
            plain = adv_enc.encode_ordinary(t)
            adversarial_cases.append({"n": len(plain), "fnv": fnv1a64_ids(plain)})

    members = {name: class_members(p) for name, p in CLASSES.items()}
    write_json(os.path.join(OUT_DIR, "unicode_classes.json"),
               {name: ranges(m) for name, m in members.items()})
    write_unicode_inc(members)

    # Ill-formed UTF-8 cannot reach tiktoken (it takes str); dsinfer keeps every byte, so decoding
    # gives Python's errors="replace" text (the same maximal-subpart rule as Rust).
    mod = importlib.import_module("gen_tokenizer_fixtures")
    invalid = [{"hex": b.hex(), "text": b.decode("utf-8", "replace")}
               for b in mod.INVALID_UTF8 + [b"<|im_end\xff|>", "中文".encode()[:4] + b"world"]]

    write_json(os.path.join(OUT_DIR, "cases.json"), {
        "source": f"tiktoken {tiktoken.__version__}, Python {sys.version.split()[0]}",
        "pattern": KIMI_PAT,
        "invalid_utf8": invalid,
        "num_base_tokens": num_base,
        "unreachable_tokens": [base64.b64encode(w).decode() for w in unreachable],
        "specials": specials,
        "cases": cases,
        "decode_cases": decode_cases,
        "single_id_text": [enc.decode([i]) for i in range(num_base + NUM_RESERVED_SPECIAL_TOKENS)],
        "chat_cases": chat_cases,
        "long_cases": long_cases,
        "adversarial_cases": adversarial_cases,  # same order as "cases"
    })
    print(f"{num_base} ranks ({len(unreachable)} unreachable by merges), {len(cases)} cases, "
          f"{len(decode_cases)} decode cases, {len(chat_cases)} chats")


if __name__ == "__main__":
    main()
