"""Group `fused`: FLUX.1 and SD3 LoRAs on fused attention projections and on their separate parts, with
what diffusers makes of them.

BFL's FLUX.1 code (and so kohya's FLUX LoRAs) computes q, k, v in one Linear (`img_attn.qkv`,
`txt_attn.qkv`) and a single block's q, k, v and MLP input in one `linear1`; diffusers has separate
layers (`to_q`, `to_k`, `to_v`, `add_q_proj`…, `proj_mlp`). SD3's SAI layout fuses q, k, v likewise.

Fused -> separate, checked against diffusers' own kohya FLUX converter and loader:
  adapters/fused/flux-fused-kohya.safetensors   kohya BFL names at FLUX.1's width 3072: dense LoRAs on
      img_attn.qkv (rank 4, alpha 2) and single_blocks linear1 (rank 4, alpha 4); a block-diagonal one on
      txt_attn.qkv whose v block is zero (rank 6, alpha 12); a plain img_attn.proj.
  reference/fused_qkv.safetensors  `flux.*`: diffusers' converted factors (`FluxPipeline.lora_state_dict`,
      alpha already folded into them), after checking that the tiny model's PEFT layers, loaded through
      `load_lora_adapter`, apply exactly B·A as ΔW.
Separate -> fused:
  adapters/fused/flux-parts-peft.safetensors  a diffusers-format FLUX LoRA with parts missing and
      mixed ranks/alphas: block 0 `to_q` (rank 2, alpha 4) and `to_k` (rank 3, lora_alpha 2), no `to_v`; all three
      `add_*_proj` (rank 2); the single block's q, k, v sharing one down (rank 2), no `proj_mlp`.
  adapters/fused/flux-parts-kohya.safetensors  the same LoRA fused (stacked downs, block-diagonal ups,
      zero rows for the absent parts; the shared down kept once). diffusers' kohya loader must read it
      back to the PEFT file's ΔW per part (and zero for the absent ones).
  reference/fused_qkv.safetensors  `sd3.*`: the fused ΔW of the SD3 fixture LoRA (adapters/bases/sd3-peft)
      as diffusers' own `fuse_qkv_projections` lays out `to_qkv` / `to_added_qkv` (LoRA merged first).
"""

from __future__ import annotations

import json
import shutil

import torch

from .bases import perturb_lora
from .common import Context, check, load_safetensors, log, randn, save_safetensors

WIDTH = 3072  # diffusers' kohya converter splits linear1 as [3072] * 3 + [12288]


def _flux_model():
    from diffusers import FluxTransformer2DModel

    torch.manual_seed(0)
    return FluxTransformer2DModel(patch_size=1, in_channels=16, num_layers=1, num_single_layers=1, attention_head_dim=128,
                                  num_attention_heads=24, joint_attention_dim=32, pooled_projection_dim=32,
                                  axes_dims_rope=(16, 56, 56))


def _pair(tag: str, rank: int, out: int):
    return randn((rank, WIDTH), f"{tag}/down", WIDTH ** -0.5), randn((out, rank), f"{tag}/up", 0.02)


def _fused_kohya() -> dict:
    out = {}

    def put(name, down, up, alpha):
        out[f"lora_unet_{name}.lora_down.weight"] = down.to(torch.float16)
        out[f"lora_unet_{name}.lora_up.weight"] = up.to(torch.float16)
        out[f"lora_unet_{name}.alpha"] = torch.tensor(float(alpha), dtype=torch.float16)

    put("double_blocks_0_img_attn_qkv", *_pair("fused/img_qkv", 4, 3 * WIDTH), 2)
    put("double_blocks_0_img_attn_proj", *_pair("fused/img_proj", 4, WIDTH), 2)
    # Trained per part and stacked: block-diagonal up, ranks 2 + 2 + 2, the v block zero.
    down, up = _pair("fused/txt_qkv", 6, 3 * WIDTH)
    up[:WIDTH, 2:] = 0
    up[WIDTH:2 * WIDTH, :2] = 0
    up[WIDTH:2 * WIDTH, 4:] = 0
    up[2 * WIDTH:] = 0
    put("double_blocks_0_txt_attn_qkv", down, up, 12)
    put("single_blocks_0_linear1", *_pair("fused/linear1", 4, 3 * WIDTH + 4 * WIDTH), 4)
    return out


def _loaded_deltas(model, state_dict: dict, pipeline_cls) -> dict:
    """ΔW of every adapted layer once diffusers has loaded `state_dict` into `model` (PEFT's delta)."""
    from peft.tuners.lora import LoraLayer

    model.load_lora_adapter(state_dict, prefix="transformer", adapter_name="ref")
    deltas = {}
    for name, module in model.named_modules():
        if isinstance(module, LoraLayer) and "ref" in module.lora_A:
            deltas[name] = module.get_delta_weight("ref").float()
    model.delete_adapters("ref")
    return deltas


def build_fused_to_parts(ctx: Context, model, reference: dict) -> None:
    from diffusers import FluxPipeline

    kohya = _fused_kohya()
    path = ctx.adapters / "fused" / "flux-fused-kohya.safetensors"
    save_safetensors(kohya, path)
    converted = FluxPipeline.lora_state_dict(str(path))
    converted = converted[0] if isinstance(converted, tuple) else converted
    parts = sorted({k[: -len(".lora_A.weight")] for k in converted if k.endswith(".lora_A.weight")})
    check(len(parts) == 3 + 3 + 4 + 1, f"fused: diffusers splits into {len(parts)} modules")
    deltas = _loaded_deltas(model, converted, FluxPipeline)
    for prefix in parts:
        a, b = converted[prefix + ".lora_A.weight"].float(), converted[prefix + ".lora_B.weight"].float()
        layer = prefix[len("transformer."):]
        check(torch.allclose(deltas[layer], b @ a, atol=1e-6, rtol=1e-5), f"fused: diffusers applies B·A to {layer}")
        reference[f"flux.{prefix}.lora_A.weight"] = converted[prefix + ".lora_A.weight"].clone()
        reference[f"flux.{prefix}.lora_B.weight"] = converted[prefix + ".lora_B.weight"].clone()
    v = converted["transformer.transformer_blocks.0.attn.add_v_proj.lora_B.weight"]
    check(not v.any(), "fused: the zero v block stays zero")


# ----------------------------------------------------------------------------- separate -> fused

PART_TARGETS = ["transformer_blocks.0.attn.to_q", "transformer_blocks.0.attn.to_k", "transformer_blocks.0.attn.add_q_proj",
                "transformer_blocks.0.attn.add_k_proj", "transformer_blocks.0.attn.add_v_proj",
                "single_transformer_blocks.0.attn.to_q", "single_transformer_blocks.0.attn.to_k", "single_transformer_blocks.0.attn.to_v"]


def _parts_peft(model) -> tuple[dict, dict, dict]:
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    config = LoraConfig(r=2, lora_alpha=2, target_modules=PART_TARGETS, init_lora_weights=True,
                        rank_pattern={"transformer_blocks.0.attn.to_k": 3}, alpha_pattern={"transformer_blocks.0.attn.to_q": 4})
    model.add_adapter(config, adapter_name="parts")
    perturb_lora(model, "fused/parts")
    with torch.no_grad():
        single = model.single_transformer_blocks[0].attn
        for layer in (single.to_k, single.to_v):  # one shared down, as after a split
            layer.lora_A["parts"].weight.copy_(single.to_q.lora_A["parts"].weight)
    sd = {k: v.to(torch.float16) for k, v in get_peft_model_state_dict(model, adapter_name="parts").items()}
    # PEFT's own scale of each layer (alpha_pattern, else lora_alpha, over the layer's rank).
    scales = {name: module.scaling["parts"] for name, module in model.named_modules()
              if hasattr(module, "scaling") and "parts" in getattr(module, "scaling", {})}
    model.delete_adapters("parts")
    metadata = config.to_dict()
    metadata["target_modules"] = sorted(metadata["target_modules"])  # a set: sorted, so reruns write the same file
    return sd, metadata, scales


def _parts_kohya(peft: dict, scales: dict) -> dict:
    """The parts fused by hand: shared down kept once, else stacked downs and block-diagonal ups; each
    part's PEFT scale multiplied into its up block (alpha = rank); absent parts are zero rows."""
    def part(name):
        a, b = peft.get(f"transformer.{name}.lora_A.weight"), peft.get(f"transformer.{name}.lora_B.weight")
        if a is None:
            return None
        return a.float(), b.float() * scales[name]

    out = {}

    def put(kohya, names, rows):
        present = [(i, p) for i, p in enumerate(map(part, names)) if p is not None]
        starts = [sum(rows[:i]) for i in range(len(rows))]
        shared = all(torch.equal(p[0], present[0][1][0]) for _, p in present)
        downs = [present[0][1][0]] if shared else [p[0] for _, p in present]
        down = torch.cat(downs, 0)
        up = torch.zeros(sum(rows), down.shape[0])
        column = 0
        for i, (a, b) in present:
            up[starts[i]:starts[i] + rows[i], column:column + b.shape[1]] = b
            column += 0 if shared else b.shape[1]
        out[f"lora_unet_{kohya}.lora_down.weight"] = down.to(torch.float16)
        out[f"lora_unet_{kohya}.lora_up.weight"] = up.to(torch.float16)
        out[f"lora_unet_{kohya}.alpha"] = torch.tensor(float(down.shape[0]), dtype=torch.float16)

    a, s = "transformer_blocks.0.attn.", "single_transformer_blocks.0."
    put("double_blocks_0_img_attn_qkv", [a + "to_q", a + "to_k", a + "to_v"], [WIDTH] * 3)
    put("double_blocks_0_txt_attn_qkv", [a + "add_q_proj", a + "add_k_proj", a + "add_v_proj"], [WIDTH] * 3)
    put("single_blocks_0_linear1", [s + "attn.to_q", s + "attn.to_k", s + "attn.to_v", s + "proj_mlp"], [WIDTH] * 3 + [4 * WIDTH])
    return out


def build_parts_to_fused(ctx: Context, model) -> None:
    from diffusers import FluxPipeline

    sd, config, scales = _parts_peft(model)
    check(scales["transformer_blocks.0.attn.to_q"] == 2 and abs(scales["transformer_blocks.0.attn.to_k"] - 2 / 3) < 1e-12,
          "parts: PEFT scales alpha_pattern 4 / rank 2 and lora_alpha 2 / rank 3")
    folder = ctx.adapters / "fused" / "parts"
    FluxPipeline.save_lora_weights(folder, transformer_lora_layers=sd, transformer_lora_adapter_metadata=config)
    peft_path = ctx.adapters / "fused" / "flux-parts-peft.safetensors"
    shutil.move(folder / "pytorch_lora_weights.safetensors", peft_path)
    shutil.rmtree(folder)
    peft = load_safetensors(peft_path)
    check(not any("to_v" in k for k in peft if k.startswith("transformer.transformer_blocks.")), "parts: no to_v in the double block")
    kohya_path = ctx.adapters / "fused" / "flux-parts-kohya.safetensors"
    save_safetensors(_parts_kohya(peft, scales), kohya_path)
    # diffusers reads the fused file back to each part's ΔW; the absent parts come back zero.
    loaded = FluxPipeline.lora_state_dict(str(kohya_path))
    loaded = loaded[0] if isinstance(loaded, tuple) else loaded
    for key in [k for k in loaded if k.endswith(".lora_A.weight")]:
        prefix = key[: -len(".lora_A.weight")]
        theirs = loaded[prefix + ".lora_B.weight"].float() @ loaded[key].float()
        if prefix + ".lora_A.weight" in peft:
            mine = peft[prefix + ".lora_B.weight"].float() @ peft[key].float() * scales[prefix[len("transformer."):]]
            check(torch.allclose(mine, theirs, atol=2e-5, rtol=1e-2), f"parts: diffusers reads {prefix} back")
        else:
            check(not theirs.any(), f"parts: the absent {prefix} is zero")


# ----------------------------------------------------------------------------- SD3 fused layout

def build_sd3_reference(ctx: Context, reference: dict) -> None:
    from diffusers import SD3Transformer2DModel, StableDiffusion3Pipeline

    def model():
        torch.manual_seed(0)
        return SD3Transformer2DModel(sample_size=16, patch_size=2, in_channels=4, num_layers=2, attention_head_dim=16,
                                     num_attention_heads=2, joint_attention_dim=32, caption_projection_dim=32,
                                     pooled_projection_dim=32, out_channels=4, pos_embed_max_size=16)

    plain = model()
    plain.fuse_qkv_projections()
    adapted = model()
    state = StableDiffusion3Pipeline.lora_state_dict(str(ctx.adapters / "bases" / "sd3-peft.safetensors"))
    state = state[0] if isinstance(state, tuple) else state
    adapted.load_lora_adapter(state, prefix="transformer", adapter_name="ref")
    adapted.fuse_lora(adapter_names=["ref"])
    adapted.unload_lora()
    adapted.fuse_qkv_projections()
    for i, (before, after) in enumerate(zip(plain.transformer_blocks, adapted.transformer_blocks)):
        for layer in ("to_qkv", "to_added_qkv"):
            delta = getattr(after.attn, layer).weight.detach() - getattr(before.attn, layer).weight.detach()
            check(delta.abs().max() > 0, f"sd3: block {i} {layer} adapted")
            reference[f"sd3.transformer.transformer_blocks.{i}.attn.{layer}.delta"] = delta.float().contiguous()


def build(ctx: Context) -> None:
    out = ctx.adapters / "fused"
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    reference: dict = {}
    model = _flux_model()
    build_fused_to_parts(ctx, model, reference)
    build_parts_to_fused(ctx, model)
    del model
    build_sd3_reference(ctx, reference)
    save_safetensors(reference, ctx.reference / "fused_qkv.safetensors",
                     metadata={"about": json.dumps("diffusers 0.42 reference for fused q,k,v LoRAs (Fixtures/fixturegen/fused_qkv.py)")})
    for f in sorted(out.iterdir()):
        log(f"  {f.name}: {f.stat().st_size} bytes")


# ----------------------------------------------------------------------------- --check-all: tlkit's outputs

def check_with_tlkit(ctx: Context, tlkit, tmp) -> list[tuple[str, float, float]]:
    """tlkit's split (`convert --to peft` of flux-fused-kohya) loaded into the tiny FLUX model by diffusers
    (with the file's PEFT metadata), against diffusers' own split; and tlkit's fused file (`convert --to kohya`
    of flux-parts-peft) read by diffusers' kohya loader, against the PEFT parts. (name, worst |ΔW diff|, bound)."""
    import subprocess

    from diffusers import FluxPipeline
    from peft.tuners.lora import LoraLayer

    split, fused = tmp / "fused-split.safetensors", tmp / "fused-stacked.safetensors"
    subprocess.run([str(tlkit), "convert", str(ctx.adapters / "fused" / "flux-fused-kohya.safetensors"), "--to", "peft", "-o", str(split)],
                   check=True, capture_output=True)
    subprocess.run([str(tlkit), "convert", str(ctx.adapters / "fused" / "flux-parts-peft.safetensors"), "--to", "kohya", "-o", str(fused)],
                   check=True, capture_output=True)
    reference = load_safetensors(ctx.reference / "fused_qkv.safetensors")
    model = _flux_model()
    state, metadata = FluxPipeline.lora_state_dict(str(split), return_lora_metadata=True)
    model.load_lora_adapter(state, prefix="transformer", adapter_name="tlkit", metadata=metadata)
    worst_split, seen = 0.0, 0
    for name, module in model.named_modules():
        if isinstance(module, LoraLayer) and "tlkit" in module.lora_A:
            a, b = reference[f"flux.transformer.{name}.lora_A.weight"].float(), reference[f"flux.transformer.{name}.lora_B.weight"].float()
            worst_split = max(worst_split, (module.get_delta_weight("tlkit").float() - b @ a).abs().max().item())
            seen += 1
    check(seen == 11, f"fused: diffusers loaded {seen} of tlkit's 11 split modules")
    model.delete_adapters("tlkit")
    _, _, scales = _parts_peft(model)  # PEFT's scale of each part
    sd = load_safetensors(ctx.adapters / "fused" / "flux-parts-peft.safetensors")
    loaded = FluxPipeline.lora_state_dict(str(fused))
    loaded = loaded[0] if isinstance(loaded, tuple) else loaded
    worst_fused = 0.0
    for key in [k for k in loaded if k.endswith(".lora_A.weight")]:
        prefix = key[: -len(".lora_A.weight")]
        theirs = loaded[prefix + ".lora_B.weight"].float() @ loaded[key].float()
        mine = (sd[prefix + ".lora_B.weight"].float() @ sd[key].float() * scales[prefix[len("transformer."):]]) if key in sd else torch.zeros_like(theirs)
        worst_fused = max(worst_fused, (mine - theirs).abs().max().item())
    # Split: the same fp16 factors, summed in another order (entries ~1e-3). Fused: kohya's one alpha puts
    # ratios into the fp16 ups and diffusers multiplies alpha/rank into the fp16 downs (2^-11 relative each).
    return [("fused: tlkit's PEFT split of a kohya FLUX LoRA, loaded by diffusers", worst_split, 1e-6),
            ("fused: tlkit's kohya fused FLUX LoRA, read by diffusers' kohya loader", worst_fused, 2e-5)]
