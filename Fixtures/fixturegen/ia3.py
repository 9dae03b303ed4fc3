"""Group `ia3`: (IA)³ adapters on layers of the tiny SDXL UNet in both spellings, and the weights each
library's own merge gives.

- LyCORIS: its IA3Module on each layer (`train_on_input` on two of them), the network's state dict saved as
  LyCORIS' `save_weights` saves it without a dtype (`<kohya name>.weight` float32, `<kohya name>.on_input`
  int64). Merged weight: the module's `get_merged_weight`, W ⊙ (1 + v) along the scaled axis.
- PEFT: `IA3Config` with `feedforward_modules` (input side) on the same layers, saved with `save_pretrained`
  (adapter_model.safetensors, `…<module path>.ia3_l`, + adapter_config.json). Merged weight and bias: the
  layer's `merge()`, W ⊙ l, and b ⊙ l for a module scaled on its output.

Writes adapters/ia3/lycoris.safetensors, adapters/peft-ia3/{adapter_model.safetensors,adapter_config.json}
and reference/ia3_merged.safetensors, whose keys are `<lycoris|peft>/unet.<module path>.<weight|bias>`
(float32, the checkpoint's shape: both merge into the UNet as loaded from the fp16 diffusers folder and
upcast to float32). Each merged layer is checked against the adapted layer's forward pass.
"""

from __future__ import annotations

import json

import torch

from .common import Context, check, log, randn, save_safetensors
from .lycoris_families import CONV, LINEAR, LINEAR_2, SHORTCUT, kohya_name

# module path → scaled on the input (LyCORIS `train_on_input`, PEFT `feedforward_modules`)
TARGETS = {
    LINEAR: False,     # Linear(64, 64): square, so only on_input / the config tells the axis
    LINEAR_2: True,    # Linear(512, 128), with a bias
    CONV: False,       # Conv2d(32, 64, 3), with a bias (PEFT scales it)
    SHORTCUT: True,    # Conv2d(32, 64, 1)
}


def _inputs(layer, tag: str):
    if isinstance(layer, torch.nn.Conv2d):
        return randn((2, layer.in_channels, 8, 8), tag)
    return randn((2, layer.in_features), tag)


def build_lycoris(ctx: Context, reference: dict) -> None:
    from diffusers import UNet2DConditionModel
    from lycoris.modules import IA3Module

    unet = UNet2DConditionModel.from_pretrained(ctx.pipeline_dir / "unet", torch_dtype=torch.float32, local_files_only=True)
    state = {}
    for path, on_input in TARGETS.items():
        layer = unet.get_submodule(path)
        name = kohya_name(path)
        module = IA3Module(name, layer, multiplier=1.0, train_on_input=on_input)
        with torch.no_grad():
            # LyCORIS starts v at 0 (scale 1 + v = 1); a random v makes the scaling show.
            module.weight.copy_(randn(module.weight.shape, f"ia3/lycoris/{path}", 0.3))
        module.apply_to()
        with torch.no_grad():
            merged, _ = module.get_merged_weight(multiplier=1.0)
            x = _inputs(layer, f"ia3/x/{path}")
            got = module(x)
            module.restore()
            if isinstance(layer, torch.nn.Conv2d):
                want = torch.nn.functional.conv2d(x, merged, layer.bias, stride=layer.stride, padding=layer.padding)
            else:
                want = torch.nn.functional.linear(x, merged, layer.bias)
            check(torch.allclose(got, want, atol=1e-4 * want.abs().max().item()), f"ia3 lycoris {path}: forward disagrees with the merged weight")
        for key, value in module.state_dict().items():
            state[f"{name}.{key}"] = value.detach().contiguous()
        reference[f"lycoris/unet.{path}.weight"] = merged.detach().float().contiguous()
    check(state[f"{kohya_name(LINEAR_2)}.on_input"].dtype == torch.int64, "ia3 lycoris: on_input is not the int64 buffer")
    out = ctx.adapters / "ia3"
    out.mkdir(parents=True, exist_ok=True)
    save_safetensors(state, out / "lycoris.safetensors")
    log(f"ia3: lycoris: {sorted(state)}")


def build_peft(ctx: Context, reference: dict) -> None:
    from diffusers import UNet2DConditionModel
    from peft import IA3Config, get_peft_model

    unet = UNet2DConditionModel.from_pretrained(ctx.pipeline_dir / "unet", torch_dtype=torch.float32, local_files_only=True)
    config = IA3Config(target_modules=list(TARGETS), feedforward_modules=[p for p, ff in TARGETS.items() if ff])
    model = get_peft_model(unet, config)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters()):
            if ".ia3_l." in name:
                # PEFT starts l at 1; move it away so the scaling shows.
                p.copy_(1 + randn(p.shape, f"ia3/peft/{name}", 0.3))
    model.eval()
    out = ctx.adapters / "peft-ia3"
    model.save_pretrained(out)
    (out / "README.md").unlink()  # PEFT's model card template: nothing the tests read
    _sort_module_lists(out / "adapter_config.json")
    for path in TARGETS:
        layer = model.base_model.model.get_submodule(path)
        base = layer.get_base_layer()
        with torch.no_grad():
            x = _inputs(base, f"ia3/x/{path}")
            before = layer(x)
            layer.merge()
            after = base(x)
            check(torch.allclose(before, after, atol=1e-4 * before.abs().max().item()), f"ia3 peft {path}: merged layer disagrees with the adapted forward")
        reference[f"peft/unet.{path}.weight"] = base.weight.detach().float().contiguous()
        if base.bias is not None:
            reference[f"peft/unet.{path}.bias"] = base.bias.detach().float().contiguous()
    from safetensors import safe_open

    with safe_open(str(out / "adapter_model.safetensors"), "pt") as f:
        keys = sorted(f.keys())
    check(len(keys) == len(TARGETS) and all(k.startswith("base_model.model.") and k.endswith(".ia3_l") for k in keys), f"ia3 peft: unexpected keys {keys}")
    log(f"ia3: peft: {keys}")


def _sort_module_lists(path) -> None:
    """PEFT writes its module sets in hash order; sorted, the file is the same on every run (same JSON style)."""
    config = json.loads(path.read_text(encoding="utf-8"))
    for key in ("target_modules", "feedforward_modules"):
        config[key] = sorted(config[key])
    path.write_text(json.dumps(config, indent=2, sort_keys=True), encoding="utf-8")


def build(ctx: Context) -> None:
    reference = {}
    build_lycoris(ctx, reference)
    build_peft(ctx, reference)
    save_safetensors(reference, ctx.reference / "ia3_merged.safetensors")
