"""Group `dora`: a PEFT DoRA adapter (`use_dora=True`) on layers of the tiny SDXL UNet, saved as the
diffusers/PEFT pipeline saves LoRAs, and the weights PEFT's own merge gives for those layers.

Writes adapters/dora/pytorch_lora_weights.safetensors and reference/dora_merged.safetensors, whose keys
are `unet.<module path>.weight` (float32, the checkpoint's shape: PEFT merges into the UNet as loaded
from the fp16 diffusers folder and upcast to float32).
"""

from __future__ import annotations

import torch

from .adapters import _adapter_metadata
from .common import Context, check, log, randn, save_safetensors

TARGETS = [
    "down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q",   # Linear(64, 64)
    "mid_block.attentions.0.transformer_blocks.0.ff.net.2",         # Linear(512, 128)
    "down_blocks.1.resnets.0.conv1",                                # Conv2d(32, 64, 3)
]


def build(ctx: Context) -> None:
    from diffusers import StableDiffusionXLPipeline, UNet2DConditionModel
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    unet = UNet2DConditionModel.from_pretrained(ctx.pipeline_dir / "unet", torch_dtype=torch.float32, local_files_only=True)
    unet.add_adapter(LoraConfig(r=4, lora_alpha=8, use_dora=True, target_modules=TARGETS, init_lora_weights=True))
    with torch.no_grad():
        for name, p in sorted(unet.named_parameters()):
            if ".lora_A." in name:
                p.copy_(randn(p.shape, f"dora/{name}", p[0].numel() ** -0.5))
            elif ".lora_B." in name:
                p.copy_(randn(p.shape, f"dora/{name}", 0.05))
        for name, p in sorted(unet.named_parameters()):
            if ".lora_magnitude_vector." in name:
                # m starts as ‖W + s·BA‖ per output row; move it away so the rescaling shows.
                p.mul_(1 + 0.2 * randn(p.shape, f"dora/{name}"))
    state = get_peft_model_state_dict(unet)
    check(sum("lora_magnitude_vector" in k for k in state) == len(TARGETS), f"dora: magnitude vectors {sorted(state)}")
    out = ctx.adapters / "dora"
    StableDiffusionXLPipeline.save_lora_weights(out, unet_lora_layers=state, unet_lora_adapter_metadata=_adapter_metadata(unet))
    log(f"dora: {sorted(state)}")
    reference = {}
    unet.eval()
    for path in TARGETS:
        layer = unet.get_submodule(path)
        with torch.no_grad():
            x = randn((2, layer.base_layer.weight.shape[1], 8, 8) if layer.base_layer.weight.dim() == 4 else (2, layer.base_layer.weight.shape[1]), f"dora/x/{path}")
            before = layer(x)
            layer.merge()
            after = layer.base_layer(x)
            check(torch.allclose(before, after, atol=1e-4 * before.abs().max().item()), f"dora {path}: merged layer disagrees with the adapted forward")
            reference[f"unet.{path}.weight"] = layer.base_layer.weight.detach().float().contiguous()
    save_safetensors(reference, ctx.reference / "dora_merged.safetensors")
