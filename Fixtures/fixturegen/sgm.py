"""diffusers -> SGM ("original" single-file SDXL) key mapping, built from the model config.

Inverse of diffusers' loaders/single_file_utils.py (convert_ldm_unet_checkpoint,
convert_ldm_vae_checkpoint, convert_ldm_clip_checkpoint, convert_open_clip_checkpoint).
"""

from __future__ import annotations

import torch

from .common import check

UNET_PREFIX = "model.diffusion_model."
VAE_PREFIX = "first_stage_model."
TE1_PREFIX = "conditioner.embedders.0.transformer."
TE2_PREFIX = "conditioner.embedders.1.model."

UNET_RESNET_INNER = {
    "norm1": "in_layers.0",
    "conv1": "in_layers.2",
    "time_emb_proj": "emb_layers.1",
    "norm2": "out_layers.0",
    "conv2": "out_layers.3",
    "conv_shortcut": "skip_connection",
}
VAE_RESNET_INNER = {"conv_shortcut": "nin_shortcut"}
VAE_ATTN_INNER = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "proj_out"}


def unet_prefix_table(cfg) -> dict:
    """diffusers module prefix -> (SGM module prefix, inner rename table)."""
    L = cfg["layers_per_block"]
    n = len(cfg["block_out_channels"])
    t = {
        "conv_in": ("input_blocks.0.0", {}),
        "time_embedding.linear_1": ("time_embed.0", {}),
        "time_embedding.linear_2": ("time_embed.2", {}),
        "add_embedding.linear_1": ("label_emb.0.0", {}),
        "add_embedding.linear_2": ("label_emb.0.2", {}),
        "conv_norm_out": ("out.0", {}),
        "conv_out": ("out.2", {}),
        "mid_block.resnets.0": ("middle_block.0", UNET_RESNET_INNER),
        "mid_block.attentions.0": ("middle_block.1", {}),
        "mid_block.resnets.1": ("middle_block.2", UNET_RESNET_INNER),
    }
    for i, btype in enumerate(cfg["down_block_types"]):
        for j in range(L):
            idx = i * (L + 1) + j + 1
            t[f"down_blocks.{i}.resnets.{j}"] = (f"input_blocks.{idx}.0", UNET_RESNET_INNER)
            if "CrossAttn" in btype:
                t[f"down_blocks.{i}.attentions.{j}"] = (f"input_blocks.{idx}.1", {})
        if i < n - 1:
            t[f"down_blocks.{i}.downsamplers.0.conv"] = (f"input_blocks.{(i + 1) * (L + 1)}.0.op", {})
    for i, btype in enumerate(cfg["up_block_types"]):
        has_attn = "CrossAttn" in btype
        for j in range(L + 1):
            idx = i * (L + 1) + j
            t[f"up_blocks.{i}.resnets.{j}"] = (f"output_blocks.{idx}.0", UNET_RESNET_INNER)
            if has_attn:
                t[f"up_blocks.{i}.attentions.{j}"] = (f"output_blocks.{idx}.1", {})
        if i < n - 1:
            t[f"up_blocks.{i}.upsamplers.0.conv"] = (f"output_blocks.{i * (L + 1) + L}.{2 if has_attn else 1}.conv", {})
    return t


def vae_prefix_table(cfg) -> dict:
    n = len(cfg["block_out_channels"])
    L = cfg["layers_per_block"]
    t = {
        "encoder.conv_norm_out": ("encoder.norm_out", {}),
        "decoder.conv_norm_out": ("decoder.norm_out", {}),
    }
    for part in ("encoder", "decoder"):
        t[f"{part}.mid_block.resnets.0"] = (f"{part}.mid.block_1", VAE_RESNET_INNER)
        t[f"{part}.mid_block.resnets.1"] = (f"{part}.mid.block_2", VAE_RESNET_INNER)
        t[f"{part}.mid_block.attentions.0"] = (f"{part}.mid.attn_1", VAE_ATTN_INNER)
    for i in range(n):
        for j in range(L):
            t[f"encoder.down_blocks.{i}.resnets.{j}"] = (f"encoder.down.{i}.block.{j}", VAE_RESNET_INNER)
        if i < n - 1:
            t[f"encoder.down_blocks.{i}.downsamplers.0.conv"] = (f"encoder.down.{i}.downsample.conv", {})
        for j in range(L + 1):  # decoder levels are stored in reverse order in LDM
            t[f"decoder.up_blocks.{i}.resnets.{j}"] = (f"decoder.up.{n - 1 - i}.block.{j}", VAE_RESNET_INNER)
        if i < n - 1:
            t[f"decoder.up_blocks.{i}.upsamplers.0.conv"] = (f"decoder.up.{n - 1 - i}.upsample.conv", {})
    return t


def _map_key(key: str, table: dict) -> str:
    parts = key.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        prefix = ".".join(parts[:cut])
        if prefix in table:
            new_prefix, inner = table[prefix]
            rest = ".".join(parts[cut:])
            for old, new in inner.items():
                if rest.startswith(old + "."):
                    rest = new + rest[len(old):]
                    break
            return f"{new_prefix}.{rest}"
    return key  # identical name in both layouts (e.g. quant_conv.weight)


def unet_to_sgm(sd: dict, cfg) -> dict:
    table = unet_prefix_table(cfg)
    out = {}
    for k, v in sd.items():
        new = _map_key(k, table)
        check(new != k, f"unmapped UNet key {k}")
        out[UNET_PREFIX + new] = v
    return out


def vae_to_sgm(sd: dict, cfg) -> dict:
    table = vae_prefix_table(cfg)
    out = {}
    for k, v in sd.items():
        new = _map_key(k, table)
        if ".mid.attn_1." in new and new.endswith(".weight") and v.dim() == 2:
            v = v[:, :, None, None]  # LDM stores the attention projections as 1x1 convolutions
        out[VAE_PREFIX + new] = v
    check(len(out) == len(sd), "VAE key collision")
    return out


def te1_to_sgm(sd: dict) -> dict:
    """sd must use the published HF naming (with the `text_model.` level)."""
    check(all(k.startswith("text_model.") for k in sd), "text_encoder keys need text_model.")
    return {TE1_PREFIX + k: v for k, v in sd.items()}


def te2_to_sgm(sd: dict, n_layers: int, logit_scale: float) -> dict:
    """HF CLIPTextModelWithProjection (with `text_model.`) -> OpenCLIP naming."""
    out = {
        "token_embedding.weight": sd["text_model.embeddings.token_embedding.weight"],
        "positional_embedding": sd["text_model.embeddings.position_embedding.weight"],
        "ln_final.weight": sd["text_model.final_layer_norm.weight"],
        "ln_final.bias": sd["text_model.final_layer_norm.bias"],
        "text_projection": sd["text_projection.weight"].t().contiguous(),
        "logit_scale": torch.tensor(logit_scale, dtype=sd["text_projection.weight"].dtype),
    }
    used = {
        "text_model.embeddings.token_embedding.weight",
        "text_model.embeddings.position_embedding.weight",
        "text_model.final_layer_norm.weight",
        "text_model.final_layer_norm.bias",
        "text_projection.weight",
    }
    rename = {
        "self_attn.out_proj": "attn.out_proj",
        "layer_norm1": "ln_1",
        "layer_norm2": "ln_2",
        "mlp.fc1": "mlp.c_fc",
        "mlp.fc2": "mlp.c_proj",
    }
    for i in range(n_layers):
        hf = f"text_model.encoder.layers.{i}."
        oc = f"transformer.resblocks.{i}."
        for kind in ("weight", "bias"):
            qkv = [sd[f"{hf}self_attn.{p}_proj.{kind}"] for p in "qkv"]
            out[f"{oc}attn.in_proj_{kind}"] = torch.cat(qkv, dim=0)
            used.update(f"{hf}self_attn.{p}_proj.{kind}" for p in "qkv")
            for a, b in rename.items():
                out[f"{oc}{b}.{kind}"] = sd[f"{hf}{a}.{kind}"]
                used.add(f"{hf}{a}.{kind}")
    check(used == set(sd), f"unmapped text_encoder_2 keys: {sorted(set(sd) - used)}")
    return {TE2_PREFIX + k: v for k, v in out.items()}
