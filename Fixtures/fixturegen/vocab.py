"""CLIP BPE vocabulary built the standard way from bpe_simple_vocab_16e6.txt.gz."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from .common import check, sha256_file, write_json
from .configs import BOS, EOS, TOKENIZER_PADS, special_tokens_map, tokenizer_config

VOCAB_GZ_SHA256 = "924691ac288e54409236115652ad4aa250f48203de50a9e4722a6ecd48d6804a"
N_MERGES = 49152 - 256 - 2  # 48,894
VOCAB_SIZE = 49408


def bytes_to_unicode() -> dict:
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def load_merges(gz_path: Path) -> list[str]:
    check(sha256_file(gz_path) == VOCAB_GZ_SHA256, f"{gz_path}: unexpected sha256")
    lines = gzip.open(gz_path).read().decode("utf-8").split("\n")
    merges = lines[1 : N_MERGES + 1]  # line 0 is the version header
    check(len(merges) == N_MERGES and all(len(m.split()) == 2 for m in merges), "bad merges")
    return merges


def build_vocab(merges: list[str]) -> dict:
    base = list(bytes_to_unicode().values())
    tokens = base + [t + "</w>" for t in base] + ["".join(m.split()) for m in merges] + [BOS, EOS]
    check(len(tokens) == VOCAB_SIZE, f"vocab has {len(tokens)} entries")
    vocab = {t: i for i, t in enumerate(tokens)}
    check(len(vocab) == VOCAB_SIZE, "duplicate vocab entries")
    return vocab


def write_tokenizer_dirs(pipeline_dir: Path, gz_path: Path) -> None:
    """tokenizer/ and tokenizer_2/ with vocab.json + merges.txt + configs (published SDXL layout)."""
    merges = load_merges(gz_path)
    vocab = build_vocab(merges)
    vocab_text = json.dumps(vocab, ensure_ascii=False)
    merges_text = "#version: 0.2\n" + "".join(m + "\n" for m in merges)
    for sub, pad in TOKENIZER_PADS.items():
        d = pipeline_dir / sub
        d.mkdir(parents=True, exist_ok=True)
        for stale in d.iterdir():
            stale.unlink()
        (d / "vocab.json").write_text(vocab_text, encoding="utf-8")
        (d / "merges.txt").write_text(merges_text, encoding="utf-8")
        write_json(tokenizer_config(pad), d / "tokenizer_config.json")
        write_json(special_tokens_map(pad), d / "special_tokens_map.json")
