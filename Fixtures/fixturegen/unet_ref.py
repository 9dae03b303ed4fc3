"""Group `unet`: UNet forward / backward references, with and without adapters.

The UNet is loaded from the saved fp16 diffusers folder and upcast to float32. Writes
  reference/unet_inputs.safetensors, reference/unet_outputs.safetensors,
  reference/unet_grads_official-ortho.safetensors, reference/unet_grads_official-vanilla.safetensors,
  reference/unet_index.json
"""

from __future__ import annotations

import contextlib

import torch

from . import deltas, tlora_official as official
from .adapters import OFFICIAL, PEFT_FILE, load_pipeline
from .common import Context, check, load_safetensors, log, randn, save_safetensors, write_json

TIMESTEPS = [999, 500, 0]
GRAD_TIMESTEP = 500
TIME_IDS = [64.0, 64.0, 0.0, 0.0, 64.0, 64.0]
GRAD_FACTORS = {"ortho": {"q": "q_layer.weight", "p": "p_layer.weight", "lambda": "lambda_layer"},
                "masked": {"down": "down.weight", "up": "up.weight"}}


def make_inputs() -> dict:
    return {
        "latents": randn((1, 4, 16, 16), "unet/latents"),
        "encoder_hidden_states": randn((1, 77, 128), "unet/encoder_hidden_states"),
        "text_embeds": randn((1, 64), "unet/text_embeds"),
        "time_ids": torch.tensor([TIME_IDS]),
        "timesteps": torch.tensor([float(t) for t in TIMESTEPS]),
        "loss_weights": randn((1, 4, 16, 16), "unet/loss_weights"),
    }


def forward(unet, inp: dict, t, latents=None, **kw) -> torch.Tensor:
    dt = next(unet.parameters()).dtype
    return unet(
        (inp["latents"] if latents is None else latents).to(dt), t,
        encoder_hidden_states=inp["encoder_hidden_states"].to(dt),
        added_cond_kwargs={"text_embeds": inp["text_embeds"].to(dt), "time_ids": inp["time_ids"].to(dt)},
        **kw,
    ).sample


def _official(ctx: Context, aid: str):
    ttype, rank, *_ = OFFICIAL[aid]
    sched = deltas._schedule(ctx, aid)
    sd = load_safetensors(ctx.adapters / aid / "checkpoint-20" / PEFT_FILE)
    return ttype, rank, sched, sd


def official_processors(ctx: Context, unet, aid: str, dtype) -> dict:
    ttype, rank, sched, sd = _official(ctx, aid)
    with torch.random.fork_rng():  # the init is overwritten by the checkpoint anyway
        procs = official.make_processors(unet, ttype, rank)
    official.load_into_processors(procs, sd)
    for p in procs.values():
        p.to(dtype)
    return procs


def mask_for(ctx: Context, aid: str, t) -> torch.Tensor:
    _, rank, sched, _ = _official(ctx, aid)
    return official.sigma_mask(t, rank, sched["min_rank"], sched["rank_alpha"])


@contextlib.contextmanager
def merged(unet, names: deltas.Names, mods: dict, mask):
    """Temporarily add ΔW (float64 → weight dtype) to the adapted UNet weights."""
    saved = {}
    lookup = dict(unet.named_modules())
    with torch.no_grad():
        for canon, m in mods.items():
            lin = lookup[canon[len("unet."):]]
            saved[canon] = lin.weight.detach().clone()
            lin.weight.add_(deltas.delta(m, None if mask is None else mask[0]).to(lin.weight.dtype))
    try:
        yield
    finally:
        with torch.no_grad():
            for canon, w in saved.items():
                lookup[canon[len("unet."):]].weight.copy_(w)


def rel_effect(a, b, base) -> float:
    return ((a - b).norm() / (b - base).norm()).item()


@torch.no_grad()
def outputs(ctx: Context, pipe, inp: dict, names: deltas.Names) -> tuple[dict, dict]:
    unet = pipe.unet
    default = unet.attn_processors
    out, stats = {}, {}
    for t in TIMESTEPS:
        out[f"base/t{t}"] = forward(unet, inp, t)
    for aid in OFFICIAL:
        mods = deltas.read_official(ctx.adapters / aid / "checkpoint-20" / PEFT_FILE, names)
        unet.set_attn_processor(official_processors(ctx, unet, aid, torch.float32))
        for t in TIMESTEPS:
            out[f"{aid}/t{t}"] = forward(unet, inp, t, cross_attention_kwargs={"sigma_mask": mask_for(ctx, aid, t)})
        unet.set_attn_processor(dict(default))  # diffusers pops from the dict it is given
        for t in TIMESTEPS:  # cross-check: the processors equal W + ΔW(t) with diffusers' own attention
            with merged(unet, names, mods, mask_for(ctx, aid, t)):
                alt = forward(unet, inp, t)
            stats[f"{aid}/t{t}"] = _stat(out[f"{aid}/t{t}"], alt, out[f"base/t{t}"])
    peft_mods = deltas.read_peft(ctx.adapters / "peft" / PEFT_FILE, names)
    pipe.load_lora_weights(str(ctx.adapters / "peft"), weight_name=PEFT_FILE, adapter_name="peft")
    for t in TIMESTEPS:
        out[f"peft/t{t}"] = forward(unet, inp, t)
    pipe.unload_lora_weights()
    unet_mods = {c: m for c, m in peft_mods.items() if c.startswith("unet.")}
    for t in TIMESTEPS:
        with merged(unet, names, unet_mods, None):
            alt = forward(unet, inp, t)
        stats[f"peft/t{t}"] = _stat(out[f"peft/t{t}"], alt, out[f"base/t{t}"])
    for k, v in out.items():
        check(bool(torch.isfinite(v).all()) and v.shape == (1, 4, 16, 16), f"output {k}")
    return out, stats


def _stat(a, merged_out, base) -> dict:
    effect = ((a - base).norm() / base.norm()).item()
    agree = rel_effect(merged_out, a, base)
    check(effect > 1e-3, f"adapter effect too small ({effect:.2e})")
    check(agree < 1e-4, f"processor/PEFT output differs from W+ΔW output by {agree:.2e} of the effect")
    return {"effect_rel_to_output": effect, "merged_weights_vs_hook_rel_to_effect": agree}


def gradients(ctx: Context, pipe, inp: dict, names: deltas.Names, aid: str, dtype) -> dict:
    unet = pipe.unet
    default = unet.attn_processors
    unet.requires_grad_(False)
    procs = official_processors(ctx, unet, aid, dtype)
    unet.set_attn_processor(dict(procs))
    latents = inp["latents"].to(dtype).clone().requires_grad_(True)
    out = forward(unet, inp, GRAD_TIMESTEP, latents=latents,
                  cross_attention_kwargs={"sigma_mask": mask_for(ctx, aid, GRAD_TIMESTEP).to(dtype)})
    loss = (inp["loss_weights"].to(dtype) * out).mean()
    loss.backward()
    res = {"loss": loss.detach(), "output": out.detach(), "grad/latents": latents.grad.detach()}
    kind = "ortho" if OFFICIAL[aid][0] == "ortho_lora" else "masked"
    for pname, proc in procs.items():
        for proj in official.PROJS:
            layer = getattr(proc, f"{proj}_lora")
            canon = official.canonical_module(pname, proj)
            params = dict(layer.named_parameters())
            for fac, pn in GRAD_FACTORS[kind].items():
                g = params[pn].grad
                check(g is not None, f"no gradient for {canon}/{fac}")
                res[f"grad/{canon}/{fac}"] = g.detach().reshape(-1) if fac == "lambda" else g.detach()
    unet.set_attn_processor(dict(default))  # diffusers pops from the dict it is given
    check(len(res) == 3 + len(names.unet_modules) * len(GRAD_FACTORS[kind]), f"{aid}: gradient count")
    return res


def _max_rel(a: dict, b: dict) -> dict:
    worst = {}
    for k in a:
        if a[k].dim() == 0 or b[k].abs().max() == 0:
            continue
        group = "grad/factors" if k.startswith("grad/unet.") else k
        r = ((a[k].double() - b[k].double()).abs().max() / b[k].double().abs().max()).item()
        worst[group] = max(worst.get(group, 0.0), r)
    return worst


def build(ctx: Context) -> None:
    log("unet: forward/backward references")
    inp = make_inputs()
    pipe = load_pipeline(ctx)  # fp16 files upcast to float32
    names = deltas.Names.from_pipeline(pipe)
    out, stats = outputs(ctx, pipe, inp, names)
    grads = {aid: gradients(ctx, pipe, inp, names, aid, torch.float32) for aid in OFFICIAL}
    # float64 rerun: how far float32 PyTorch itself is from exact (guides Swift tolerances)
    pipe64 = load_pipeline(ctx)
    pipe64.unet.double()
    with torch.no_grad():
        base64 = {f"base/t{t}": forward(pipe64.unet, inp, t) for t in TIMESTEPS}
    f32_err = {"outputs": _max_rel({k: out[k] for k in base64}, base64)}
    for aid in OFFICIAL:
        f32_err[aid] = _max_rel(grads[aid], gradients(ctx, pipe64, inp, names, aid, torch.float64))
    ref = ctx.reference
    save_safetensors(inp, ref / "unet_inputs.safetensors", {"format": "pt"})
    save_safetensors(out, ref / "unet_outputs.safetensors", {"format": "pt"})
    for aid, g in grads.items():
        save_safetensors({k: v.float() for k, v in g.items()}, ref / f"unet_grads_{aid}.safetensors", {"format": "pt"})
    write_index(ctx, stats, f32_err)
    log(f"unet: done; adapter effects {({k: round(v['effect_rel_to_output'], 4) for k, v in stats.items()})}")


def write_index(ctx: Context, stats: dict, f32_err: dict) -> None:
    masks = {aid: {str(t): int(mask_for(ctx, aid, t).sum().item()) for t in TIMESTEPS} for aid in OFFICIAL}
    write_json({
        "model": "models/tiny-sdxl (fp16 files, upcast to float32); default diffusers attention (SDPA) for base/peft",
        "inputs": {
            "file": "reference/unet_inputs.safetensors",
            "keys": {"latents": "[1,4,16,16] sample", "encoder_hidden_states": "[1,77,128]",
                     "text_embeds": "[1,64] added_cond_kwargs", "time_ids": "[1,6] = [64,64,0,0,64,64]",
                     "timesteps": f"[3] = {TIMESTEPS} (the UNet gets one scalar timestep per run)",
                     "loss_weights": "[1,4,16,16] c in L = mean(c ⊙ output)"},
        },
        "outputs": {
            "file": "reference/unet_outputs.safetensors",
            "keys": "<run>/t<T> [1,4,16,16], run ∈ base | peft | official-ortho | official-vanilla, T ∈ 999,500,0",
            "runs": {
                "base": "no adapter",
                "peft": "adapters/peft loaded with pipe.load_lora_weights (UNet part; scale 2, rank/alpha patterns)",
                "official-ortho": "official processors (classic baddbmm attention) with sigma_mask m(T)",
                "official-vanilla": "official processors with sigma_mask m(T)",
            },
            "mask_rank_at": masks,
        },
        "gradients": {
            "files": {aid: f"reference/unet_grads_{aid}.safetensors" for aid in OFFICIAL},
            "timestep": GRAD_TIMESTEP,
            "loss": "L = mean(loss_weights ⊙ output), output with the adapter at t=500 (partial mask)",
            "keys": {
                "loss": "0-dim", "output": "[1,4,16,16]", "grad/latents": "[1,4,16,16] dL/dlatents",
                "grad/<canonical module>/q|p|lambda": "official-ortho: q [R,in], p [out,R], lambda [R] "
                                                      "(the file stores lambda as [1,R])",
                "grad/<canonical module>/down|up": "official-vanilla: down [R,in], up [out,R]",
            },
            "note": "components masked at t=500 (indices >= r(500)) have exactly zero gradients",
        },
        "checks": {
            "adapter_effects": stats,
            "float32_vs_float64_max_rel": f32_err,
            "about": "effect_rel_to_output = |out_adapter - out_base| / |out_base|; merged_weights_vs_hook = "
                     "|out(W+ΔW) - out(adapter)| / |out(adapter) - out_base|; float32_vs_float64 = "
                     "max|f32 - f64| / max|f64| per tensor (worst over adapter factors)",
        },
    }, ctx.reference / "unet_index.json")
