"""Token ids of both fixture tokenizers for a fixed list of varied prompts.

transformers' CLIPTokenizer (tokenizers backend) with padding="max_length", max_length=77, truncation=True,
loaded from models/tiny-sdxl/tokenizer and tokenizer_2 (pad "<|endoftext|>" resp. "!").
"""

from __future__ import annotations

import json
import unicodedata

from tokenizers import Regex, pre_tokenizers

from .common import check, log

SPLIT_PATTERN = r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""

CALL = 'CLIPTokenizer.from_pretrained(dir)(prompts, padding="max_length", max_length=77, truncation=True)'

# The paper's evaluation prompts (its appendix D), V* -> "sks dog" (live set) / "sks backpack" (objects).
_LIVE = [
    "a chocolate-colored V*", "a red V*", "a purple V*", "a brightly lit V*", "a snowy V*",
    "a V* in a purple wizard outfit", "a V* in a doctor outfit", "a V* in a superhero suit",
    "a V* dressed as a ballerina", "a V* wearing a green bow tie",
    "a V* with the Eiffel Tower in the background", "a V* with a mountain in the background",
    "a V* with a tree and autumn leaves in the background", "a V* on top of green grass with sunflowers around it",
    "a V* with a sunset and palm trees in the background", "a V* with the Sydney Opera House in the background",
    "a V* lying in the bed", "a V* sitting on the chair", "a V* swimming ", "a V* sleeping ", "a V* skateboarding",
    "a V* riding a surfboard", "a V* jumping with a parachute", "a V* running on a treadmill", "a V* riding a bike",
    "a V* in a chief outfit in a nostalgic kitchen filled with vintage furniture and scattered biscuit",
    "a V* dressed in a superhero cape, soaring through the skies above a bustling city during a sunset",
    "a V* dressed wearing a tuxedo performing on a stage in the spotlight",
    "a V* in a wizard's robe in a magical forest at midnight, accented with purples and sparkling silver tones",
    "a V* wearing a space helmet, among stars in a cosmic landscape during a starry night",
    "a V* wearing a pirate hat exploring a sandy beach at the sunset with a boat floating in the background",
]
_OBJECTS = [
    "a V* made of gold", "a V* on top of a red and white checkered picnic blanket", "a V* in the snow",
    "a V* on the beach", "a V* on a cobblestone street", "a V* on top of a wooden floor",
    "a V* with a city in the background", "a V* with a blue house in the background",
    "a V* on top of a purple rug in a forest", "a V* with a wheat field in the background", "a V* in the bed",
    "a V* on the chair", "a V* on top of a snowy mountain peak", "a V* with a sand castle in the background",
    "a V* in a cave",
    "a V* on a windowsill in Tokyo at dusk, illuminated by neon city lights, using neon color palette",
    "a V* on a sofa in a cozy living room, rendered in warm tones",
    "a V* on a wooden table in a sunny backyard, surrounded by flowers and butterflies",
    "a V* floating in a bathtub filled with bubbles and illuminated by the warm glow of evening sunlight "
    "filtering through a nearby window",
    "a V* floating among stars in a cosmic landscape during a starry night with a spacecraft in the background",
    "a V* on a sandy beach next to the sand castle at the sunset with a floaing boat in the background",
]

_GENERAL = [
    "", " ", "\n", "\t\t", "a", "A", "a photo of sks dog", "A PHOTO OF SKS DOG", "a photo of sks dog, 4k, trending",
    "masterpiece, best quality, (sks dog:1.2), [sunset], {clouds}",
    "hello!", "hello!!", "hello!!!!", "wow!?", "!", "!!", "!hello", "a ! b", "sks dog!!!1!",
    "don't", "DON'T", "it's", "IT'S", "we're", "you've", "I'm", "we'll", "he'd", "o'clock", "rock 'n' roll",
    "'s", "''s", "'quoted'", "dogs' toys", "the dog's ball", "it''s", "'S'T'RE", "'ll've'd",
    "\u2019s curly apostrophe", "don\u2019t", "l'\u00e9t\u00e9",
    "1", "12", "123456789", "3.14159", "1,000,000 dogs", "4k", "8K UHD", "2nd place", "v1.5", "x2", "½ cup", "²³",
    "Ⅻ roman", "٣ arabic-indic digit", "१२३ devanagari", "１２３ fullwidth",
    "a  photo   of\tsks\t\tdog", "line one\nline two", "\n\n\ndog\n\n\n", "  leading and trailing  ",
    "tabs\tand\r\nwindows\rline endings", "nbsp\u00a0here", "em\u2003space", "ideographic\u3000space",
    "zero\u200bwidth space", "line\u2028separator", "next\u0085line", "narrow\u202fnbsp", "vertical\x0btab",
    "form\x0cfeed", "file\x1cseparator", "soft\u00adhyphen",
    "caf\u00e9", "cafe\u0301", "CAF\u00c9", "na\u00efve", "r\u00e9sum\u00e9", "\u00fcber", "\u00c5ngstr\u00f6m",
    "\u212bngstr\u00f6m sign", "\u00e7a va", "se\u00f1or", "crème brûlée", "smørrebrød", "Æsir", "straße", "STRASSE",
    "ẞ capital sharp s", "İstanbul", "ıi", "ΣΊΣΥΦΟΣ", "Ὀδυσσεύς", "ǅ title case", "ﬁ ligature", "ﬀ", "Ǆ Ǉ Ǌ",
    "Москва", "ПРИВЕТ мир", "Ελληνικά", "עברית", "العربية", "हिन्दी", "ไทย", "한국어", "日本語のテキスト",
    "中文提示词", "カタカナ", "ｈａｌｆｗｉｄｔｈ", "ﾊﾝｶｸ", "汉字 and latin", "ㄅㄆㄇ", "ᄀ\u1161 jamo",
    "Z\u0351\u036b\u0343a\u0310\u033el\u0357go", "e\u0301\u0302 stacked", "\u0915\u094d\u0937", "ñ vs n\u0303",
    "😀", "😀😀😀", "a dog 🐶 in the park 🌳", "👍🏽 skin tone", "👨‍👩‍👧 family", "🇫🇷 flag", "❤️ heart",
    "✨sparkles✨", "☃", "♥♦♣♠", "→ ← ↑ ↓", "∑∫√∞", "€100", "$5.99", "£ ¥ ₹ ₿", "©®™", "°C", "µm", "℃",
    "&amp; &lt;b&gt; &quot;q&quot; &#39; &nbsp;", "<b>bold</b>", "<br/>", "a &amp b", "&#x1F600;",
    "\"double quotes\"", "«guillemets»", "„German“", "…", "--", "—em dash—", "a-b-c", "a_b_c", "a/b\\c",
    "#hashtag @mention", "http://example.com/path?q=1&x=2", "user@example.com", "C++ and C#", "(((a)))",
    "[[b]]", "{c}", "<<d>>", "a|b", "~tilde~", "^caret^", "`backtick`", ";:;:", ".,.,.", "?!?!", "***",
    "<|startoftext|>", "<|endoftext|>", "a <|endoftext|> b", "a<|startoftext|>b", "<|ENDOFTEXT|> caps",
    "<|STARTOFTEXT|>", "<|endoftext|><|endoftext|>", "x <|endoftext", "<|endoftext|>!", "!<|endoftext|>",
    "<|unknown|>", "</w>", "dog</w>", "a\u0000b", "\u0007bell", "\x7f del", "\ufeffbom", "\ufffd replacement",
    "\U0001d400\U0001d401 math bold", "\U00020000 cjk ext b", "\U0001f9d1\u200d\U0001f4bb", "\u0130\u0049",
    "supercalifragilisticexpialidocious", "pneumonoultramicroscopicsilicovolcanoconiosis",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "ababababababababab", "thethethethe", "zzzzzz", "qxjzv",
    "Photorealistic, 8k, ultra-detailed, cinematic lighting, bokeh, f/1.8, 85mm, golden hour",
    "portrait of a woman, oil painting by Rembrandt, chiaroscuro, 17th century",
    "lowres, bad anatomy, bad hands, text, error, missing fingers, extra digit, fewer digits, cropped, "
    "worst quality, low quality, normal quality, jpeg artifacts, signature, watermark, username, blurry",
]

_LONG = [
    "a photo of sks dog " * 20,
    "an extremely detailed and long prompt describing a sks dog sitting in a sunlit meadow full of wildflowers, "
    "with mountains in the distance, a clear blue sky with a few fluffy clouds, butterflies hovering, a small "
    "wooden fence in the foreground, soft morning light, dew on the grass, shallow depth of field, shot on a "
    "35mm film camera, warm color grading, high dynamic range, award winning photograph, national geographic",
    "😀" * 40,
    "日本語" * 30,
    "1 2 3 4 5 6 7 8 9 0 " * 10,
    "!" * 100,
    "a, " * 80,
    "word " * 75,
    "word " * 74,
    "word " * 76,
    "supercalifragilisticexpialidocious " * 12,
    "don't stop believing, it's " * 10,
    " ".join(f"token{i}" for i in range(60)),
    "<|endoftext|> " * 90,
    "sks dog!\n" * 40,
    "Café crème, naïve résumé; " * 15,
    "a photo of sks dog in the jungle, " + "highly detailed, " * 30 + "the end",
    "\t".join(["mixed 日本語 text with émoji 🎉 and digits 2024"] * 8),
]


def prompts() -> list[str]:
    out = list(_GENERAL)
    out += [p.replace("V*", "sks dog") for p in _LIVE]
    out += [p.replace("V*", "sks backpack") for p in _OBJECTS]
    out += _LONG
    # NFC/NFD/NFKD variants of a few accented prompts (the tokenizer composes with NFC only).
    for text in ["crème brûlée", "Ångström", "ἀρχή", "한국어", "é"]:
        out += [unicodedata.normalize(form, text) for form in ("NFD", "NFKD")]
    return list(dict.fromkeys(out))  # first occurrence of each, in order


def _ranges(values: list[int]) -> list[list[int]]:
    out: list[list[int]] = []
    for v in values:
        if out and out[-1][1] == v - 1:
            out[-1][1] = v
        else:
            out.append([v, v])
    return out


def unicode_tables(tok) -> dict:
    """Per scalar, what the tokenizer's own normalizer and CLIP split pattern do with it.

    Class: whitespace (the split drops it), letter (joins "a?a" into one piece), number (each one alone) or
    other (runs of it form one piece). Normalized: every scalar whose normalised form differs from itself.
    """
    backend = tok.backend_tokenizer
    split = pre_tokenizers.Split(Regex(SPLIT_PATTERN), behavior="removed", invert=True)
    check(json.loads(backend.pre_tokenizer.__getstate__())["pretokenizers"][0]["pattern"]["Regex"] == SPLIT_PATTERN,
          "the tokenizer's split pattern changed")
    classes: dict[str, list[int]] = {"letter": [], "number": [], "whitespace": []}
    normalized = []
    for c in range(0x110000):
        if 0xD800 <= c <= 0xDFFF:
            continue
        ch = chr(c)
        if not split.pre_tokenize_str(ch):
            classes["whitespace"].append(c)
        elif len(split.pre_tokenize_str("a" + ch + "a")) == 1:
            classes["letter"].append(c)
        elif len(split.pre_tokenize_str(ch + ch)) == 2:
            classes["number"].append(c)
        n = backend.normalizer.normalize_str(ch)
        if n != ch:
            normalized.append([c, [ord(x) for x in n]])
    return {k: _ranges(v) for k, v in classes.items()} | {"normalized": normalized}


def build(ctx) -> None:
    from transformers import CLIPTokenizer

    import transformers

    items = prompts()
    check(len(items) >= 200, f"only {len(items)} prompts")
    check(len(set(items)) == len(items), "duplicate prompts")
    ids = {}
    for sub in ("tokenizer", "tokenizer_2"):
        tok = CLIPTokenizer.from_pretrained(str(ctx.pipeline_dir / sub))
        enc = tok(items, padding="max_length", max_length=77, truncation=True)["input_ids"]
        check(all(len(e) == 77 for e in enc), "ids not 77 long")
        ids[sub] = enc
    check(any(a != b for a, b in zip(ids["tokenizer"], ids["tokenizer_2"])), "pad tokens should differ")
    full = CLIPTokenizer.from_pretrained(str(ctx.pipeline_dir / "tokenizer"))(items)["input_ids"]
    over = sum(1 for e in full if len(e) > 77)
    check(over >= 10, f"only {over} prompts over 77 tokens")
    # One prompt / id row per line (write_json's indent would put every id on its own line).
    rows = [
        "{",
        f'  "call": {json.dumps(CALL)},',
        f'  "max_length": 77,',
        f'  "transformers": {json.dumps(transformers.__version__)},',
        '  "prompts": [',
        ",\n".join("    " + json.dumps(p) for p in items),
        "  ],",
    ]
    for n, sub in enumerate(("tokenizer", "tokenizer_2")):
        rows += [f'  "{sub}": [', ",\n".join("    " + json.dumps(e) for e in ids[sub]), "  ]" + ("," if n == 0 else "")]
    rows.append("}")
    path = ctx.reference / "tokenizer_ids.json"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    check(json.loads(path.read_text(encoding="utf-8"))["prompts"] == items, "prompts do not read back")
    log(f"[tokenizer] {len(items)} prompts, {over} over 77 tokens")

    tables = unicode_tables(CLIPTokenizer.from_pretrained(str(ctx.pipeline_dir / "tokenizer")))
    lines = ["{"]
    keys = ["letter", "number", "whitespace", "normalized"]
    for n, key in enumerate(keys):
        lines += [f'  "{key}": [', ",\n".join("    " + json.dumps(r) for r in tables[key]), "  ]" + ("," if n < 3 else "")]
    lines.append("}")
    (ctx.reference / "tokenizer_unicode.json").write_text("\n".join(lines) + "\n", encoding="utf-8")
    log(f"[tokenizer] unicode: {', '.join(f'{k} {len(tables[k])}' for k in keys)}")
