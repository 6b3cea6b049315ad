#!/usr/bin/env python3
"""Writes the parity fixtures for dsinfer's C++ tokenizer (tests/fixtures/tokenizer/).

The reference is HF `tokenizers` (Rust, Oniguruma regexes) loaded from the committed DeepSeek-V3
tokenizer.json; chat cases come from `transformers` apply_chat_template when it is installed,
otherwise from rendering the chat_template with jinja2 and encoding with `tokenizers`.

Outputs:
  corpus.json           the multilingual corpus (also the benchmark corpus)
  encode_cases.json     text -> encode(add_special_tokens=False).ids, decode results
  decode_cases.json     id sequences (incl. ones that cut characters) -> decode(skip=False/True)
  vocab_decode.json     FNV-1a 64 of decode() over every id, in chunks (whole-vocab coverage)
  chat_cases.json       conversations -> apply_chat_template(tokenize=True) ids
  unicode_classes.json  code-point ranges Oniguruma puts in each regex class the pre-tokenizer
                        uses (so the PCRE2 translation is checked on every code point)
and src/tokenizer/unicode_additions.inc: the code points Unicode >14 added to L/M/N/P/S, which
older PCRE2 builds (Unicode 14 tables) do not know but Oniguruma in HF tokenizers does.

Usage: python3 tools/gen_tokenizer_fixtures.py [--repo /work/main]
"""

import argparse
import json
import os
import random
import sys
import unicodedata

from tokenizers import Regex, Tokenizer, pre_tokenizers

TOKENIZER_DIR = "models/tokenizers/deepseek-v3"

# ---------------------------------------------------------------------------------------------
# Corpus: written for this project. Public-service notices in several languages and scripts,
# source code, and edge cases aimed at the pre-tokenizer regexes and the added-token matcher.
# ---------------------------------------------------------------------------------------------

CHINESE = [
    "为进一步优化政务服务、提升办事效率，市政务服务中心自2024年3月1日起全面推行“一网通办”。"
    "群众可通过政务服务网、移动端应用或线下窗口办理社保、医保、户籍、不动产登记等187项高频事项。",
    "办理过程中如遇问题，请拨打12345政务服务便民热线，或前往各区县便民服务大厅咨询。"
    "窗口工作时间：周一至周五 上午9:00—12:00，下午13:30—17:30（法定节假日除外）。",
    "第一条　为了规范公共服务事项办理流程，保障申请人的合法权益，根据有关法律、法规，制定本办法。\n"
    "第二条　本办法适用于本行政区域内各级行政机关、事业单位提供的公共服务。\n"
    "第三条　公共服务应当遵循依法、公开、便民、高效的原则。",
    "根据《中华人民共和国个人信息保护法》，本平台仅在办理业务所必需的范围内收集、使用个人信息，"
    "不会向任何第三方泄露。申请人对信息处理有异议的，可于十五个工作日内提出书面意见。",
    "二〇二四年度城乡居民基本医疗保险个人缴费标准为每人每年380元，缴费截止日期为12月31日。"
    "低保对象、特困人员由财政全额资助参保。",
    "關於調整公共交通服務時間的通知：自下月起，地鐵各線路末班車延長至23時30分，請市民朋友合理安排出行。",
    "【温馨提示】请勿轻信陌生来电！政府部门不会通过电话要求您转账汇款。如有疑问请拨打110。",
    "申请材料清单：1．居民身份证原件及复印件；2．户口簿；3．近期一寸免冠照片2张；4．《申请表》（一式三份）。",
]

UYGHUR = [
    "ئاممىۋى مۇلازىمەت مەركىزىگە خوش كەلدىڭىز! بىز دۈشەنبىدىن جۈمەگىچە سائەت 10:00 دىن 19:00 گىچە "
    "ئىشلەيمىز.",
    "كىملىك گۇۋاھنامىڭىزنى ۋە نوپۇس دەپتىرىڭىزنى ئېلىپ كېلىشنى ئۇنتۇماڭ. سوئال بولسا 12345 گە تېلېفون "
    "قىلىڭ.",
    "ساغلاملىق سۇغۇرتىسى ھەققىنى تاپشۇرۇش ۋاقتى 31-دېكابىرغىچە. تەپسىلاتىنى تور بېكىتىمىزدىن كۆرۈڭ.",
]

KAZAKH_CYRILLIC = [
    "Халыққа қызмет көрсету орталығы дүйсенбіден жұмаға дейін сағат 9:00-ден 18:00-ге дейін жұмыс "
    "істейді.",
    "Жеке куәлігіңізді және мекенжай анықтамасын алып келуді ұмытпаңыз. Сұрақтарыңыз болса, 1414 "
    "нөміріне хабарласыңыз.",
    "Әлеуметтік төлемдер ай сайын 25-күнге дейін аударылады; өтініш электрондық үкімет порталы арқылы "
    "қабылданады.",
]

KAZAKH_ARABIC = [
    "حالىققا قىزمەت كورسەتۋ ورتالىعى دۇيسەنبىدەن جۇماعا دەيىن ساعات 9:00-دەن 18:00-گە دەيىن جۇمىس "
    "ىستەيدى.",
    "جەكە كۋالىگىڭىزدى الىپ كەلۋدى ۇمىتپاڭىز. ٴوتىنىش ەلەكتروندىق پورتال ارقىلى قابىلدانادى.",
]

MONGOLIAN_TRADITIONAL = [
    "ᠣᠯᠠᠨ ᠨᠡᠶᠢᠲᠡ ᠶᠢᠨ ᠦᠢᠯᠡᠴᠢᠯᠡᠭᠡ ᠶᠢᠨ ᠲᠥᠪ ᠨᠢ ᠭᠠᠷᠠᠭ ᠤᠨ ᠨᠢᠭᠡᠨ ᠡᠴᠡ ᠲᠠᠪᠤᠨ ᠬᠦᠷᠲᠡᠯᠡ ᠠᠵᠢᠯᠯᠠᠨᠠ᠃",
    "ᠢᠷᠭᠡᠨ ᠦ ᠦᠨᠡᠮᠯᠡᠯ ᠢᠶᠡᠨ ᠠᠪᠴᠢᠷᠠᠬᠤ ᠶᠢ ᠪᠢᠲᠡᠭᠡᠢ ᠮᠠᠷᠲᠠᠭᠠᠷᠠᠢ᠂ ᠠᠰᠠᠭᠤᠯᠲᠠ ᠪᠠᠢᠪᠠᠯ ᠑᠒᠓᠔᠕ ᠳᠤ ᠯᠠᠪᠯᠠᠭᠠᠷᠠᠢ᠃",
    # Free variation selectors, the vowel separator and NARROW NO-BREAK SPACE before suffixes.
    "ᠬᠠᠭᠠᠨ᠎ᠠ ᠭᠡᠷ ᠦᠨ ᠡᠵᠡᠨ᠋ ᠨᠣᠮ ᠤᠨ ᠪᠢᠴᠢᠭ ᠢᠨ\u202fᠬᠠᠷᠢᠶ᠎ᠠ",
]

MONGOLIAN_CYRILLIC = [
    "Төрийн үйлчилгээний нэгдсэн төв Даваа гарагаас Баасан гараг хүртэл 09:00–18:00 цагт ажиллана.",
    "Иргэний үнэмлэхээ авчрахаа бүү мартаарай. Лавлах утас: 1800-1234; цахим хаяг: e-mongolia.mn",
]

TIBETAN = [
    "སྤྱི་ཚོགས་ཞབས་ཞུའི་ལྟེ་གནས་ནི་གཟའ་ཟླ་བ་ནས་གཟའ་པ་སངས་བར་དུ་ཁ་ཕྱེ་ཡོད། "
    "ཁྱེད་རང་གི་ཐོབ་ཐང་ལག་ཁྱེར་ཁྱེར་ཤོག",
    "འབྲེལ་གཏུག་ཁ་པར་ ༡༢༣༤༥ ལ་གཏོང་རོགས། ༄༅། །བཀྲ་ཤིས་བདེ་ལེགས། སྨན་བཅོས་ཉེན་སྲུང་གི་འགྲོ་གྲོན་ནི་སྒོར་ ༣༨༠ ཡིན།",
]

JAPANESE = [
    "市役所の窓口では、住民票の写しやマイナンバーカードの申請を受け付けています。"
    "受付時間は平日の午前8時30分から午後5時15分までです。",
    "ご不明な点がございましたら、お気軽にコールセンター（０１２０－１２３－４５６）までお問い合わせください。",
    "ｶﾀｶﾅの半角表記や、ヴァ・ヴィ・ヴの表記、長音「ー」、々や〆などの記号も含みます。",
]

KOREAN = [
    "주민센터에서는 주민등록등본 발급, 전입신고 등의 민원 업무를 처리합니다. "
    "운영 시간은 평일 오전 9시부터 오후 6시까지입니다.",
    "자세한 사항은 정부24 누리집(www.gov.kr)을 참고하시거나 국번 없이 110으로 문의하십시오.",
    # Decomposed (conjoining jamo) Hangul.
    unicodedata.normalize("NFD", "한글 자모 분해 형태 테스트"),
]

EMOJI = [
    "Family: 👨‍👩‍👧‍👦, couple: 👩‍❤️‍👨, rainbow flag: 🏳️‍🌈, fire heart: ❤️‍🔥",
    "Flags 🇨🇳🇯🇵🇰🇷🇲🇳🇰🇿 and a subdivision flag 🏴󠁧󠁢󠁳󠁣󠁴󠁿",
    "Skin tones 👍🏻👍🏼👍🏽👍🏾👍🏿 👋🏿 🧑🏻‍💻 and keycaps 1️⃣2️⃣#️⃣ done ✅✔️❌",
    "😀😃😄😁😆😅🤣😂🙂🙃🫠😉😊😇🥰😍🤩😘",
]

CODE = [
    "#include <vector>\n\nint main(int argc, char** argv) {\n\tstd::vector<int> v{1, 2, 3};\n"
    "\tfor (auto& x : v) x *= 2;  // double\n\treturn v.size() == 3 ? 0 : 1;\n}\n",
    "def fib(n: int) -> int:\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n    a, b = 0, 1\n"
    "    for _ in range(n):\n        a, b = b, a + b\n    return a\n\n\nprint(f\"{fib(90)=}\")\n",
    "fn main() {\n    let xs: Vec<u64> = (1..=10).map(|x| x * x).collect();\n"
    "    println!(\"{:?} sum={}\", xs, xs.iter().sum::<u64>());\n}\n",
    "const url = `https://example.org/api/v2/items?id=${id}&lang=zh-CN`;\n"
    "fetch(url).then((r) => r.json()).catch((e) => console.error(e));\n",
    "SELECT citizen_id, COUNT(*) AS n\nFROM service_requests\nWHERE created_at >= '2024-01-01'\n"
    "GROUP BY citizen_id HAVING n > 3 ORDER BY n DESC;\n",
    "#!/usr/bin/env bash\nset -euo pipefail\nfor f in *.log; do\n  gzip -9 \"$f\" && echo \"ok: $f\"\n"
    "done 2>&1 | tee -a /var/log/rotate.log\n",
    "package main\n\nimport \"fmt\"\n\nfunc main() {\n\tm := map[string]int{\"a\": 1}\n"
    "\tfmt.Printf(\"%v\\n\", m)\n}\n",
    "<html><head><meta charset=\"utf-8\"><title>办事指南</title></head>\n"
    "<body><p class=\"note\">&nbsp;请携带证件 &amp; 材料</p></body></html>\n",
    '{"name": "政务服务", "count": 187, "tags": ["社保", "医保"], "ok": true, "ratio": 0.75}',
]

WHITESPACE = [
    "a\t\tb\t\t\tc",
    "   leading spaces",
    "trailing spaces   ",
    "line one\r\nline two\r\n\r\nline four\r\n",
    " \n \n  \n",
    " " * 200 + "x",
    "\t" * 50,
    "mixed\u3000ideographic\u00a0nbsp\u2028line\u2029para\u0085nel\u200bzwsp end",
    "\n\n\n\n\n\n\n\n",
    "x \n y \r\n z\r \r",
    "  \t \t  word  \t  ",
]

DIGITS = [
    "1234567890" * 10,
    "3.14159265358979323846264338327950288419716939937510",
    "Arabic-Indic ١٢٣٤٥٦٧٨٩٠ and Extended ۱۲۳۴۵ and Devanagari १२३४५ and Thai ๑๒๓",
    "Circled ①②③④⑤ Roman ⅠⅡⅢⅫ superscript x²+y³ fractions ½¼¾ fullwidth １２３４５６７",
    "Phone +86 (10) 8888-6666, ID 11010519491231002X, amount ¥1,234,567.89, -42, 007",
]

URLS = [
    "https://www.gov.cn/zhengce/2024-03/01/content_6935021.htm?from=timeline&isappinstalled=0#p2",
    "Contact: service-desk@public.example.gov, ftp://files.example.org/pub/2024/report_v1.2.pdf",
    "C:\\Users\\Public\\Documents\\申请表.docx and /home/user/.config/app/settings.toml",
    "http://[2001:db8::1]:8080/path/with%20spaces?q=%E4%B8%AD%E6%96%87&x=1",
]

PUNCTUATION = [
    "!!!???...---***+++===",
    "«quoted» „German“ “中文引号” 『日本語』 「かぎ」 —— …… ‰ § ¶ † ‡",
    "(a)[b]{c}<d> @user #tag $100 %50 ^_^ ~~ |pipe| \\back\\slash `tick`",
    "Mr.Smith's dog;isn't it?Yes:it's 'fine'.",
    "a.b,c;d:e!f?g-h_i/j\\k",
    "'s 't 're 've 'm 'll 'd ' S 'T",
]

ADDED_TOKEN_TEXT = [
    "<｜User｜>hello<｜Assistant｜>hi there<｜end▁of▁sentence｜>",
    "<|EOT|> after an end-of-turn marker",
    "<｜fim▁begin｜>def add(a, b):\n<｜fim▁hole｜>\n    return c<｜fim▁end｜>",
    "partial <｜User and <｜Assistant｜ and ｜> should stay text",
    "<｜User｜><｜User｜><｜User｜>",
    "abc<｜end▁of▁sentence｜>def<｜begin▁of▁sentence｜>ghi",
    "<｜place▁holder▁no▁0｜><｜place▁holder▁no▁799｜><｜place▁holder▁no▁79｜>",
    "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n```json\n"
    "{\"city\": \"北京\"}\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>",
    "<｜▁pad▁｜><｜▁pad▁｜>",
    "text<|EOT|><|EOT|>text <｜tool▁outputs▁begin｜><｜tool▁output▁begin｜>42<｜tool▁output▁end｜>",
    "<｜<｜User｜>｜>",
    "<|User|> ascii pipes are not the token",
]

EDGE_CASES = [
    "",
    " ",
    "a",
    "\u0301\u0301abc",
    "e\u0301 n\u0303 a\u030a\u0323",
    "\u200d",
    "\ufeffBOM at start",
    "replacement \ufffd char",
    "private use \ue000\uf8ff and noncharacters \ufffe\uffff",
    "astral \U0001d400\U0001d7d8 \U0010fffd \U000e0001",
    "controls \x00\x01\x02\x1b[31mred\x1b[0m\x7f",
    "bidi \u202ederived\u202c \u2066iso\u2069",
    # Assigned after Unicode 14: PCRE2 10.42 does not know them, Oniguruma does.
    "new letters \u1c89\u1c8a \ua7cb\ua7cc and CJK Ext H \U00031350\U00031351 Ext I \U0002ebf0",
    "new digits \U00010d40\U00010d41\U00010d42\U00010d43 and symbols \u2427\u2428 \u31e4",
    "combining after space: a \u0301b and after digit 1\u0301 and after CJK 中\u0301",
    "ＡＢＣ ａｂｃ fullwidth Latin",
    "Ελληνικά, русский, עברית, العربية, हिन्दी, ไทย, ქართული, Ⴀ, ᏣᎳᎩ",
    "〇一二三 〇〇七 々〆〤",
    "ABC123def456GHI7890jkl",
    "你好world世界123",
    "\r\r\r\n\n\n",
    "x" * 300,
    "中" * 300,
    "  \u3000\u3000中文\u3000\u3000  ",
]

LONG_DOCS = [
    # A mixed notice, the kind of document a public-service chatbot reads.
    "【公告】关于开展2024年度政务服务满意度调查的通知\n\n各位市民：\n\n"
    "为持续改进服务质量，现开展年度满意度调查。调查时间为2024年10月8日至10月31日，"
    "可通过以下方式参与：\n  1. 登录 https://zwfw.example.gov.cn/survey 在线填写；\n"
    "  2. 在各服务大厅扫描二维码；\n  3. 拨打 12345 热线语音参与。\n\n"
    "Notice (English): The annual satisfaction survey runs from Oct. 8 to Oct. 31, 2024. "
    "Your feedback helps us improve!\n"
    "ئۇيغۇرچە: ئىنكاسىڭىز بىز ئۈچۈن ناھايىتى مۇھىم.\n"
    "Қазақша: Сіздің пікіріңіз біз үшін маңызды.\n"
    "ᠮᠣᠩᠭᠣᠯ: ᠲᠠᠨ ᠤ ᠰᠠᠨᠠᠯ ᠮᠠᠰᠢ ᠴᠢᠬᠤᠯᠠ᠃\n"
    "བོད་ཡིག: ཁྱེད་ཀྱི་བསམ་འཆར་ནི་གལ་ཆེན་ཡིན།\n"
    "日本語：ご意見をお聞かせください。 한국어: 의견을 들려주세요. 🙏👍\n\n"
    "市政务服务管理局\n二〇二四年九月三十日\n",
    "Release notes v2.3.1 (2024-06-18)\n=================================\n\n"
    "* Fixed: queue numbers > 999 wrapped to 000 on kiosk #12.\n"
    "* Added: Kazakh (Arabic script) and Mongolian (traditional) UI strings.\n"
    "* Perf: p99 latency 812ms -> 143ms (5.7x) under 1,200 req/s.\n\n"
    "```yaml\nservice:\n  name: kiosk-gateway\n  replicas: 3\n  env:\n    - LANG=zh_CN.UTF-8\n"
    "    - TZ=Asia/Shanghai\n```\n\n"
    "Known issues:\r\n\t- Printing on A5 paper may cut the QR code.\r\n\t- 部分老旧设备不支持emoji显示🙁\r\n",
]


def random_strings():
    """Deterministic random mixes of characters from all the scripts above."""
    rng = random.Random(20240601)
    pool = sorted(set("".join(CHINESE + UYGHUR + KAZAKH_CYRILLIC + KAZAKH_ARABIC +
                              MONGOLIAN_TRADITIONAL + MONGOLIAN_CYRILLIC + TIBETAN + JAPANESE +
                              KOREAN + EMOJI + CODE + PUNCTUATION + DIGITS + EDGE_CASES[3:20])))
    pool += [" ", " ", " ", "\n", "\t", "\r\n", "  ", "123", "<｜User｜>", "<|EOT|>", "\u0301",
             "\u200d", "\U0001f3fd", "\u202f", "\u180e", "\u0085"]
    out = []
    for i in range(60):
        n = rng.randint(1, 120)
        out.append("".join(rng.choice(pool) for _ in range(n)))
    return out


def corpus_sections():
    return [
        ("chinese", CHINESE), ("uyghur", UYGHUR), ("kazakh_cyrillic", KAZAKH_CYRILLIC),
        ("kazakh_arabic", KAZAKH_ARABIC), ("mongolian_traditional", MONGOLIAN_TRADITIONAL),
        ("mongolian_cyrillic", MONGOLIAN_CYRILLIC), ("tibetan", TIBETAN), ("japanese", JAPANESE),
        ("korean", KOREAN), ("emoji", EMOJI), ("code", CODE), ("whitespace", WHITESPACE),
        ("digits", DIGITS), ("urls", URLS), ("punctuation", PUNCTUATION),
        ("added_tokens", ADDED_TOKEN_TEXT), ("edge_cases", EDGE_CASES), ("long_docs", LONG_DOCS),
        ("random", random_strings()),
    ]


# ---------------------------------------------------------------------------------------------
# Chat conversations (benign: no control-token text inside messages).
# ---------------------------------------------------------------------------------------------

CHATS = [
    ([{"role": "user", "content": "你好，请问办理居住证需要哪些材料？"}], True),
    ([{"role": "system", "content": "You are a helpful public-service assistant."},
      {"role": "user", "content": "What are the opening hours?"}], True),
    ([{"role": "system", "content": "Answer briefly."},
      {"role": "system", "content": "Use the user's language."},
      {"role": "user", "content": "Сағат нешеде ашылады?"},
      {"role": "assistant", "content": "Дүйсенбіден жұмаға дейін 9:00-ден ашылады."},
      {"role": "user", "content": "Рахмет!"}], True),
    ([{"role": "user", "content": "Write hello world in C."},
      {"role": "assistant", "content": "```c\n#include <stdio.h>\nint main(void) {\n"
                                       "  puts(\"hello world\");\n}\n```"}], False),
    ([{"role": "user", "content": "ཁྱེད་རང་ག་འདྲ་ཡོད།"},
      {"role": "assistant", "content": "ང་བདེ་པོ་ཡིན། 🙏"}], False),
    ([{"role": "user", "content": "  leading and trailing spaces  "},
      {"role": "assistant", "content": ""},
      {"role": "user", "content": "\n\nnewlines\n"}], True),
    ([{"role": "system", "content": "システムプロンプト"}], True),

    ([{"role": "user", "content": "A"}, {"role": "user", "content": "B"}], False),
]

# Ill-formed UTF-8 (HF takes str, so it cannot see these): dsinfer keeps the bytes; decoding
# gives the lossy text, which Python's errors="replace" computes with the same rule as Rust.
INVALID_UTF8 = [
    b"abc\xffdef", b"\xe4\xb8", b"\xe4\xb8\xad\xe6", b"\xc0\xaf", b"\xed\xa0\x80 surrogate",
    b"\xf4\x90\x80\x80", b"\xf0\x9f\x98\x80\xf0\x9f", b"\x80\x80\x80", b"\xe0\x80\xaf",
    b"\xfe\xff", b"<\xef\xbd\x9cUser\xef\xbd\x9c>\xff<\xef\xbd\x9c", b"  \xa0\xa0  \n\xc2",
    b"12\xff34\xff567", "中文".encode() + b"\xff" + "日本語".encode(), b"\xf8\x88\x80\x80\x80",
]

# ---------------------------------------------------------------------------------------------


def fnv1a64(data: bytes) -> int:
    h = 0xCBF29CE484222325
    for b in data:
        h ^= b
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def ranges(code_points):
    out = []
    for c in sorted(code_points):
        if out and out[-1][1] == c - 1:
            out[-1][1] = c
        else:
            out.append([c, c])
    return out


ALL_CODE_POINTS = [c for c in range(1, 0x110000) if not 0xD800 <= c <= 0xDFFF]

# The single-character classes the pre-tokenizer regexes are built from.
REGEX_CLASSES = [
    ("N", r"\p{N}"), ("L", r"\p{L}"), ("M", r"\p{M}"), ("P", r"\p{P}"), ("S", r"\p{S}"),
    ("s", r"\s"), ("S_upper", r"\S"), ("cjk", "[一-龥぀-ゟ゠-ヿ]"),
    ("not_crlf_lps", "[^\r\n\\p{L}\\p{P}\\p{S}]"),
]


def oniguruma_members(pattern):
    """Code points a one-character pattern matches in HF tokenizers (Oniguruma)."""
    text = "".join(map(chr, ALL_CODE_POINTS))
    kept = set()
    for piece, _ in pre_tokenizers.Split(Regex(pattern), "removed").pre_tokenize_str(text):
        kept.update(map(ord, piece))
    return [c for c in ALL_CODE_POINTS if c not in kept]


def write_json(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {path} ({os.path.getsize(path)} bytes)")


def unicode_additions(classes):
    """Per general-category group, ranges Oniguruma has that Python's (Unicode 14) tables lack."""
    if unicodedata.unidata_version != "14.0.0":
        sys.exit(f"unicode_additions.inc is computed against Unicode 14.0 (PCRE2 10.42); "
                 f"this Python has {unicodedata.unidata_version}")
    out = {}
    for group in "LMNPS":
        base = {c for c in ALL_CODE_POINTS if unicodedata.category(chr(c)).startswith(group)}
        onig = set(classes[group])
        missing = base - onig
        if missing:
            sys.exit(f"Oniguruma lacks Unicode-14 {group} code points: {sorted(missing)[:10]}")
        out[group] = ranges(onig - base)
    return out


def write_additions_inc(path, additions):
    lines = [
        "// Generated by tools/gen_tokenizer_fixtures.py; do not edit.",
        "// Code points that Unicode 15.0-16.0 assigned to the general-category groups L, M, N, P",
        "// and S. PCRE2 10.42 uses Unicode 14 tables; Oniguruma inside HF tokenizers knows these,",
        "// so the regex translation adds them to \\p{X} to keep pre-tokenization identical.",
        "// Format: DSINFER_UNICODE_ADDITION(group, first, last)",
    ]
    for group, rs in additions.items():
        for a, b in rs:
            lines.append(f"DSINFER_UNICODE_ADDITION('{group}', 0x{a:X}, 0x{b:X})")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    print(f"wrote {path}")


def chat_ids(tok_dir, hf, messages, add_generation_prompt):
    try:
        from transformers import AutoTokenizer  # noqa: F401
        have_transformers = True
    except ImportError:
        have_transformers = False
    if have_transformers:
        if not hasattr(chat_ids, "tok"):
            from transformers import AutoTokenizer
            chat_ids.tok = AutoTokenizer.from_pretrained(tok_dir)
        r = chat_ids.tok.apply_chat_template(messages, tokenize=True,
                                             add_generation_prompt=add_generation_prompt)
        if hasattr(r, "keys") and "input_ids" in r:
            r = r["input_ids"]
        return list(r), "transformers"
    import jinja2
    cfg = json.load(open(os.path.join(tok_dir, "tokenizer_config.json"), encoding="utf-8"))
    env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True)
    text = env.from_string(cfg["chat_template"]).render(
        messages=messages, add_generation_prompt=add_generation_prompt,
        bos_token=cfg["bos_token"]["content"])
    return hf.encode(text, add_special_tokens=False).ids, "jinja2+tokenizers"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repo", default=os.path.join(os.path.dirname(__file__), ".."))
    args = ap.parse_args()
    repo = os.path.abspath(args.repo)
    tok_dir = os.path.join(repo, TOKENIZER_DIR)
    out_dir = os.path.join(repo, "tests/fixtures/tokenizer")
    os.makedirs(out_dir, exist_ok=True)
    hf = Tokenizer.from_file(os.path.join(tok_dir, "tokenizer.json"))

    sections = corpus_sections()
    write_json(os.path.join(out_dir, "corpus.json"),
               {"sections": [{"name": n, "texts": t} for n, t in sections]})

    cases = []
    for name, texts in sections:
        for text in texts:
            ids = hf.encode(text, add_special_tokens=False).ids
            case = {"section": name, "text": text, "ids": ids}
            dec = hf.decode(ids, skip_special_tokens=False)
            if dec != text:
                case["decode"] = dec
            dec_skip = hf.decode(ids, skip_special_tokens=True)
            if dec_skip != dec:
                case["decode_skip_special"] = dec_skip
            cases.append(case)
    write_json(os.path.join(out_dir, "encode_cases.json"),
               {"tokenizers_version": __import__("tokenizers").__version__, "cases": cases})

    # Decode: sequences mixing specials, non-special added tokens and byte tokens that cut
    # multi-byte characters (decode is lossy UTF-8 over the concatenated bytes).
    rng = random.Random(7)
    vocab_size = hf.get_vocab_size(with_added_tokens=True)
    added_ids = sorted(int(i) for i in hf.get_added_tokens_decoder().keys())
    byte_ids = [hf.token_to_id(t) for t in ["Ã", "¤", "ä", "¸", "Ń", "ĳ", "ð", "Ł", "Ĳ", "Ģ"]]
    seqs = [[], [0], [1], [0, 1, 2], [128803, 128804, 128805], [0, 33310, 1, 2058, 128805]]
    seqs += [byte_ids, byte_ids[:3], byte_ids[::-1], [byte_ids[0]] * 5]
    for _ in range(60):
        n = rng.randint(1, 40)
        seq = []
        for _ in range(n):
            r = rng.random()
            if r < 0.15:
                seq.append(rng.choice(added_ids))
            elif r < 0.35:
                seq.append(rng.choice(byte_ids))
            else:
                seq.append(rng.randrange(0, 128000))
        seqs.append(seq)
    decode_cases = [{"ids": s, "decode": hf.decode(s, skip_special_tokens=False),
                     "decode_skip_special": hf.decode(s, skip_special_tokens=True)} for s in seqs]
    write_json(os.path.join(out_dir, "decode_cases.json"), {
        "cases": decode_cases,
        "invalid_utf8": [{"hex": b.hex(), "lossy": b.decode("utf-8", "replace")}
                         for b in INVALID_UTF8]})

    # Every id decoded (in chunks, hashed), so the whole vocabulary is covered cheaply.
    chunk = 256
    valid_ids = [i for i in range(vocab_size) if hf.id_to_token(i) is not None]
    hashes = []
    for start in range(0, len(valid_ids), chunk):
        ids = valid_ids[start:start + chunk]
        hashes.append(["%016x" % fnv1a64(hf.decode(ids, skip_special_tokens=False).encode("utf-8")),
                       "%016x" % fnv1a64(hf.decode(ids, skip_special_tokens=True).encode("utf-8"))])
    write_json(os.path.join(out_dir, "vocab_decode.json"),
               {"hash": "fnv1a64", "chunk": chunk, "ids": ranges(valid_ids), "chunks": hashes})

    chat_cases = []
    for messages, gen in CHATS:
        ids, source = chat_ids(tok_dir, hf, messages, gen)
        chat_cases.append({"messages": messages, "add_generation_prompt": gen, "ids": ids})
    write_json(os.path.join(out_dir, "chat_cases.json"), {"source": source, "cases": chat_cases})

    classes = {name: oniguruma_members(pat) for name, pat in REGEX_CLASSES}
    write_json(os.path.join(out_dir, "unicode_classes.json"),
               {"classes": [{"name": n, "pattern": p, "ranges": ranges(classes[n])}
                            for n, p in REGEX_CLASSES]})
    write_additions_inc(os.path.join(repo, "src/tokenizer/unicode_additions.inc"),
                        unicode_additions(classes))


if __name__ == "__main__":
    main()
