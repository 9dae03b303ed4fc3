"""Group `families`: LyCORIS LoCon / LoHa / LoKr / DoRA files written by LyCORIS' own modules on layers of
the tiny SDXL UNet (linear layers, 3×3 and 1×1 convolutions, and the Tucker forms LyCORIS writes with
`use_tucker`), with reference ΔW from the same modules, checked against their forward pass.

Writes adapters/lycoris/<id>.safetensors and reference/families_delta.safetensors, whose keys are
`<id>/<kohya module name>` ([out, in] float32, the flattened kernel window for convolutions).
"""

from __future__ import annotations

import torch

from .common import Context, check, log, randn, save_safetensors

LINEAR = "down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q"   # Linear(64, 64)
LINEAR_2 = "mid_block.attentions.0.transformer_blocks.0.ff.net.2"        # Linear(512, 128)
CONV = "down_blocks.1.resnets.0.conv1"                                   # Conv2d(32, 64, 3)
SHORTCUT = "down_blocks.1.resnets.0.conv_shortcut"                       # Conv2d(32, 64, 1)
DOWNSAMPLER = "down_blocks.0.downsamplers.0.conv"                        # Conv2d(32, 32, 3, stride 2)
CONV_SMALL = "down_blocks.0.resnets.0.conv1"                             # Conv2d(32, 32, 3)

# file id: (LyCORIS module class name, targets, constructor options)
FILES = {
    "locon": ("LoConModule", [LINEAR, CONV], dict(lora_dim=4, alpha=2)),
    "loha": ("LohaModule", [LINEAR, LINEAR_2], dict(lora_dim=3, alpha=1.5)),
    "lokr": ("LokrModule", [LINEAR, LINEAR_2], dict(lora_dim=4, alpha=2, factor=8)),
    "lokr-both": ("LokrModule", [LINEAR_2], dict(lora_dim=2, alpha=1, factor=16, decompose_both=True)),
    "lokr-full": ("LokrModule", [LINEAR, LINEAR_2], dict(lora_dim=4, alpha=3, factor=8, full_matrix=True)),
    "dora": ("LoConModule", [LINEAR], dict(lora_dim=4, alpha=4, weight_decompose=True)),
    # Convolutions: LoHa and LoKr flatten the kernel window into their factors (in = Cin·kh·kw); a full
    # LoKr w2 keeps it ([b, d, kh, kw]). LyCORIS never writes a Tucker form for a 1×1 kernel.
    "loha-conv": ("LohaModule", [CONV, SHORTCUT], dict(lora_dim=3, alpha=1.5)),
    "lokr-conv": ("LokrModule", [CONV_SMALL, SHORTCUT], dict(lora_dim=2, alpha=1, factor=8)),
    "lokr-conv-full": ("LokrModule", [CONV_SMALL], dict(lora_dim=4, alpha=3, factor=8, full_matrix=True)),
    # Tucker forms: the kernel sits in a core (lora_mid, hada_t1/hada_t2, lokr_t2).
    "locon-tucker": ("LoConModule", [DOWNSAMPLER], dict(lora_dim=4, alpha=2, use_tucker=True)),
    "loha-tucker": ("LohaModule", [CONV, SHORTCUT], dict(lora_dim=3, alpha=2, use_tucker=True)),
    "lokr-tucker": ("LokrModule", [DOWNSAMPLER], dict(lora_dim=2, alpha=1, factor=8, use_tucker=True)),
}


def delta_via_identity(layer) -> bool:
    return isinstance(layer, torch.nn.Linear)


def kohya_name(path: str) -> str:
    return "lora_unet_" + path.replace(".", "_")


def build(ctx: Context) -> None:
    import lycoris.modules as lm
    from diffusers import UNet2DConditionModel

    unet = UNet2DConditionModel.from_pretrained(ctx.pipeline_dir / "unet", torch_dtype=torch.float32, local_files_only=True)
    out_dir = ctx.adapters / "lycoris"
    out_dir.mkdir(parents=True, exist_ok=True)
    reference = {}
    for file_id, (cls_name, targets, options) in FILES.items():
        tensors = {}
        for path in targets:
            layer = unet.get_submodule(path)
            name = kohya_name(path)
            module = getattr(lm, cls_name)(name, layer, multiplier=1.0, **options)
            with torch.no_grad():
                for key, p in sorted(module.named_parameters()):
                    if key.startswith("org_") or key == "scalar":
                        continue
                    p.copy_(randn(p.shape, f"families/{file_id}/{path}/{key}", 0.3))
                if "dora_scale" in dict(module.named_parameters()):
                    w = layer.weight.detach()
                    norm = w.reshape(w.shape[0], -1).norm(dim=1).reshape(module.dora_scale.shape)
                    module.dora_scale.copy_(norm * (1 + 0.1 * randn(norm.shape, f"families/{file_id}/{path}/m")))
            module.apply_to()
            with torch.no_grad():
                state = module.custom_state_dict()
                if delta_via_identity(layer):
                    # The module's forward on the identity: the ΔW it applies. (LyCORIS 4.1.3's
                    # get_diff_weight scales LoHa and LoKr by alpha/dim twice; forward and every loader
                    # scale once.)
                    eye = torch.eye(layer.weight.shape[1])
                    delta = (module(eye) - module.org_forward(eye)).T
                else:
                    if cls_name == "LoConModule":
                        delta, _ = module.get_diff_weight(multiplier=1.0)
                    else:
                        # What forward adds (get_diff_weight would scale a second time, see above).
                        delta = module.get_weight(module.shape) * module.scalar
                    x = randn((3, layer.weight.shape[1], 8, 8), f"families/x/{path}")
                    got = module(x) - module.org_forward(x)
                    want = torch.nn.functional.conv2d(x, delta, stride=layer.stride, padding=layer.padding)
                    check(torch.allclose(got, want, atol=1e-4 * want.abs().max().item()), f"{file_id}/{path}: forward disagrees with the reference ΔW")
                module.restore()
            wide_kernel = isinstance(layer, torch.nn.Conv2d) and layer.kernel_size != (1, 1)
            if options.get("use_tucker") and wide_kernel:
                check(any(k in state for k in ("lora_mid.weight", "hada_t1", "lokr_t2")), f"{file_id}/{path}: no Tucker core in {sorted(state)}")
            for key, value in state.items():
                tensors[f"{name}.{key}"] = value.detach().float().contiguous()
            reference[f"{file_id}/{name}"] = delta.reshape(delta.shape[0], -1).float().contiguous()
        save_safetensors(tensors, out_dir / f"{file_id}.safetensors")
        log(f"families: {file_id}: {sorted(tensors)}")
    save_safetensors(reference, ctx.reference / "families_delta.safetensors")
