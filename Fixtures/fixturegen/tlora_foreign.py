"""Group `tlora_foreign`: T-LoRA as other tools write it.

1. LyCORIS T-LoRA (`lycoris.modules.TLoraModule`, the version pinned in requirements.txt) on layers of the
   tiny SDXL UNet. LyCORIS saves only `q_layer.weight`, `p_layer.weight`, `lambda_layer` and `alpha`; its
   loader (`make_module_from_state_dict`) recomputes the frozen part from an SVD of the layer's weight.
   The reference ΔW is taken from a module rebuilt by that loader, at full rank and under prefix masks.
   Writes adapters/lycoris-tlora/tlora.safetensors and reference/tlora_foreign.safetensors with keys
   `lycoris/<kohya module>/delta_r<k>` ([out, in]) and `lycoris/<kohya module>/{base_q,base_p,base_lambda}`.

2. The official repository's FLUX.1-dev vanilla T-LoRA: `torch.save(AttnProcsLayers(...).state_dict())` as
   `checkpoint-N/lora.pt`, keys `<attention processor>.<to_q|to_k|to_v|to_out|to_q_proj|to_k_proj|to_v_proj>_lora.
   {down,up}.weight` for every attention processor of the transformer, plus `logs/hparams.yml`. The
   processor names come from diffusers' tiny `FluxTransformer2DModel`; the layer (down, prefix mask,
   up, no scale) is re-implemented here from the published description. Writes
   adapters/flux-tlora/checkpoint-100/lora.pt, adapters/flux-tlora/logs/hparams.yml and reference keys
   `flux/<processor>.<layer>/delta_r<k>`.
"""

from __future__ import annotations

import torch

from .common import Context, check, log, randn, save_safetensors

# LyCORIS targets: (diffusers path, rank, alpha).
LYCORIS_TARGETS = [
    ("down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q", 4, 2.0),   # Linear(64, 64)
    ("mid_block.attentions.0.transformer_blocks.0.ff.net.2", 4, 2.0),        # Linear(512, 128)
    ("down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k", 4, 2.0),  # cross-attention key
]
LYCORIS_MASK_RANKS = [4, 3, 2]

FLUX_RANK = 4
FLUX_MIN_RANK = 2
FLUX_STEPS = 100
FLUX_MASK_RANKS = [4, 3, 2]
# The layers the official processor applies: every projection in a double block (`to_*_proj` act on the
# text stream's add_*_proj), only q, k, v in a single block (no output projection, no text stream).
DOUBLE_LAYERS = ["to_q", "to_k", "to_v", "to_out", "to_q_proj", "to_k_proj", "to_v_proj"]
SINGLE_APPLIED = ["to_q", "to_k", "to_v"]


def kohya_name(path: str) -> str:
    return "lora_unet_" + path.replace(".", "_")


def build_lycoris(ctx: Context, reference: dict) -> None:
    from diffusers import UNet2DConditionModel
    from lycoris.modules.tlora import TLoraModule, clear_timestep_mask, set_timestep_mask

    unet = UNet2DConditionModel.from_pretrained(ctx.pipeline_dir / "unet", torch_dtype=torch.float32, local_files_only=True)
    tensors = {}
    for path, rank, alpha in LYCORIS_TARGETS:
        layer = unet.get_submodule(path)
        name = kohya_name(path)
        trained = TLoraModule(name, layer, multiplier=1.0, lora_dim=rank, alpha=alpha)
        # "Training": move the trainable factors away from their SVD start.
        with torch.no_grad():
            trained.q_layer.weight.add_(randn(trained.q_layer.weight.shape, f"tlora_foreign/{path}/q", 0.2))
            trained.p_layer.weight.add_(randn(trained.p_layer.weight.shape, f"tlora_foreign/{path}/p", 0.2))
            trained.lambda_layer.mul_(1 + 0.5 * randn(trained.lambda_layer.shape, f"tlora_foreign/{path}/lambda"))
        state = trained.custom_state_dict()
        check(sorted(state) == ["alpha", "lambda_layer", "p_layer.weight", "q_layer.weight"], f"unexpected LyCORIS keys {sorted(state)}")
        for key, value in state.items():
            tensors[f"{name}.{key}"] = value.detach().float().contiguous()
        # What a LyCORIS loader applies: the module rebuilt from the saved tensors and the base weight.
        loaded = TLoraModule.make_module_from_state_dict(
            name, layer, state["q_layer.weight"].detach(), state["p_layer.weight"].detach(),
            state["lambda_layer"].detach(), state["alpha"].detach())
        with torch.no_grad():
            for key in ["base_q", "base_p", "base_lambda"]:
                reference[f"lycoris/{name}/{key}"] = getattr(loaded, key).detach().float().contiguous()
            for r in LYCORIS_MASK_RANKS:
                mask = torch.zeros((1, rank))
                mask[:, :r] = 1.0
                set_timestep_mask(mask)
                delta, _ = loaded.get_diff_weight(multiplier=1.0)
                # The same ΔW through the module's forward on the identity.
                eye = torch.eye(layer.weight.shape[1])
                loaded.apply_to()
                via_forward = (loaded(eye) - loaded.org_forward(eye)).T
                loaded.restore()
                clear_timestep_mask()
                scale = delta.abs().max().item()
                check(scale > 0, f"{path}: zero ΔW at rank {r}")
                check(torch.allclose(delta, via_forward, atol=1e-5 * scale), f"{path}: forward disagrees with get_diff_weight")
                reference[f"lycoris/{name}/delta_r{r}"] = delta.float().contiguous()
    out_dir = ctx.adapters / "lycoris-tlora"
    out_dir.mkdir(parents=True, exist_ok=True)
    save_safetensors(tensors, out_dir / "tlora.safetensors")
    log(f"tlora_foreign: LyCORIS T-LoRA: {sorted(tensors)}")


class OfficialFluxLayer(torch.nn.Module):
    """down (N(0, 1/r) at init), up, mask between them, no scale: as the official FLUX vanilla layer."""

    def __init__(self, width: int, rank: int) -> None:
        super().__init__()
        self.rank = rank
        self.down = torch.nn.Linear(width, rank, bias=False)
        self.up = torch.nn.Linear(rank, width, bias=False)
        torch.nn.init.zeros_(self.up.weight)

    def forward(self, x, mask=None):
        if mask is None:
            mask = torch.ones((1, self.rank))
        return self.up(self.down(x) * mask)


class OfficialFluxProcessor(torch.nn.Module):
    def __init__(self, width: int, rank: int) -> None:
        super().__init__()
        for layer in DOUBLE_LAYERS:
            setattr(self, f"{layer}_lora", OfficialFluxLayer(width, rank))


def build_flux(ctx: Context, reference: dict) -> None:
    import yaml
    from diffusers import FluxTransformer2DModel
    from diffusers.loaders import AttnProcsLayers

    transformer = FluxTransformer2DModel(
        patch_size=1, in_channels=4, num_layers=1, num_single_layers=2, attention_head_dim=8,
        num_attention_heads=2, joint_attention_dim=16, pooled_projection_dim=16, axes_dims_rope=(2, 2, 4))
    width = transformer.inner_dim
    names = sorted(transformer.attn_processors)
    check(all(n.endswith("attn.processor") for n in names), f"unexpected processor names {names}")
    processors = {}
    for name in names:
        proc = OfficialFluxProcessor(width, FLUX_RANK)
        single = name.startswith("single_transformer_blocks.")
        with torch.no_grad():
            for layer in DOUBLE_LAYERS:
                lora = getattr(proc, f"{layer}_lora")
                torch.nn.init.normal_(lora.down.weight, std=1 / FLUX_RANK)
                lora.down.weight.copy_(randn(lora.down.weight.shape, f"tlora_foreign/flux/{name}/{layer}/down", 1 / FLUX_RANK))
                # Layers a single block never calls keep their zero `up` (they receive no gradient).
                if not single or layer in SINGLE_APPLIED:
                    lora.up.weight.copy_(randn(lora.up.weight.shape, f"tlora_foreign/flux/{name}/{layer}/up", 0.1))
                    eye = torch.eye(width)
                    for r in FLUX_MASK_RANKS:
                        mask = torch.zeros((1, FLUX_RANK))
                        mask[:, :r] = 1.0
                        reference[f"flux/{name}.{layer}/delta_r{r}"] = lora(eye, mask).T.float().contiguous()
        processors[name] = proc
    lora_layers = AttnProcsLayers(processors)
    state = lora_layers.state_dict()
    check(all(".processor." in k and k.endswith((".down.weight", ".up.weight")) for k in state), f"unexpected keys {sorted(state)[:4]}")
    folder = ctx.adapters / "flux-tlora"
    (folder / f"checkpoint-{FLUX_STEPS}").mkdir(parents=True, exist_ok=True)
    (folder / "logs").mkdir(parents=True, exist_ok=True)
    torch.save(state, folder / f"checkpoint-{FLUX_STEPS}" / "lora.pt")
    # A subset of the trainer's `vars(args)` dump: the fields that describe the checkpoint.
    hparams = {
        "tlora": True, "rank": FLUX_RANK, "min_rank": FLUX_MIN_RANK, "placeholder_token": "sks", "class_name": "dog",
        "pretrained_model_name_or_path": "black-forest-labs/FLUX.1-dev", "output_dir": "trained-flux-tlora_dog",
        "max_train_steps": FLUX_STEPS, "checkpointing_steps": FLUX_STEPS, "learning_rate": 1e-4, "seed": 0,
    }
    (folder / "logs" / "hparams.yml").write_text(yaml.dump(hparams))
    log(f"tlora_foreign: FLUX lora.pt: {len(state)} tensors, {len(names)} processors")


def build(ctx: Context) -> None:
    reference: dict = {}
    build_lycoris(ctx, reference)
    build_flux(ctx, reference)
    save_safetensors(reference, ctx.reference / "tlora_foreign.safetensors")
