#!/usr/bin/env python3
"""Full-size SDXL benchmark inputs with random weights, streamed to disk tensor by tensor.

    python Benchmarks/make_sdxl_random.py checkpoint OUT.safetensors [--seed S] [--position-ids]
    python Benchmarks/make_sdxl_random.py official-tlora OUTDIR --rank 64 [--seed S] [--drift EPS]
                                          [--drift-seed D] [--step K | --series N]
    python Benchmarks/make_sdxl_random.py kohya-lora OUT.safetensors --rank 32 [--alpha A] [--seed S]
    python Benchmarks/make_sdxl_random.py lycoris-loha OUT.safetensors --rank 8 [--conv-rank 4] [--seed S]
    python Benchmarks/make_sdxl_random.py lycoris-lokr OUT.safetensors --rank 8 [--factor 8] [--seed S]

Run from the repository root with the fixture virtual environment (torch, diffusers, transformers,
safetensors, numpy, PyYAML). The SDXL models are never materialised: diffusers/transformers build
them on the `meta` device, which yields names and shapes only. Names are mapped to the SGM
single-file layout by the fixture generator's own mapping (Fixtures/fixturegen/sgm.py). Tensor data
comes from an inverse-CDF lookup table: a random 16-bit index selects one of 65,536 normal
quantiles, so values are normal-shaped, finite and non-zero, and generation costs one table lookup
per element. Files are written with the layout of the reference safetensors writer (tensors sorted
by dtype alignment, then name; header padded with spaces to a multiple of 8) into a temporary
sibling that is renamed at the end. Each output is re-opened with safetensors.safe_open and checked
(tensor count, shapes, dtypes, parameter count) before a one-line summary is printed.

Per-tensor streams are seeded from (seed, tensor name), so every file is reproducible and a tensor's
values do not depend on which other tensors are in the file.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
import time
import warnings
import zlib
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "Fixtures"))

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
warnings.filterwarnings("ignore")

import torch  # noqa: E402

from fixturegen import sgm  # noqa: E402
from fixturegen import tlora_official as official  # noqa: E402
from fixturegen.configs import TE1_CONFIG, UNET_CONFIG, VAE_CONFIG  # noqa: E402

# ----------------------------------------------------------------------------- SDXL base configs
# The fixture configs carry every key of the published configs; only the sizes differ
# (docs/formats.md, "Architecture", for the UNet; CLIP ViT-L and OpenCLIP ViT-bigG for the text encoders).

SDXL_UNET = dict(
    UNET_CONFIG,
    sample_size=128,
    block_out_channels=(320, 640, 1280),
    transformer_layers_per_block=[1, 2, 10],
    attention_head_dim=[5, 10, 20],
    cross_attention_dim=2048,
    projection_class_embeddings_input_dim=2816,
)
SDXL_VAE = dict(VAE_CONFIG, block_out_channels=(128, 256, 512, 512), sample_size=1024)
SDXL_TE1 = dict(TE1_CONFIG, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                num_attention_heads=12, projection_dim=768, hidden_act="quick_gelu")
SDXL_TE2 = dict(TE1_CONFIG, hidden_size=1280, intermediate_size=5120, num_hidden_layers=32,
                num_attention_heads=20, projection_dim=1280, hidden_act="gelu")
LOGIT_SCALE = 4.6052  # ln(100)

CHECKPOINT_METADATA = {
    "modelspec.sai_model_spec": "1.0.0",
    "modelspec.architecture": "stable-diffusion-xl-v1-base",
    "modelspec.implementation": "https://github.com/Stability-AI/generative-models",
    "modelspec.title": "sdxl-random (random weights, tlkit benchmark input)",
    "modelspec.resolution": "1024x1024",
}

# Expected SDXL numbers [derived from the configs above; cross-checked against the documented
# totals]: diffusers UNet 1,680 tensors / 2,567,463,684 params; VAE 248; CLIP-L 196 (without the
# non-persistent position_ids buffer); OpenCLIP-bigG 32 x 12 + 6 = 390 after stacking q/k/v.
EXPECTED_CHECKPOINT_TENSORS = 1680 + 248 + 196 + 390
EXPECTED_UNET_PARAMS = 2_567_463_684

# docs/method.md, "Official checkpoint layout" (T-LoRA, 560 adapted linears, 6 tensors each) and
# docs/formats.md, "kohya" (722 UNet + 264 text-encoder modules, parameters per unit of rank).
TLORA_PARAMS_PER_RANK = 185_866_240 // 64
KOHYA_UNET_MODULES, KOHYA_TE_MODULES = 722, 264
KOHYA_PARAMS_PER_RANK = 2_659_840 + 903_168

# ----------------------------------------------------------------------------- random data

DT_NUMPY = {"F16": np.float16, "F32": np.float32, "I64": np.int64}
DT_ALIGN = {"F16": 2, "F32": 4, "I64": 8}
CHUNK = 1 << 24  # elements per generation step (32 MB of F16)

_Q = None


def _normal_quantiles() -> np.ndarray:
    """The 65,536 quantiles of N(0, 1) at (i + 0.5) / 65536, float64, no zero, |x| < 4.4."""
    global _Q
    if _Q is None:
        p = (torch.arange(65536, dtype=torch.float64) + 0.5) / 65536
        _Q = torch.special.ndtri(p).numpy()
    return _Q


def _table(std: float, dtype, positive: bool = False) -> np.ndarray:
    q = _normal_quantiles()
    t = (np.abs(q) if positive else q) * std
    t = t.astype(dtype)
    tiny = np.finfo(dtype).tiny
    t[np.abs(t) < tiny] = tiny  # never a zero or subnormal after rounding
    assert np.isfinite(t).all()
    return t


def _stream_seed(seed: int, name: str) -> np.random.Generator:
    return np.random.Generator(np.random.SFC64([seed & 0xFFFFFFFF, zlib.crc32(name.encode())]))


def random_chunks(name: str, n: int, table: np.ndarray, seed: int):
    """Yield arrays (dtype of `table`) totalling n elements: table[uniform random 16-bit index]."""
    bitgen = _stream_seed(seed, name).bit_generator
    done = 0
    while done < n:
        k = min(CHUNK, n - done)
        raw = bitgen.random_raw((k + 3) // 4)  # uint64 -> four 16-bit indices
        idx = raw.view(np.uint16)[:k]
        yield np.take(table, idx)
        done += k


# ----------------------------------------------------------------------------- streaming writer

class Spec:
    """One tensor to write: name, dtype string, shape and a generator of numpy chunks."""

    __slots__ = ("name", "dtype", "shape", "make")

    def __init__(self, name, dtype, shape, make):
        self.name, self.dtype, self.shape, self.make = name, dtype, tuple(int(d) for d in shape), make

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return self.numel * np.dtype(DT_NUMPY[self.dtype]).itemsize


def _header_bytes(specs: list, metadata: dict | None) -> bytes:
    head = {}
    if metadata:
        head["__metadata__"] = metadata
    off = 0
    for s in specs:
        head[s.name] = {"dtype": s.dtype, "shape": list(s.shape), "data_offsets": [off, off + s.nbytes]}
        off += s.nbytes
    raw = json.dumps(head, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return raw + b" " * (-len(raw) % 8)


def write_safetensors(path: Path, specs: list, metadata: dict | None = None,
                      data_hash_key: str | None = None) -> dict:
    """Stream `specs` into `path`. With data_hash_key, metadata[data_hash_key] receives the sha256 of
    the data section (header rewritten in place at the end; the placeholder has the same length)."""
    specs = sorted(specs, key=lambda s: (-DT_ALIGN[s.dtype], s.name))
    names = [s.name for s in specs]
    assert len(set(names)) == len(names), "duplicate tensor names"
    metadata = dict(metadata or {})
    if data_hash_key:
        metadata[data_hash_key] = "0" * 64
    header = _header_bytes(specs, metadata)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    h = hashlib.sha256() if data_hash_key else None
    with open(tmp, "wb") as f:
        f.write(len(header).to_bytes(8, "little"))
        f.write(header)
        for s in specs:
            written = 0
            for chunk in s.make(s):
                buf = memoryview(np.ascontiguousarray(chunk, dtype=DT_NUMPY[s.dtype]).reshape(-1)).cast("B")
                f.write(buf)
                if h:
                    h.update(buf)
                written += len(buf)
            assert written == s.nbytes, f"{s.name}: wrote {written} of {s.nbytes} bytes"
        if h:
            metadata[data_hash_key] = h.hexdigest()
            new_header = _header_bytes(specs, metadata)
            assert len(new_header) == len(header)
            f.seek(8)
            f.write(new_header)
    os.replace(tmp, path)
    return metadata


def verify(path: Path, specs: list, expect_count: int | None = None, expect_params: int | None = None) -> dict:
    """Re-open with safetensors and check names, shapes and dtypes; spot-check a few values."""
    from safetensors import safe_open

    want = {s.name: s for s in specs}
    st_dtype = {"F16": torch.float16, "F32": torch.float32, "I64": torch.int64}
    params = 0
    with safe_open(str(path), framework="pt") as f:
        keys = list(f.keys())
        assert set(keys) == set(want), "tensor names differ from the plan"
        for k in keys:
            sl = f.get_slice(k)
            assert tuple(sl.get_shape()) == want[k].shape, f"{k}: shape {sl.get_shape()} != {want[k].shape}"
            assert sl.get_dtype() == want[k].dtype, f"{k}: dtype {sl.get_dtype()}"
            params += want[k].numel
        for k in keys[:: max(1, len(keys) // 8)]:  # a handful of full tensors: finite, non-zero
            t = f.get_tensor(k)
            assert t.dtype == st_dtype[want[k].dtype]
            if t.is_floating_point():
                assert torch.isfinite(t).all() and (t != 0).any(), f"{k}: bad values"
        meta = f.metadata() or {}
    if expect_count is not None:
        assert len(keys) == expect_count, f"{len(keys)} tensors, expected {expect_count}"
    if expect_params is not None:
        assert params == expect_params, f"{params} parameters, expected {expect_params}"
    return {"tensors": len(keys), "parameters": params, "bytes": path.stat().st_size, "metadata_keys": len(meta)}


def summary(kind: str, path: Path, info: dict, seconds: float) -> None:
    print(json.dumps({"kind": kind, "path": str(path), "tensors": info["tensors"],
                      "parameters": info["parameters"], "bytes": info["bytes"],
                      "size_gb": round(info["bytes"] / 1e9, 3), "seconds": round(seconds, 1)}), flush=True)


# ----------------------------------------------------------------------------- meta models

def meta_models(with_vae_te: bool = True):
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    with torch.device("meta"):
        unet = UNet2DConditionModel(**SDXL_UNET)
        if not with_vae_te:
            return unet, None, None, None
        vae = AutoencoderKL(**SDXL_VAE)
        te1 = CLIPTextModel(CLIPTextConfig(**SDXL_TE1))
        te2 = CLIPTextModelWithProjection(CLIPTextConfig(**SDXL_TE2))
    return unet, vae, te1, te2


def published_te(model) -> dict:
    """Keys under `text_model.` (+ `text_projection.`), as the published text encoders."""
    sd = model.state_dict()
    if not hasattr(model, "text_model"):  # transformers >= 5.6 flattens CLIPTextModel
        sd = {f"text_model.{k}": v for k, v in sd.items()}
    return {k: v for k, v in sd.items() if not k.endswith("position_ids")}


def te_module_names(model) -> list:
    """Linear children of CLIPAttention / CLIPMLP, in published naming (kohya TE targets)."""
    out = []
    for name, mod in model.named_modules():
        if type(mod).__name__ in ("CLIPAttention", "CLIPSdpaAttention", "CLIPMLP"):
            for child, sub in mod.named_modules():
                if child and isinstance(sub, torch.nn.Linear):
                    full = f"{name}.{child}"
                    out.append(full if full.startswith("text_model.") else f"text_model.{full}")
    return out


# ----------------------------------------------------------------------------- checkpoint

def _fan_in_std(shape) -> float:
    if len(shape) <= 1:
        return 0.05
    return 1.0 / math.sqrt(math.prod(shape[1:]))


def cmd_checkpoint(args) -> None:
    t0 = time.time()
    unet, vae, te1, te2 = meta_models()
    sd = {}
    sd.update(sgm.unet_to_sgm(unet.state_dict(), SDXL_UNET))
    sd.update(sgm.vae_to_sgm(vae.state_dict(), SDXL_VAE))
    sd.update(sgm.te1_to_sgm(published_te(te1)))
    sd.update(sgm.te2_to_sgm(published_te(te2), SDXL_TE2["num_hidden_layers"], LOGIT_SCALE))
    n_unet = sum(1 for k in sd if k.startswith(sgm.UNET_PREFIX))
    p_unet = sum(v.numel() for k, v in sd.items() if k.startswith(sgm.UNET_PREFIX))
    assert n_unet == 1680 and p_unet == EXPECTED_UNET_PARAMS, (n_unet, p_unet)
    assert len(sd) == EXPECTED_CHECKPOINT_TENSORS, f"{len(sd)} SGM tensors, expected {EXPECTED_CHECKPOINT_TENSORS}"

    tables = {}

    def gen(s):
        if s.name.endswith("logit_scale"):
            yield np.array([LOGIT_SCALE], dtype=np.float16).reshape(())
            return
        std = _fan_in_std(s.shape)
        if std not in tables:
            tables[std] = _table(std, np.float16)
        yield from random_chunks(s.name, s.numel, tables[std], args.seed)

    specs = [Spec(k, "F16", v.shape, gen) for k, v in sd.items()]
    if args.position_ids:
        specs.append(Spec(sgm.TE1_PREFIX + "text_model.embeddings.position_ids", "I64", (1, 77),
                          lambda s: iter([np.arange(77, dtype=np.int64)])))
    out = Path(args.out)
    write_safetensors(out, specs, CHECKPOINT_METADATA)
    info = verify(out, specs, EXPECTED_CHECKPOINT_TENSORS + int(args.position_ids))
    summary("checkpoint", out, info, time.time() - t0)


# ----------------------------------------------------------------------------- official T-LoRA

class _ShapeOnlyOrtho(torch.nn.Module):
    """Parameter names and shapes of the official ortho_lora layer (no SVD; meta device)."""

    def __init__(self, in_features, out_features, rank, sig_type=None):
        super().__init__()
        self.q_layer = torch.nn.Linear(in_features, rank, bias=False)
        self.p_layer = torch.nn.Linear(rank, out_features, bias=False)
        self.lambda_layer = torch.nn.Parameter(torch.empty(1, rank))
        self.base_p = torch.nn.Linear(rank, out_features, bias=False)
        self.base_q = torch.nn.Linear(in_features, rank, bias=False)
        self.base_lambda = torch.nn.Parameter(torch.empty(1, rank), requires_grad=False)


TRAINABLE_TO_BASE = {"q_layer.weight": "base_q.weight", "p_layer.weight": "base_p.weight",
                     "lambda_layer": "base_lambda"}


def tlora_shapes(rank: int) -> dict:
    unet, *_ = meta_models(with_vae_te=False)
    official.LAYERS.setdefault("_shape_only_ortho", _ShapeOnlyOrtho)
    with torch.device("meta"):
        procs = official.make_processors(unet, "_shape_only_ortho", rank)
    sd = official.checkpoint_state_dict(procs)
    return {k: tuple(v.shape) for k, v in sd.items()}


def _tlora_std(name: str, shape) -> tuple:
    """Scales of the official init: Q rows and P columns are singular vectors, λ singular values."""
    if name.endswith("lambda_layer") or name.endswith("base_lambda"):
        return 0.05, True  # positive
    if name.endswith("q_layer.weight") or name.endswith("base_q.weight"):
        return 1.0 / math.sqrt(shape[1]), False
    return 1.0 / math.sqrt(shape[0]), False  # p_layer / base_p: [out, r]


def tlora_specs(shapes: dict, seed: int, drift: float | None, drift_seed: int) -> list:
    tables, unit = {}, _table(1.0, np.float32)

    def table_for(name, shape):
        key = _tlora_std(name, shape)
        if key not in tables:
            tables[key] = _table(key[0], np.float32, positive=key[1])
        return tables[key]

    def base_name(name):
        for suffix, base in TRAINABLE_TO_BASE.items():
            if name.endswith("." + suffix):
                return name[: -len(suffix)] + base
        return None

    def gen(s):
        base = base_name(s.name)
        if base is None or drift is None:  # frozen tensor, or independent trainable values
            yield from random_chunks(s.name, s.numel, table_for(s.name, s.shape), seed)
            return
        for b, d in zip(random_chunks(base, s.numel, table_for(base, s.shape), seed),
                        random_chunks(s.name, s.numel, unit, drift_seed)):
            yield b + np.float32(drift) * d

    return [Spec(k, "F32", shape, gen) for k, shape in shapes.items()]


def cmd_official_tlora(args) -> None:
    t0 = time.time()
    rank = args.rank
    shapes = tlora_shapes(rank)
    n_linears = len(shapes) // 6
    assert n_linears == 560 and len(shapes) == 3360, len(shapes)
    expect_params = TLORA_PARAMS_PER_RANK * rank if rank <= 320 else None
    outdir = Path(args.outdir)
    steps = [100 * i for i in range(1, args.series + 1)] if args.series else [args.step]
    drift_seeds = [args.drift_seed + i for i in range(len(steps))]
    if args.series and args.drift is None:
        raise SystemExit("--series needs --drift (checkpoints share their base_* tensors)")
    for step, dseed in zip(steps, drift_seeds):
        t1 = time.time()
        path = outdir / f"checkpoint-{step}" / "pytorch_lora_weights.safetensors"
        specs = tlora_specs(shapes, args.seed, args.drift, dseed)
        write_safetensors(path, specs, {"format": "pt"})
        info = verify(path, specs, 3360, expect_params)
        summary("official-tlora", path, info, time.time() - t1)
    hp = official.hparams("ortho_lora", rank, args.min_rank if args.min_rank is not None else max(1, rank // 2),
                          1.0, max(steps), 100, f"{args.seed & 0xFFFF:04x}")
    (outdir / "logs").mkdir(parents=True, exist_ok=True)
    (outdir / "logs" / "hparams.yml").write_text(official.dump_hparams(hp), encoding="utf-8")
    print(json.dumps({"kind": "official-tlora", "outdir": str(outdir), "checkpoints": len(steps),
                      "seconds": round(time.time() - t0, 1)}), flush=True)


# ----------------------------------------------------------------------------- kohya LoRA

def kohya_modules():
    """(kohya name, in, out) for the 722 UNet (SGM names) and 264 text-encoder modules."""
    unet, _, te1, te2 = meta_models()
    table = sgm.unet_prefix_table(SDXL_UNET)
    mods = []
    for name, mod in unet.named_modules():
        if type(mod).__name__ != "Transformer2DModel":
            continue
        for child, sub in mod.named_modules():
            if child and isinstance(sub, torch.nn.Linear):
                sgm_name = sgm._map_key(f"{name}.{child}.weight", table)[: -len(".weight")]
                assert sgm_name != f"{name}.{child}", f"unmapped {name}.{child}"
                mods.append(("lora_unet_" + sgm_name.replace(".", "_"), sub.in_features, sub.out_features))
    n_unet = len(mods)
    for prefix, model in (("lora_te1_", te1), ("lora_te2_", te2)):
        linears = dict(model.named_modules())
        for pub in te_module_names(model):
            sub = linears.get(pub) or linears[pub[len("text_model."):]]
            mods.append((prefix + pub.replace(".", "_"), sub.in_features, sub.out_features))
    assert n_unet == KOHYA_UNET_MODULES and len(mods) - n_unet == KOHYA_TE_MODULES, (n_unet, len(mods))
    return mods


def kohya_metadata(rank: int, alpha: float, seed: int) -> dict:
    ss = {
        "ss_session_id": str(seed), "ss_training_started_at": "1735689600.0",
        "ss_output_name": "sdxl-random-kohya", "ss_learning_rate": "0.0001", "ss_text_encoder_lr": "5e-05",
        "ss_unet_lr": "0.0001", "ss_num_train_images": "20", "ss_num_reg_images": "0",
        "ss_num_batches_per_epoch": "20", "ss_num_epochs": "10", "ss_gradient_checkpointing": "True",
        "ss_gradient_accumulation_steps": "1", "ss_max_train_steps": "200", "ss_lr_warmup_steps": "0",
        "ss_lr_scheduler": "constant", "ss_network_module": "networks.lora", "ss_network_dim": str(rank),
        "ss_network_alpha": str(float(alpha)), "ss_network_dropout": "None", "ss_mixed_precision": "fp16",
        "ss_full_fp16": "False", "ss_v2": "False", "ss_base_model_version": "sdxl_base_v1-0",
        "ss_clip_skip": "None", "ss_max_token_length": "None", "ss_cache_latents": "True",
        "ss_seed": str(seed), "ss_noise_offset": "None", "ss_optimizer": "torch.optim.adamw.AdamW",
        "ss_min_snr_gamma": "None", "ss_loss_type": "l2", "ss_network_args": "null",
        "ss_training_comment": "random weights (tlkit benchmark input)",
        "ss_sd_model_name": "sd_xl_base_1.0.safetensors", "ss_steps": "200", "ss_epoch": "10",
        "ss_training_finished_at": "1735693200.0",
        "ss_tag_frequency": json.dumps({"img": {"sks dog": 20}}),
        "ss_datasets": json.dumps([{"is_dreambooth": True, "batch_size_per_device": 1, "num_train_images": 20,
                                    "resolution": [1024, 1024], "subsets": [{"class_tokens": "sks dog",
                                                                             "num_repeats": 1}]}]),
    }
    spec = {
        "modelspec.sai_model_spec": "1.0.1",
        "modelspec.architecture": "stable-diffusion-xl-v1-base/lora",
        "modelspec.implementation": "https://github.com/Stability-AI/generative-models",
        "modelspec.title": "sdxl-random-kohya",
        "modelspec.resolution": "1024x1024",
        "modelspec.prediction_type": "epsilon",
        "modelspec.date": "2025-01-01T01:00:00",
    }
    return {**ss, **spec}


def cmd_kohya_lora(args) -> None:
    t0 = time.time()
    rank = args.rank
    alpha = args.alpha if args.alpha is not None else rank / 2
    mods = kohya_modules()
    tables = {}

    def table(std):
        if std not in tables:
            tables[std] = _table(std, np.float16)
        return tables[std]

    def gen_down(s):  # [rank, in]
        yield from random_chunks(s.name, s.numel, table(1.0 / math.sqrt(s.shape[1])), args.seed)

    def gen_up(s):  # [out, rank], trained up-projections are small
        yield from random_chunks(s.name, s.numel, table(0.01), args.seed)

    def gen_alpha(s):
        yield np.array(alpha, dtype=np.float16).reshape(())

    specs = []
    for name, fin, fout in mods:
        specs.append(Spec(f"{name}.lora_down.weight", "F16", (rank, fin), gen_down))
        specs.append(Spec(f"{name}.lora_up.weight", "F16", (fout, rank), gen_up))
        specs.append(Spec(f"{name}.alpha", "F16", (), gen_alpha))
    out = Path(args.out)
    write_safetensors(out, specs, kohya_metadata(rank, alpha, args.seed), data_hash_key="sshs_model_hash")
    info = verify(out, specs, 3 * len(mods), KOHYA_PARAMS_PER_RANK * rank + len(mods))
    summary("kohya-lora", out, info, time.time() - t0)


# ----------------------------------------------------------------------------- LyCORIS LoHa / LoKr

def lycoris_conv_modules():
    """(kohya name, in channels, out channels, kernel) of the UNet convolutions LyCORIS adapts with a
    conv dim (resnets' conv1/conv2/conv_shortcut, the down/upsamplers), SGM names."""
    unet, _, _, _ = meta_models(with_vae_te=False)
    table = sgm.unet_prefix_table(SDXL_UNET)
    mods = []
    for name, mod in unet.named_modules():
        if isinstance(mod, torch.nn.Conv2d) and ("resnets." in name or "samplers." in name):
            sgm_name = sgm._map_key(f"{name}.weight", table)[: -len(".weight")]
            assert sgm_name != name, f"unmapped {name}"
            mods.append(("lora_unet_" + sgm_name.replace(".", "_"), mod.in_channels, mod.out_channels, mod.kernel_size[0]))
    return mods


def lycoris_metadata(algo: str, rank: int, conv_rank: int, extra: str, seed: int) -> dict:
    meta = kohya_metadata(rank, 1.0, seed)
    meta["ss_network_module"] = "lycoris.kohya"
    meta["ss_network_args"] = json.dumps({"algo": algo, "conv_dim": str(conv_rank), "conv_alpha": "1", **({"factor": extra} if extra else {})})
    meta["ss_output_name"] = f"sdxl-random-{algo}"
    return meta


def cmd_lycoris(args) -> None:
    """A LyCORIS LoHa or LoKr on every kohya linear module and every resnet/sampler convolution, fp16,
    laid out as LyCORIS' own modules save them (flattened conv factors, no Tucker cores)."""
    from lycoris.functional.general import factorization

    t0 = time.time()
    linear = [(n, i, o, 1) for n, i, o in kohya_modules()]
    convs = lycoris_conv_modules() if args.conv_rank > 0 else []
    tables = {}

    def table(std):
        if std not in tables:
            tables[std] = _table(std, np.float16)
        return tables[std]

    def gen(std):
        def make(s):
            yield from random_chunks(s.name, s.numel, table(std), args.seed)
        return make

    def gen_alpha(s):
        yield np.array(1.0, dtype=np.float16).reshape(())

    specs = []
    for name, fin, fout, k in linear + convs:
        r = args.rank if k == 1 and (name, fin, fout, k) in linear else args.conv_rank
        width = fin * k * k
        specs.append(Spec(f"{name}.alpha", "F16", (), gen_alpha))
        if args.cmd == "lycoris-loha":
            for side in ("1", "2"):
                specs.append(Spec(f"{name}.hada_w{side}_a", "F16", (fout, r), gen(0.1)))
                specs.append(Spec(f"{name}.hada_w{side}_b", "F16", (r, width), gen(1.0 / math.sqrt(width))))
        else:
            a, b = factorization(fout, args.factor)
            c, d = factorization(fin, args.factor)
            specs.append(Spec(f"{name}.lokr_w1", "F16", (a, c), gen(0.1)))
            if r < max(b, d) / 2:
                specs.append(Spec(f"{name}.lokr_w2_a", "F16", (b, r), gen(0.1)))
                specs.append(Spec(f"{name}.lokr_w2_b", "F16", (r, d * k * k), gen(1.0 / math.sqrt(d * k * k))))
            else:
                specs.append(Spec(f"{name}.lokr_w2", "F16", (b, d, k, k) if k > 1 else (b, d), gen(0.01)))
    algo = "loha" if args.cmd == "lycoris-loha" else "lokr"
    out = Path(args.out)
    write_safetensors(out, specs, lycoris_metadata(algo, args.rank, args.conv_rank, str(args.factor) if algo == "lokr" else "", args.seed),
                      data_hash_key="sshs_model_hash")
    info = verify(out, specs, len(specs))
    summary(f"lycoris-{algo}", out, info, time.time() - t0)


# ----------------------------------------------------------------------------- CLI

def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("checkpoint", help="SGM single-file SDXL base checkpoint, fp16 (~6.9 GB)")
    c.add_argument("out")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--position-ids", action="store_true",
                   help="also store CLIP-L embeddings.position_ids (I64 [1, 77]) as some published files do")
    c.set_defaults(fn=cmd_checkpoint)
    t = sub.add_parser("official-tlora", help="official T-LoRA (ortho_lora) checkpoint folder, F32")
    t.add_argument("outdir")
    t.add_argument("--rank", type=int, default=64)
    t.add_argument("--min-rank", type=int, default=None, help="hparams.yml min_rank (default rank/2)")
    t.add_argument("--seed", type=int, default=0, help="seed of the frozen base_* tensors")
    t.add_argument("--drift", type=float, default=None,
                   help="trainable tensors = base_* + DRIFT * N(0,1); without it they are independent")
    t.add_argument("--drift-seed", type=int, default=1, help="seed of the drift noise (series: +i per checkpoint)")
    g = t.add_mutually_exclusive_group()
    g.add_argument("--step", type=int, default=100, help="write checkpoint-STEP (default 100)")
    g.add_argument("--series", type=int, default=0, help="write checkpoint-100 .. checkpoint-(N*100)")
    t.set_defaults(fn=cmd_official_tlora)
    k = sub.add_parser("kohya-lora", help="kohya sd-scripts SDXL LoRA (SGM names, UNet + both TEs), fp16")
    k.add_argument("out")
    k.add_argument("--rank", type=int, default=32)
    k.add_argument("--alpha", type=float, default=None, help="network alpha (default rank/2)")
    k.add_argument("--seed", type=int, default=0)
    k.set_defaults(fn=cmd_kohya_lora)
    for algo in ("loha", "lokr"):
        y = sub.add_parser(f"lycoris-{algo}", help=f"LyCORIS {algo} on every kohya linear and every resnet/sampler convolution, fp16")
        y.add_argument("out")
        y.add_argument("--rank", type=int, default=8, help="lora_dim of linear modules")
        y.add_argument("--conv-rank", type=int, default=4, help="conv_dim of convolutions (0: none)")
        y.add_argument("--factor", type=int, default=8, help="LoKr factorization factor")
        y.add_argument("--seed", type=int, default=0)
        y.set_defaults(fn=cmd_lycoris)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    args.fn(args)


if __name__ == "__main__":
    main()
