"""What PyTorch's bf16 autocast does on the fixtures: the yardstick for tlkit's bf16 precision.

Runs the fixture UNet (Float32 weights) under torch.autocast("cpu", dtype=torch.bfloat16), the setting a
CPU user picks, and compares with the committed Float32 references exactly as tlkit's bf16 tests do:
output error (max |a - b| / max |b|), the adapters' effect error (|(a - a_base) - (r - r_base)| / |r - r_base|)
and the cosine of every adapter-factor gradient. Prints a small report; writes nothing.

    python Fixtures/bf16_reference.py
"""
from pathlib import Path

import torch
from safetensors.torch import load_file

from fixturegen import deltas
from fixturegen.common import Context
from fixturegen.unet_ref import (OFFICIAL, PEFT_FILE, TIMESTEPS, forward, gradients, load_pipeline, make_inputs,
                                 mask_for, official_processors)


@torch.no_grad()
def outputs(ctx, pipe, inp):
    """The reference outputs' runs (base, official processors with the mask, PEFT via diffusers)."""
    unet, out = pipe.unet, {}
    default = unet.attn_processors
    for t in TIMESTEPS:
        out[f"base/t{t}"] = forward(unet, inp, t)
    for aid in OFFICIAL:
        unet.set_attn_processor(official_processors(ctx, unet, aid, torch.float32))
        for t in TIMESTEPS:
            out[f"{aid}/t{t}"] = forward(unet, inp, t, cross_attention_kwargs={"sigma_mask": mask_for(ctx, aid, t)})
        unet.set_attn_processor(dict(default))
    pipe.load_lora_weights(str(ctx.adapters / "peft"), weight_name=PEFT_FILE, adapter_name="peft")
    for t in TIMESTEPS:
        out[f"peft/t{t}"] = forward(unet, inp, t)
    pipe.unload_lora_weights()
    return out


def scale_rel(a, b):
    return ((a.double() - b.double()).abs().max() / b.double().abs().max()).item()


def effect_err(a, a_base, r, r_base):
    mine, ref = a.double() - a_base.double(), r.double() - r_base.double()
    return ((mine - ref).norm() / ref.norm()).item()


def cosine(a, b):
    a, b = a.double().reshape(-1), b.double().reshape(-1)
    return (a @ b / (a.norm() * b.norm())).item()


def main():
    torch.manual_seed(0)
    ctx = Context(root=Path(__file__).resolve().parent)
    ref = load_file(str(ctx.reference / "unet_outputs.safetensors"))
    pipe = load_pipeline(ctx)
    names = deltas.Names.from_pipeline(pipe)
    inp = make_inputs()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = outputs(ctx, pipe, inp)
    for aid in ["peft"] + list(OFFICIAL):
        for t in TIMESTEPS:
            a, b = out[f"{aid}/t{t}"].float(), out[f"base/t{t}"].float()
            print(f"autocast bf16 {aid} t={t}: base {scale_rel(b, ref[f'base/t{t}']):.4f}, "
                  f"adapted {scale_rel(a, ref[f'{aid}/t{t}']):.4f}, "
                  f"effect {effect_err(a, b, ref[f'{aid}/t{t}'], ref[f'base/t{t}']):.4f}")
    for aid in OFFICIAL:
        grads_ref = load_file(str(ctx.reference / f"unet_grads_{aid}.safetensors"))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            g = gradients(ctx, pipe, inp, names, aid, torch.float32)
        cos = {k: cosine(g[k], grads_ref[k]) for k in g if k.startswith("grad/")}
        worst = min(cos, key=cos.get)
        below = sum(1 for v in cos.values() if v < 0.999)
        print(f"autocast bf16 {aid} gradients: latents cosine {cos['grad/latents']:.5f}, lowest factor "
              f"{cos[worst]:.5f} at {worst}, {below} of {len(cos)} below 0.999")


if __name__ == "__main__":
    main()
