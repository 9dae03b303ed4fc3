"""Group `bases`: LoRAs of other base architectures (SD 1.x, SD 2.x, SD3, FLUX.1), SDXL LoRAs whose
metadata names a derivative (Pony, Illustrious, NoobAI), and a LoRA of no image model at all.

Each model is a tiny random one built from a diffusers/transformers config: block structure and layer
names are the real ones, widths are tiny except where base identification keys on them (SD 1.x/2.x
cross-attention width 768/1024 and text-encoder width, FLUX.1's transformer width 3072). PEFT adds the
LoRA, diffusers' pipelines save it (`save_lora_weights`), and kohya spellings are written from the PEFT
files by kohya's naming rules; every kohya file is read back through diffusers' own kohya loader
(`lora_state_dict`), which must give back the PEFT factors (the fused FLUX projections as their blocks).

Writes adapters/bases/*.safetensors (no reference tensors: the tests check what tlkit identifies).
"""

from __future__ import annotations

import shutil

import torch

from .common import Context, check, load_safetensors, log, randn, read_metadata, save_safetensors

RANK = 4
UNET_TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]
TE_TARGETS = ["q_proj", "k_proj", "v_proj", "out_proj"]


def perturb_lora(model, tag: str) -> None:
    """lora_A ~ N(0, 1/in), lora_B ~ N(0, 0.02^2): no factor is zero."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if ".lora_A." in name:
                p.copy_(randn(p.shape, f"{tag}/{name}", p.shape[1] ** -0.5))
            elif ".lora_B." in name:
                p.copy_(randn(p.shape, f"{tag}/{name}", 0.02))


def _lora(model, targets, tag: str, rank: int = RANK):
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    model.add_adapter(LoraConfig(r=rank, lora_alpha=rank, target_modules=targets, init_lora_weights=True))
    perturb_lora(model, tag)
    return {k: v.to(torch.float16) for k, v in get_peft_model_state_dict(model).items()}


# ----------------------------------------------------------------------------- SD 1.x / SD 2.x

def _sd_unet(cross_attention_dim: int, linear_projection: bool):
    """SD 1.x/2.x block structure (attention at levels 0-2, none at level 3) at tiny channel widths."""
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4,
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        block_out_channels=(32, 32, 64, 64), layers_per_block=1, norm_num_groups=32,
        attention_head_dim=8, cross_attention_dim=cross_attention_dim, use_linear_projection=linear_projection)


def _clip_text(hidden: int, act: str):
    from transformers import CLIPTextConfig, CLIPTextModel

    return CLIPTextModel(CLIPTextConfig(vocab_size=1000, hidden_size=hidden, intermediate_size=64, num_hidden_layers=1,
                                        num_attention_heads=8, max_position_embeddings=77, hidden_act=act))


def _kohya_sd(peft_file, out_file) -> dict:
    """kohya sd-scripts' names for SD 1.x/2.x: `lora_unet_` + the diffusers path and `lora_te_` for the one
    text encoder (diffusers' converter writes `lora_te1_`, the SDXL spelling; sd-scripts uses `lora_te_`)."""
    from diffusers.utils import convert_state_dict_to_kohya

    kohya = convert_state_dict_to_kohya(load_safetensors(peft_file))
    kohya = {("lora_te_" + k[len("lora_te1_"):] if k.startswith("lora_te1_") else k): v for k, v in kohya.items()}
    save_safetensors(kohya, out_file)
    return kohya


def _from_processor_name(key: str) -> str:
    """diffusers' intermediate spelling of a kohya key (`….processor.to_k_lora.down.weight`) as PEFT's."""
    owner, rest = key.split("_lora.")
    owner, projection = owner.rsplit(".", 1)
    text = owner.startswith("text_encoder")
    owner = owner.removesuffix(".processor")
    leaf = {"to_q": "q_proj", "to_k": "k_proj", "to_v": "v_proj", "to_out": "out_proj"}[projection] if text \
        else {"to_out": "to_out.0"}.get(projection, projection)
    factor = {"down.weight": "lora_A.weight", "up.weight": "lora_B.weight"}[rest]
    return f"{owner}.{leaf}.{factor}"


def build_sd(ctx: Context, name: str, cross: int, linear: bool, te_hidden: int, te_act: str) -> None:
    from diffusers import StableDiffusionPipeline

    torch.manual_seed(0)
    unet, te = _sd_unet(cross, linear), _clip_text(te_hidden, te_act)
    sd_unet = _lora(unet, UNET_TARGETS, f"bases/{name}/unet")
    sd_te = _lora(te, TE_TARGETS, f"bases/{name}/text_encoder")
    # The published layout keeps CLIP's `text_model.` level (current transformers saves without it), so the
    # kohya names are sd-scripts' `lora_te_text_model_encoder_layers_N_…`.
    sd_te = {(k if k.startswith("text_model.") else f"text_model.{k}"): v for k, v in sd_te.items()}
    folder = ctx.adapters / "bases" / f"{name}-peft"
    StableDiffusionPipeline.save_lora_weights(folder, unet_lora_layers=sd_unet, text_encoder_lora_layers=sd_te)
    peft_file = ctx.adapters / "bases" / f"{name}-peft.safetensors"
    shutil.move(folder / "pytorch_lora_weights.safetensors", peft_file)
    shutil.rmtree(folder)
    kohya_file = ctx.adapters / "bases" / f"{name}-kohya.safetensors"
    kohya = _kohya_sd(peft_file, kohya_file)
    check(any(k.startswith("lora_te_text_model_encoder_layers_0_") for k in kohya) and any(k.startswith("lora_unet_down_blocks_0_attentions_0") for k in kohya),
          f"{name}: kohya spellings")
    # diffusers' kohya loader must read every module back to the PEFT names.
    loaded, _ = StableDiffusionPipeline.lora_state_dict(str(kohya_file))
    peft = load_safetensors(peft_file)
    back = {_from_processor_name(k): v for k, v in loaded.items()}
    check(set(back) == set(peft) and all(torch.equal(back[k], peft[k]) for k in peft),
          f"{name}: diffusers reads every factor of the kohya file back to the PEFT one")
    cross_k = [v for k, v in peft.items() if k.endswith("attn2.to_k.lora_A.weight")]
    check(cross_k and all(v.shape[1] == cross for v in cross_k), f"{name}: cross-attention width {cross}")


# ----------------------------------------------------------------------------- FLUX.1

FLUX_TARGETS = ["to_q", "to_k", "to_v", "to_out.0", "add_q_proj", "add_k_proj", "add_v_proj", "to_add_out", "proj_mlp", "proj_out"]


def _flux_kohya(peft: dict) -> dict:
    """BFL names as kohya's FLUX LoRAs spell them. Fused projections (`img_attn.qkv`, `txt_attn.qkv`,
    single blocks' `linear1` = q, k, v and the MLP input) get the stacked downs and block-diagonal ups of
    the separate modules: the same ΔW, rank = the sum of their ranks."""
    def factors(prefix):
        return peft[prefix + ".lora_A.weight"].float(), peft[prefix + ".lora_B.weight"].float()

    def fused(prefixes):
        downs, ups = zip(*(factors(p) for p in prefixes))
        down = torch.cat(downs, 0)
        up = torch.zeros(sum(u.shape[0] for u in ups), down.shape[0])
        r0 = o0 = 0
        for u in ups:
            up[o0:o0 + u.shape[0], r0:r0 + u.shape[1]] = u
            r0, o0 = r0 + u.shape[1], o0 + u.shape[0]
        return down, up

    out = {}

    def put(name, down, up):
        out[f"lora_unet_{name}.lora_down.weight"] = down.to(torch.float16)
        out[f"lora_unet_{name}.lora_up.weight"] = up.to(torch.float16)
        out[f"lora_unet_{name}.alpha"] = torch.tensor(float(down.shape[0]), dtype=torch.float16)

    t = "transformer.transformer_blocks.0.attn."
    put("double_blocks_0_img_attn_qkv", *fused([t + "to_q", t + "to_k", t + "to_v"]))
    put("double_blocks_0_img_attn_proj", *factors(t + "to_out.0"))
    put("double_blocks_0_txt_attn_qkv", *fused([t + "add_q_proj", t + "add_k_proj", t + "add_v_proj"]))
    put("double_blocks_0_txt_attn_proj", *factors(t + "to_add_out"))
    s = "transformer.single_transformer_blocks.0."
    put("single_blocks_0_linear1", *fused([s + "attn.to_q", s + "attn.to_k", s + "attn.to_v", s + "proj_mlp"]))
    put("single_blocks_0_linear2", *factors(s + "proj_out"))
    return out


def build_flux(ctx: Context) -> None:
    from diffusers import FluxPipeline, FluxTransformer2DModel

    torch.manual_seed(0)
    # FLUX.1's real width (24 heads of 128 = 3072), one block of each kind, tiny inputs.
    model = FluxTransformer2DModel(patch_size=1, in_channels=16, num_layers=1, num_single_layers=1, attention_head_dim=128,
                                   num_attention_heads=24, joint_attention_dim=32, pooled_projection_dim=32,
                                   axes_dims_rope=(16, 56, 56))
    sd = _lora(model, FLUX_TARGETS, "bases/flux", rank=2)  # rank 2: the 3072-wide factors are the bulk of the file
    sd = {k: v for k, v in sd.items() if not k.startswith("proj_out.")}  # the top-level proj_out is not a block's
    folder = ctx.adapters / "bases" / "flux"
    FluxPipeline.save_lora_weights(folder, transformer_lora_layers=sd)
    shutil.move(folder / "pytorch_lora_weights.safetensors", ctx.adapters / "bases" / "flux-peft.safetensors")
    # Double blocks only: then the width alone tells FLUX.1 from SD3.
    FluxPipeline.save_lora_weights(folder, transformer_lora_layers={k: v for k, v in sd.items() if k.startswith("transformer_blocks.")})
    shutil.move(folder / "pytorch_lora_weights.safetensors", ctx.adapters / "bases" / "flux-double-peft.safetensors")
    shutil.rmtree(folder)
    peft = load_safetensors(ctx.adapters / "bases" / "flux-peft.safetensors")
    check(any(".single_transformer_blocks." in k for k in peft), "flux: single blocks adapted")
    kohya = _flux_kohya(peft)
    kohya_file = ctx.adapters / "bases" / "flux-kohya.safetensors"
    save_safetensors(kohya, kohya_file)
    # diffusers' kohya FLUX loader splits the fused modules again; each part's ΔW must be the PEFT one.
    loaded = FluxPipeline.lora_state_dict(str(kohya_file))
    loaded = loaded[0] if isinstance(loaded, tuple) else loaded
    for key in [k for k in peft if k.endswith(".lora_A.weight")]:
        prefix = key[: -len(".lora_A.weight")]
        mine = peft[prefix + ".lora_B.weight"].float() @ peft[key].float()
        theirs = loaded[prefix + ".lora_B.weight"].float() @ loaded[key].float()
        check(torch.allclose(mine, theirs, atol=1e-3, rtol=1e-2), f"flux: kohya {prefix} read back by diffusers")


# ----------------------------------------------------------------------------- SD3

SD3_TARGETS = ["to_q", "to_k", "to_v", "to_out.0", "add_q_proj", "add_k_proj", "add_v_proj", "to_add_out"]


def _sd3_kohya(peft: dict, layers: int) -> dict:
    """sd-scripts' SD3 names (SAI MMDiT layout): `joint_blocks_N_x_block_attn_qkv` (image stream) and
    `context_block_attn_qkv` (text stream), fused as for FLUX; the last block's context stream has no
    output projection (context_pre_only)."""
    def factors(prefix):
        return peft[prefix + ".lora_A.weight"].float(), peft[prefix + ".lora_B.weight"].float()

    out = {}

    def put(name, parts):
        downs, ups = zip(*(factors(p) for p in parts))
        down = torch.cat(downs, 0)
        up = torch.block_diag(*ups)
        out[f"lora_unet_{name}.lora_down.weight"] = down.to(torch.float16)
        out[f"lora_unet_{name}.lora_up.weight"] = up.to(torch.float16)
        out[f"lora_unet_{name}.alpha"] = torch.tensor(float(down.shape[0]), dtype=torch.float16)

    for i in range(layers):
        a = f"transformer.transformer_blocks.{i}.attn."
        put(f"joint_blocks_{i}_x_block_attn_qkv", [a + "to_q", a + "to_k", a + "to_v"])
        put(f"joint_blocks_{i}_x_block_attn_proj", [a + "to_out.0"])
        put(f"joint_blocks_{i}_context_block_attn_qkv", [a + "add_q_proj", a + "add_k_proj", a + "add_v_proj"])
        if a + "to_add_out.lora_A.weight" in peft:
            put(f"joint_blocks_{i}_context_block_attn_proj", [a + "to_add_out"])
    return out


def build_sd3(ctx: Context) -> None:
    from diffusers import SD3Transformer2DModel, StableDiffusion3Pipeline

    torch.manual_seed(0)
    layers = 2
    model = SD3Transformer2DModel(sample_size=16, patch_size=2, in_channels=4, num_layers=layers, attention_head_dim=16,
                                  num_attention_heads=2, joint_attention_dim=32, caption_projection_dim=32,
                                  pooled_projection_dim=32, out_channels=4, pos_embed_max_size=16)
    sd = _lora(model, SD3_TARGETS, "bases/sd3")
    folder = ctx.adapters / "bases" / "sd3"
    StableDiffusion3Pipeline.save_lora_weights(folder, transformer_lora_layers=sd)
    shutil.move(folder / "pytorch_lora_weights.safetensors", ctx.adapters / "bases" / "sd3-peft.safetensors")
    shutil.rmtree(folder)
    peft = load_safetensors(ctx.adapters / "bases" / "sd3-peft.safetensors")
    last = f"transformer.transformer_blocks.{layers - 1}.attn.to_add_out.lora_A.weight"
    check(last not in peft and "transformer.transformer_blocks.0.attn.to_add_out.lora_A.weight" in peft,
          "sd3: the last block is context_pre_only (no to_add_out)")
    save_safetensors(_sd3_kohya(peft, layers), ctx.adapters / "bases" / "sd3-kohya.safetensors")


# ----------------------------------------------------------------------------- SDXL derivatives, unknown

DERIVATIVES = {
    # file id: metadata as the trainers that made such files write it
    "sdxl-pony": {"ss_base_model_version": "sdxl_base_v1-0", "ss_sd_model_name": "ponyDiffusionV6XL_v6StartWithThisOne.safetensors"},
    "sdxl-illustrious": {"modelspec.architecture": "stable-diffusion-xl-v1-base/lora", "ss_sd_model_name": "illustriousXL_v01.safetensors"},
    "sdxl-noobai": {"ss_base_model_version": "sdxl_base_v1-0", "ss_sd_model_name": "noobaiXLNAIXL_epsilonPred11Version.safetensors"},
    # kohya's record for a file trained on SDXL itself: no derivative.
    "sdxl-base": {"ss_base_model_version": "sdxl_base_v1-0", "ss_sd_model_name": "sd_xl_base_1.0.safetensors"},
}


def build_derivatives(ctx: Context) -> None:
    """A few modules of the SDXL kohya fixture (a second text encoder among them), with derivative metadata."""
    kohya = load_safetensors(ctx.adapters / "kohya" / "kohya_from_peft.safetensors")
    modules = sorted({k.rsplit(".", 2)[0] if k.endswith(".weight") else k.rsplit(".", 1)[0] for k in kohya})
    keep = [m for m in modules if m.startswith("lora_unet_down_blocks_1_attentions_0")][:4] + [m for m in modules if m.startswith("lora_te2_")][:1]
    subset = {k: v for k, v in kohya.items() if any(k.startswith(m + ".") for m in keep)}
    for name, metadata in DERIVATIVES.items():
        save_safetensors(subset, ctx.adapters / "bases" / f"{name}.safetensors", metadata=metadata)
        check(read_metadata(ctx.adapters / "bases" / f"{name}.safetensors") == metadata, f"{name}: metadata")


def build_unknown(ctx: Context) -> None:
    """A PEFT LoRA of a tiny Llama language model: adapter tensors, but no image model's layers."""
    from peft import LoraConfig, get_peft_model
    from peft.utils import get_peft_model_state_dict
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                         num_attention_heads=2, num_key_value_heads=2))
    peft_model = get_peft_model(model, LoraConfig(r=RANK, lora_alpha=RANK, target_modules=["q_proj", "v_proj"]))
    perturb_lora(peft_model, "bases/llama")
    folder = ctx.adapters / "bases" / "llama"
    peft_model.save_pretrained(folder)
    shutil.move(folder / "adapter_model.safetensors", ctx.adapters / "bases" / "llama-peft.safetensors")
    shutil.rmtree(folder)
    check(any(k.startswith("base_model.model.model.layers.0.self_attn.q_proj") for k in
              get_peft_model_state_dict(peft_model)), "llama: PEFT names")


def build(ctx: Context) -> None:
    out = ctx.adapters / "bases"
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    build_sd(ctx, "sd1", cross=768, linear=False, te_hidden=768, te_act="quick_gelu")
    build_sd(ctx, "sd2", cross=1024, linear=True, te_hidden=1024, te_act="gelu")
    build_sd3(ctx)
    build_flux(ctx)
    build_derivatives(ctx)
    build_unknown(ctx)
    for f in sorted(out.iterdir()):
        log(f"  {f.name}: {f.stat().st_size} bytes")
