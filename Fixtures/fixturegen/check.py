"""`--check DIR`: load a LoRA written by tlkit with diffusers and compare its UNet effect.

Stub of the planned check mode: it loads the kohya/PEFT/diffusers LoRA found in DIR (a folder with one
.safetensors file, or the file itself) with `pipe.load_lora_weights` into the fixture pipeline, runs the
UNet on the reference inputs at t=500 and prints |out(DIR) − out(REF)| / |out(REF) − out(base)| against a
reference adapter (default: the PEFT fixture). Exit status 0 when that is ≤ 1e-4, else 1.
Planned: T-LoRA files (per-step mask), text-encoder outputs, every file of a tlkit output tree.
"""

from __future__ import annotations

from pathlib import Path

import torch

from .adapters import load_pipeline
from .common import Context, log
from .unet_ref import forward, make_inputs

TOLERANCE = 1e-4
TIMESTEP = 500


def _locate(path: Path) -> tuple[Path, str]:
    if path.is_file():
        return path.parent, path.name
    files = sorted(path.glob("*.safetensors"))
    if len(files) != 1:
        raise SystemExit(f"{path}: expected one .safetensors file, found {[f.name for f in files]}")
    return path, files[0].name


@torch.no_grad()
def _output_with(pipe, path: Path, inp: dict) -> torch.Tensor:
    folder, name = _locate(path)
    pipe.load_lora_weights(str(folder), weight_name=name, adapter_name="check")
    try:
        return forward(pipe.unet, inp, TIMESTEP)
    finally:
        pipe.unload_lora_weights()


def run(ctx: Context, target: Path, against: Path) -> int:
    pipe = load_pipeline(ctx)
    inp = make_inputs()
    with torch.no_grad():
        base = forward(pipe.unet, inp, TIMESTEP)
    got = _output_with(pipe, target, inp)
    ref = _output_with(pipe, against, inp)
    effect = ((ref - base).norm() / base.norm()).item()
    rel = ((got - ref).norm() / (ref - base).norm()).item()
    log(f"check: {target} vs {against} at t={TIMESTEP}")
    log(f"  reference effect |ref - base| / |base| = {effect:.4e}")
    log(f"  |out - ref| / |ref - base| = {rel:.4e} (tolerance {TOLERANCE:g})")
    return 0 if rel <= TOLERANCE else 1
