"""Group `adapters`: LoRA files written by the real tools, official T-LoRA checkpoints, ΔW references.

Reads the pipeline written by group `models`. Writes adapters/… and reference/adapters_delta.safetensors
+ reference/adapters_index.json (see README for the key conventions).
"""

from __future__ import annotations

import json
import shutil

import torch

from . import deltas, tlora_official as official
from .common import (
    Context,
    assert_no_zero_tensors,
    check,
    load_safetensors,
    log,
    randn,
    read_metadata,
    save_safetensors,
)

PEFT_FILE = "pytorch_lora_weights.safetensors"
UNET_TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]
TE_TARGETS = ["q_proj", "k_proj", "v_proj", "out_proj"]
# One module with another rank, one with another alpha (PEFT rank_pattern / alpha_pattern).
RANK_PATTERN = {"down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q": 2}
ALPHA_PATTERN = {"mid_block.attentions.0.transformer_blocks.0.attn1.to_out.0": 12}
PEFT_UNET = dict(r=4, lora_alpha=8)
PEFT_TE = dict(r=4, lora_alpha=4)

OFFICIAL = {
    # adapter id: (trainer_type, lora_rank, min_rank, alpha_rank_scale, exp hex)
    "official-ortho": ("ortho_lora", 8, 4, 1.0, "8c1e"),
    "official-vanilla": ("lora", 8, 4, 0.5, "5b7d"),
}
OFFICIAL_STEPS = 20  # -> checkpoint-20 (written after the last step)
OFFICIAL_SEED = 0


def load_pipeline(ctx: Context):
    from diffusers import StableDiffusionXLPipeline

    return StableDiffusionXLPipeline.from_pretrained(ctx.pipeline_dir, dtype=torch.float32, local_files_only=True)


def _jsonable(d):
    if isinstance(d, dict):
        return {k: _jsonable(v) for k, v in d.items()}
    if isinstance(d, (set, frozenset)):
        return sorted(d)  # diffusers turns sets into lists in hash order; sort for reproducible files
    if isinstance(d, (list, tuple)):
        return [_jsonable(v) for v in d]
    return d


# ----------------------------------------------------------------------------- PEFT / diffusers

def _adapter_metadata(model) -> dict:
    """peft_config.to_dict() as the diffusers training scripts pass it (_collate_lora_metadata), with
    sets sorted and base_model_name_or_path (a local path PEFT records for transformers models) cleared
    so the file does not depend on where it was generated."""
    d = _jsonable(model.peft_config["default"].to_dict())
    d["base_model_name_or_path"] = None
    return d


@torch.no_grad()
def _perturb_peft(model, tag: str) -> None:
    """lora_A ~ N(0, 1/in), lora_B ~ N(0, 0.02^2): no zero factor, ΔW about 10% of W."""
    for name, p in model.named_parameters():
        if ".lora_A." in name:
            p.copy_(randn(p.shape, f"{tag}/{name}", p.shape[1] ** -0.5))
        elif ".lora_B." in name:
            p.copy_(randn(p.shape, f"{tag}/{name}", 0.02))


def build_peft(ctx: Context, pipe) -> dict:
    from diffusers import StableDiffusionXLPipeline
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    unet_cfg = LoraConfig(**PEFT_UNET, target_modules=UNET_TARGETS, rank_pattern=RANK_PATTERN,
                          alpha_pattern=ALPHA_PATTERN, init_lora_weights=True)
    pipe.unet.add_adapter(unet_cfg)
    for te in (pipe.text_encoder, pipe.text_encoder_2):  # one config object each: PEFT mutates it
        te.add_adapter(LoraConfig(**PEFT_TE, target_modules=TE_TARGETS, init_lora_weights=True))
    _perturb_peft(pipe.unet, "peft/unet")
    _perturb_peft(pipe.text_encoder, "peft/text_encoder")
    _perturb_peft(pipe.text_encoder_2, "peft/text_encoder_2")
    sd_unet = get_peft_model_state_dict(pipe.unet)
    sd_te1 = get_peft_model_state_dict(pipe.text_encoder)
    sd_te2 = get_peft_model_state_dict(pipe.text_encoder_2)
    meta = {f"{c}_lora_adapter_metadata": _adapter_metadata(getattr(pipe, c))
            for c in ("unet", "text_encoder", "text_encoder_2")}
    flat_te1 = not any(k.startswith("text_model.") for k in sd_te1)
    published_te1 = {f"text_model.{k}": v for k, v in sd_te1.items()} if flat_te1 else sd_te1
    # (1) published layout: text_encoder keys keep `text_model.` (what every older transformers wrote)
    out = ctx.adapters / "peft"
    StableDiffusionXLPipeline.save_lora_weights(
        out, unet_lora_layers=sd_unet, text_encoder_lora_layers=published_te1,
        text_encoder_2_lora_layers=sd_te2, **meta)
    # (2) the same adapter exactly as transformers >= 5.6 + diffusers 0.42 write it (flat text_encoder)
    StableDiffusionXLPipeline.save_lora_weights(
        ctx.adapters / "peft-flat-te", unet_lora_layers=sd_unet, text_encoder_lora_layers=sd_te1,
        text_encoder_2_lora_layers=sd_te2, **meta)
    return {"flat_te1": flat_te1}


def build_kohya(ctx: Context) -> None:
    from diffusers.utils import convert_state_dict_to_kohya

    peft_sd = load_safetensors(ctx.adapters / "peft" / PEFT_FILE)
    kohya = convert_state_dict_to_kohya(peft_sd)
    save_safetensors(kohya, ctx.adapters / "kohya" / "kohya_from_peft.safetensors")  # as the diffusers script: no metadata


def build_attn_procs(ctx: Context, names: deltas.Names) -> None:
    """Old diffusers attn-procs naming, built by renaming the PEFT factors (no alpha: scale 1)."""
    peft_sd = load_safetensors(ctx.adapters / "peft" / PEFT_FILE)
    out = {}
    for key, v in peft_sd.items():
        canon, factor = key.rsplit(".lora_", 1)
        which = {"A.weight": "down", "B.weight": "up"}[factor]
        out[names.attn_procs_key(canon, which)] = v
    save_safetensors(out, ctx.adapters / "attn-procs" / PEFT_FILE, {"format": "pt"})


# ----------------------------------------------------------------------------- official T-LoRA

@torch.no_grad()
def _simulate_training(sd: dict, tag: str) -> dict:
    """Move the trainable factors away from their initial values (frozen base_* untouched)."""
    out = dict(sd)
    for k, v in sd.items():
        t = f"{tag}/{k}"
        if k.endswith("q_layer.weight") or k.endswith("p_layer.weight"):
            out[k] = v + randn(v.shape, t, 0.02)
        elif k.endswith("lambda_layer"):
            out[k] = v + randn(v.shape, t, 0.25)
        elif k.endswith("up.weight"):  # vanilla: up starts at zero
            out[k] = randn(v.shape, t, 0.03)
        elif k.endswith("down.weight"):
            out[k] = v + randn(v.shape, t, 0.01)
    return {k: v.contiguous() for k, v in out.items()}


def build_official(ctx: Context, pipe) -> None:
    for aid, (ttype, rank, min_rank, alpha, hexid) in OFFICIAL.items():
        torch.manual_seed(OFFICIAL_SEED)  # the trainer seeds torch before setup_model
        procs = official.make_processors(pipe.unet, ttype, rank, "last")
        sd = _simulate_training(official.checkpoint_state_dict(procs), aid)
        root = ctx.adapters / aid
        if root.exists():
            shutil.rmtree(root)
        save_safetensors(sd, root / f"checkpoint-{OFFICIAL_STEPS}" / PEFT_FILE, {"format": "pt"})
        hp = official.hparams(ttype, rank, min_rank, alpha, OFFICIAL_STEPS, 10, hexid)
        (root / "logs").mkdir(parents=True, exist_ok=True)
        (root / "logs" / "hparams.yml").write_text(official.dump_hparams(hp), encoding="utf-8")
    nohp = ctx.adapters / "official-ortho-nohparams"
    nohp.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(ctx.adapters / "official-ortho" / f"checkpoint-{OFFICIAL_STEPS}" / PEFT_FILE, nohp / PEFT_FILE)


# ----------------------------------------------------------------------------- verification

def verify_files(ctx: Context, names: deltas.Names) -> None:
    n_unet = len(names.unet_modules)
    n_te = len(names.te_modules)
    peft_sd = load_safetensors(ctx.adapters / "peft" / PEFT_FILE)
    check(len(peft_sd) == 2 * (n_unet + n_te), f"peft tensors {len(peft_sd)}")
    meta = read_metadata(ctx.adapters / "peft" / PEFT_FILE)
    lam = json.loads(meta["lora_adapter_metadata"])
    check(meta.get("format") == "pt" and lam["unet.r"] == 4 and lam["unet.lora_alpha"] == 8
          and lam["unet.rank_pattern"] == RANK_PATTERN and lam["unet.alpha_pattern"] == ALPHA_PATTERN
          and lam["text_encoder.r"] == 4 and lam["text_encoder_2.lora_alpha"] == 4, "peft metadata")
    check(all(k.startswith(("unet.", "text_encoder.text_model.", "text_encoder_2.text_model.")) for k in peft_sd),
          "peft key prefixes")
    kohya = load_safetensors(ctx.adapters / "kohya" / "kohya_from_peft.safetensors")
    check(len(kohya) == 3 * (n_unet + n_te), "kohya tensors")
    check(all(k.startswith(("lora_unet_", "lora_te1_", "lora_te2_")) for k in kohya), "kohya prefixes")
    ap = load_safetensors(ctx.adapters / "attn-procs" / PEFT_FILE)
    check(len(ap) == 2 * (n_unet + n_te) and any(".processor.to_out_lora.up.weight" in k for k in ap), "attn-procs")
    for path, sd in (("peft", peft_sd), ("kohya", kohya), ("attn-procs", ap)):
        assert_no_zero_tensors(sd, path)
    for aid, (ttype, rank, *_rest) in OFFICIAL.items():
        f = ctx.adapters / aid / f"checkpoint-{OFFICIAL_STEPS}" / PEFT_FILE
        sd = load_safetensors(f)
        per = 6 if ttype == "ortho_lora" else 2
        check(len(sd) == per * n_unet, f"{aid}: {len(sd)} tensors")
        check(read_metadata(f) == {"format": "pt"}, f"{aid} metadata")
        check(all(v.dtype == torch.float32 for v in sd.values()), f"{aid} dtype")
        assert_no_zero_tensors(sd, aid)
        for k, v in sd.items():
            if k.endswith(("lambda_layer", "base_lambda")):
                check(tuple(v.shape) == (1, rank), f"{k} shape")
            if k.endswith("q_layer.weight"):
                base = sd[k.replace("q_layer.weight", "base_q.weight")]
                check(not torch.equal(v, base), f"{k} equals its base copy")
                eye = base @ base.T
                check(torch.allclose(eye, torch.eye(rank), atol=1e-5), f"{k}: base_q rows not orthonormal")
            if k.endswith("lambda_layer"):
                check(not torch.equal(v, sd[k.replace("lambda_layer", "base_lambda")]), f"{k} equals base")
        hp = official.yaml.safe_load((ctx.adapters / aid / "logs" / "hparams.yml").read_text())
        check(hp["lora_rank"] == rank and hp["trainer_type"] == ttype, f"{aid} hparams")


# diffusers 0.42 loading a kohya file with mixed ranks builds alpha_pattern from mis-converted key names
# ("…attn1.processor.to_q_lora.down.weight"), so the odd-rank module gets the most common alpha (4) with
# r = 2: scale 2 instead of alpha/rank = 1. The reference keeps kohya's semantics (alpha / rank).
DIFFUSERS_KNOWN_SCALE_BUGS = {("kohya", "unet." + next(iter(RANK_PATTERN))): 2.0}


def verify_with_diffusers(ctx: Context, names: deltas.Names, refs: dict) -> None:
    """Load peft / kohya / attn-procs with diffusers' load_lora_weights and compare PEFT's own
    get_delta_weight with our float64 ΔW (cross-checks scales, rank/alpha patterns and naming)."""
    cases = {
        "peft": (ctx.adapters / "peft", PEFT_FILE),
        "peft-flat-te": (ctx.adapters / "peft-flat-te", PEFT_FILE),
        "kohya": (ctx.adapters / "kohya", "kohya_from_peft.safetensors"),
        "attn-procs": (ctx.adapters / "attn-procs", PEFT_FILE),
    }
    for aid, (folder, fname) in cases.items():
        pipe = load_pipeline(ctx)
        pipe.load_lora_weights(str(folder), weight_name=fname, adapter_name="fx")
        ref = refs["peft" if aid == "peft-flat-te" else aid]
        seen = 0
        for comp_name in ("unet", "text_encoder", "text_encoder_2"):
            comp = getattr(pipe, comp_name)
            for mname, mod in comp.named_modules():
                if not hasattr(mod, "get_delta_weight") or "fx" not in getattr(mod, "lora_A", {}):
                    continue
                canon = names.canonical(comp_name, mname)
                got = mod.get_delta_weight("fx").double()
                want = deltas.delta(ref[canon], None) * DIFFUSERS_KNOWN_SCALE_BUGS.get((aid, canon), 1.0)
                err = (got - want).abs().max().item() / want.abs().max().item()
                check(err < 1e-6, f"{aid}: {canon} diffusers ΔW differs from reference (rel {err:.2e})")
                seen += 1
        check(seen == len(ref), f"{aid}: diffusers applied {seen} of {len(ref)} modules")
        log(f"  diffusers load_lora_weights({aid}): {seen} modules match the reference ΔW")


def build(ctx: Context) -> None:
    log("adapters: building LoRA / T-LoRA fixtures")
    pipe = load_pipeline(ctx)
    names = deltas.Names.from_pipeline(pipe)
    build_peft(ctx, pipe)
    build_kohya(ctx)
    build_attn_procs(ctx, names)
    build_official(ctx, load_pipeline(ctx))  # a fresh UNet, without the PEFT layers
    verify_files(ctx, names)
    refs = deltas.read_all(ctx, names)
    verify_with_diffusers(ctx, names, refs)
    deltas.write_references(ctx, names, refs)
    log("adapters: done")
