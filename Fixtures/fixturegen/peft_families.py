"""Group `peft_families`: PEFT LoHa and LoKr adapters (`LoHaConfig`, `LoKrConfig`) on layers of the tiny
SDXL UNet, saved with PEFT's own `save_pretrained` (adapter_model.safetensors + adapter_config.json), with
reference ΔW from PEFT's `get_delta_weight`, checked against the adapted layer's forward pass.

Writes adapters/peft-<id>/{adapter_model.safetensors, adapter_config.json} and
reference/peft_families_delta.safetensors, whose keys are `<id>/<module path>` ([out, in] float32, the
flattened kernel window for convolutions).
"""

from __future__ import annotations

import torch

from .common import Context, check, log, randn, save_safetensors
from .lycoris_families import CONV_SMALL, DOWNSAMPLER, LINEAR, SHORTCUT


def configs():
    from peft import LoHaConfig, LoKrConfig

    return {
        # Convolutions flattened (use_effective_conv2d off); one module with its own alpha.
        "loha": LoHaConfig(r=3, alpha=6, target_modules=[LINEAR, CONV_SMALL, SHORTCUT], alpha_pattern={CONV_SMALL: 4}),
        # The Tucker ("effective conv2d") form on 3×3 kernels; 1×1 stays flattened.
        "loha-effective": LoHaConfig(r=2, alpha=3, target_modules=[DOWNSAMPLER, SHORTCUT], use_effective_conv2d=True),
        # r = 8 on LINEAR makes both Kronecker sides whole (PEFT still scales by alpha / r there); r = 1
        # on CONV_SMALL keeps its w2 a product with the kernel flattened into lokr_w2_b.
        "lokr": LoKrConfig(r=2, alpha=3, decompose_factor=8, target_modules=[LINEAR, CONV_SMALL, SHORTCUT],
                           rank_pattern={LINEAR: 8, CONV_SMALL: 1}),
        # r = 1: CONV_SMALL's w2 is a Tucker core lokr_t2 with w2_a, w2_b; DOWNSAMPLER's too.
        "lokr-effective": LoKrConfig(r=1, alpha=5, decompose_factor=8, decompose_both=True, use_effective_conv2d=True,
                                     target_modules=[CONV_SMALL, DOWNSAMPLER]),
    }


def build(ctx: Context) -> None:
    from diffusers import UNet2DConditionModel
    from peft import get_peft_model

    reference = {}
    for file_id, config in configs().items():
        unet = UNet2DConditionModel.from_pretrained(ctx.pipeline_dir / "unet", torch_dtype=torch.float32, local_files_only=True)
        model = get_peft_model(unet, config)
        with torch.no_grad():
            for name, p in sorted(model.named_parameters()):
                if any(part in name for part in (".hada_", ".lokr_")):
                    p.copy_(randn(p.shape, f"peft_families/{file_id}/{name}", 0.3))
        model.eval()
        out = ctx.adapters / f"peft-{file_id}"
        model.save_pretrained(out)
        (out / "README.md").unlink()  # PEFT's model card template: nothing the tests read
        for path in config.target_modules:
            layer = model.base_model.model.get_submodule(path)
            base = layer.get_base_layer()
            with torch.no_grad():
                delta = layer.get_delta_weight("default")
                if isinstance(base, torch.nn.Conv2d):
                    x = randn((2, base.in_channels, 8, 8), f"peft_families/x/{path}")
                    want = torch.nn.functional.conv2d(x, delta, stride=base.stride, padding=base.padding)
                else:
                    x = randn((2, base.in_features), f"peft_families/x/{path}")
                    want = x @ delta.T
                got = layer(x) - base(x)
                check(torch.allclose(got, want, atol=1e-4 * want.abs().max().item()), f"{file_id}/{path}: forward disagrees with get_delta_weight")
            reference[f"{file_id}/{path}"] = delta.reshape(delta.shape[0], -1).float().contiguous()
        keys = sorted(_keys(out / "adapter_model.safetensors"))
        check(all(k.startswith("base_model.model.") for k in keys), f"{file_id}: unexpected keys {keys}")
        log(f"peft_families: {file_id}: {keys}")
    save_safetensors(reference, ctx.reference / "peft_families_delta.safetensors")


def _keys(path) -> list[str]:
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        return list(f.keys())
