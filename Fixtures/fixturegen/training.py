"""Group `training`: the training recipe's numbers from PyTorch (docs/method.md, "Training recipe").

Writes reference/training.safetensors:
  alphas_cumprod            [1000]   DDPMScheduler (from the pipeline's scheduler config) ᾱ_t, float32
  z0, noise                 [1,4,16,16]  clean latents and ε of one step (z0 = unet/latents)
  noisy                     [1,4,16,16]  scheduler.add_noise(z0, ε, t), t = TIMESTEP
  {method}/loss             []       F.mse_loss(unet(noisy, t).sample, ε) with the adapter
  {method}/grad/<module>/<factor>   gradients of that loss (modules of attentions.0.transformer_blocks.0
                                     only, to keep the file small; the UNet gradient test covers all)
  method tlora: official-ortho processors, mask r(t); method lora: official-vanilla processors, no mask
  adamw/param_i, adamw/grad_{k}_i, adamw/after_{k}_i   torch.optim.AdamW, 3 steps on 3 tensors
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from . import tlora_official as official
from .adapters import OFFICIAL, load_pipeline
from .common import Context, check, log, randn, save_safetensors, write_json
from .unet_ref import GRAD_FACTORS, forward, make_inputs, official_processors, mask_for

TIMESTEP = 500
METHODS = {"tlora": ("official-ortho", True), "lora": ("official-vanilla", False)}
ADAMW = dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2)
KEPT = ("attentions.0.transformer_blocks.0.",)


def recipe(ctx: Context, pipe, inp: dict, out: dict) -> dict:
    from diffusers import DDPMScheduler

    sched = DDPMScheduler.from_pretrained(ctx.pipeline_dir, subfolder="scheduler")
    out["alphas_cumprod"] = sched.alphas_cumprod.float().clone()
    z0 = inp["latents"]
    noise = randn(z0.shape, "training/noise")
    t = torch.tensor([TIMESTEP])
    noisy = sched.add_noise(z0, noise, t)
    out.update(z0=z0, noise=noise, noisy=noisy)
    unet = pipe.unet
    unet.requires_grad_(False)
    default = unet.attn_processors
    stats = {}
    for method, (aid, masked) in METHODS.items():
        procs = official_processors(ctx, unet, aid, torch.float32)
        unet.set_attn_processor(dict(procs))
        kwargs = {"cross_attention_kwargs": {"sigma_mask": mask_for(ctx, aid, TIMESTEP)}} if masked else {}
        pred = forward(unet, inp, t, latents=noisy, **kwargs)
        loss = F.mse_loss(pred.float(), noise.float(), reduction="mean")
        loss.backward()
        out[f"{method}/loss"] = loss.detach()
        kind = "ortho" if OFFICIAL[aid][0] == "ortho_lora" else "masked"
        count = 0
        for pname, proc in procs.items():
            for proj in official.PROJS:
                canon = official.canonical_module(pname, proj)
                if not any(k in canon for k in KEPT):
                    continue
                params = dict(getattr(proc, f"{proj}_lora").named_parameters())
                for fac, pn in GRAD_FACTORS[kind].items():
                    g = params[pn].grad
                    check(g is not None and bool(g.abs().max() > 0), f"{method}: no gradient for {canon}/{fac}")
                    out[f"{method}/grad/{canon}/{fac}"] = g.detach().reshape(-1) if fac == "lambda" else g.detach().clone()
                    count += 1
        unet.set_attn_processor(dict(default))  # diffusers pops from the dict it is given
        stats[method] = {"loss": loss.item(), "gradients_stored": count}
    return stats


def adamw(out: dict) -> None:
    shapes = [(8, 16), (16, 8), (8,)]
    params = [torch.nn.Parameter(randn(s, f"training/adamw/param{i}")) for i, s in enumerate(shapes)]
    for i, p in enumerate(params):
        out[f"adamw/param_{i}"] = p.detach().clone()
    opt = torch.optim.AdamW(params, **ADAMW)
    for k in range(3):
        for i, p in enumerate(params):
            g = randn(p.shape, f"training/adamw/grad{k}/{i}", std=10.0 ** (i - 2))
            if i == 0:
                g[:2] = 0  # masked components: zero gradient, still moved by momentum and decay
            p.grad = g
            out[f"adamw/grad_{k}_{i}"] = g.clone()
        opt.step()
        for i, p in enumerate(params):
            out[f"adamw/after_{k}_{i}"] = p.detach().clone()


def build(ctx: Context) -> None:
    log("training: recipe loss/gradients and AdamW references")
    pipe = load_pipeline(ctx)
    out: dict = {}
    stats = recipe(ctx, pipe, make_inputs(), out)
    adamw(out)
    save_safetensors({k: v.float().contiguous() for k, v in out.items()}, ctx.reference / "training.safetensors", {"format": "pt"})
    write_json({"timestep": TIMESTEP, "methods": {m: a for m, (a, _) in METHODS.items()}, "adamw": ADAMW,
                "kept_gradients": KEPT, "stats": stats}, ctx.reference / "training_index.json")
    log(f"training: {stats}")
