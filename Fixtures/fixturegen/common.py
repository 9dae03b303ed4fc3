"""Shared helpers: paths, deterministic seeding, random re-initialisation, file I/O."""

from __future__ import annotations

import hashlib
import json
import os
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

BASE_SEED = 20250717


@dataclass
class Context:
    root: Path  # the Fixtures/ folder

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def pipeline_dir(self) -> Path:
        return self.root / "models" / "tiny-sdxl"

    @property
    def adapters(self) -> Path:
        return self.root / "adapters"

    @property
    def reference(self) -> Path:
        return self.root / "reference"

    @property
    def vocab_gz(self) -> Path:
        return self.root.parent / "Sources" / "Tokenizer" / "Resources" / "bpe_simple_vocab_16e6.txt.gz"


def seed_for(tag: str) -> int:
    """A stable 63-bit seed derived from a text tag (independent of creation order)."""
    return (BASE_SEED * 1_000_003 + zlib.crc32(tag.encode("utf-8"))) % (2**63 - 1)


def gen(tag: str) -> torch.Generator:
    return torch.Generator(device="cpu").manual_seed(seed_for(tag))


def randn(shape, tag: str, std: float = 1.0, dtype=torch.float32) -> torch.Tensor:
    return (torch.randn(tuple(shape), generator=gen(tag), dtype=torch.float64) * std).to(dtype)


_NORM_TYPES = (torch.nn.GroupNorm, torch.nn.LayerNorm)


@torch.no_grad()
def randomize_module(model: torch.nn.Module, tag: str) -> None:
    """Re-initialise every parameter so that no code path sees zeros or ones.

    * norm weights: 1 + 0.1 N(0,1); norm biases: 0.05 N(0,1)
    * embeddings (token/position tables): N(0,1) resp. 0.5 N(0,1)
    * linear / conv weights: N(0, 1/fan_in), so activations stay O(1)
    * other biases: 0.05 N(0,1)
    Each tensor uses its own generator seeded by ``tag/<parameter name>``.
    """
    norm_params = set()
    embedding_params = set()
    for mname, mod in model.named_modules():
        prefix = f"{mname}." if mname else ""
        if isinstance(mod, _NORM_TYPES):
            norm_params.update(prefix + n for n, _ in mod.named_parameters(recurse=False))
        if isinstance(mod, torch.nn.Embedding):
            embedding_params.update(prefix + n for n, _ in mod.named_parameters(recurse=False))
    for name, p in model.named_parameters():
        t = f"{tag}/{name}"
        if name in norm_params:
            if name.endswith("weight"):
                val = 1.0 + randn(p.shape, t, 0.1)
            else:
                val = randn(p.shape, t, 0.05)
        elif name in embedding_params:
            std = 0.5 if "position" in name else 1.0
            val = randn(p.shape, t, std)
        elif name.endswith("bias"):
            val = randn(p.shape, t, 0.05)
        elif p.dim() >= 2:
            fan_in = p.shape[1] * (p[0, 0].numel() if p.dim() > 2 else 1)
            val = randn(p.shape, t, fan_in ** -0.5)
        else:
            val = randn(p.shape, t, 0.05)
        p.copy_(val.to(p.dtype))


def round_to(model: torch.nn.Module, dtype: torch.dtype) -> None:
    """Round parameters to ``dtype`` and back (so float32 copies hold exactly the stored values)."""
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.to(dtype).to(p.dtype))


def save_safetensors(tensors: dict, path: Path, metadata: dict | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    clean = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    save_file(clean, str(path), metadata=metadata)


def load_safetensors(path: Path) -> dict:
    return load_file(str(path))


def read_metadata(path: Path) -> dict:
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(n))
    return header.get("__metadata__", {})


def write_json(obj, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def check(cond: bool, msg: str) -> None:
    if not cond:
        raise AssertionError(msg)


def assert_no_zero_tensors(tensors: dict, what: str) -> None:
    """Every tensor must have a non-zero entry (the 'zero trap' check)."""
    for k, v in tensors.items():
        if v.is_floating_point():
            check(bool((v.float() != 0).any()), f"{what}: tensor {k} is all zeros")
            check(bool(torch.isfinite(v.float()).all()), f"{what}: tensor {k} is not finite")


def setup_torch() -> None:
    torch.set_num_threads(1)  # reproducible reductions
    torch.use_deterministic_algorithms(True)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    import diffusers.utils.logging as dlog
    import transformers.utils.logging as tlog

    dlog.disable_progress_bar()
    tlog.disable_progress_bar()


def log(msg: str) -> None:
    print(msg, flush=True)


def canonicalize_header(path: Path) -> bool:
    """Sort the `__metadata__` keys of a safetensors header in place.

    The safetensors writer keeps metadata in a hash map, so files with two or more metadata keys come
    out in a different key order on each run. Only the order of those keys changes (same length, same
    tensors, same offsets). Returns True when the file was rewritten.
    """
    with open(path, "r+b") as f:
        n = int.from_bytes(f.read(8), "little")
        raw = f.read(n)
        text = raw.decode("utf-8").rstrip(" ")
        pairs = json.loads(text, object_pairs_hook=list)
        dump = lambda obj: json.dumps(_as_obj(obj), ensure_ascii=False, separators=(",", ":"))  # noqa: E731
        check(dump(pairs) == text, f"{path}: header does not round-trip; refusing to rewrite")
        new = [(k, sorted(v) if k == "__metadata__" else v) for k, v in pairs]
        new_text = dump(new)
        if new_text == text:
            return False
        data = new_text.encode("utf-8")
        check(len(data) == len(text.encode("utf-8")), "header length changed")
        f.seek(8)
        f.write(data + b" " * (n - len(data)))
        return True


def _as_obj(pairs):
    """object_pairs_hook=list output back to ordered dicts (tensor entries keep their order)."""
    if isinstance(pairs, list) and all(isinstance(p, tuple) and len(p) == 2 for p in pairs) and pairs:
        return {k: _as_obj(v) for k, v in pairs}
    if isinstance(pairs, list) and not pairs:
        return []
    if isinstance(pairs, list):
        return [_as_obj(v) for v in pairs]
    return pairs


def canonicalize_tree(root: Path) -> None:
    for p in sorted(root.rglob("*.safetensors")):
        canonicalize_header(p)
