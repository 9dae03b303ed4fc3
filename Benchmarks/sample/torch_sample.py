#!/usr/bin/env python3
"""diffusers counterpart of `tlkit sample`: StableDiffusionXLPipeline, EulerDiscreteScheduler, guidance 5,
on a full-size SDXL single file with random weights (Benchmarks/make_sdxl_random.py).

    python Benchmarks/sample/torch_sample.py CHECKPOINT EMBEDDINGS LATENTS --steps N [--threads 2]

EMBEDDINGS is the safetensors file `tlkit sample --embeddings` reads (prompt_embeds, pooled_prompt_embeds,
negative_prompt_embeds, negative_pooled_prompt_embeds) and LATENTS the `latents` file of `--latents`, so both
tools denoise the same numbers (the text encoders are left out on both sides). Float32 throughout. Prints
the seconds of the denoising loop per step, of the VAE decode, and the peak RSS.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "Fixtures"))
sys.path.insert(0, str(REPO / "Benchmarks"))
sys.path.insert(0, str(REPO / "Benchmarks" / "train"))

from fixturegen import sgm  # noqa: E402
from make_sdxl_random import SDXL_VAE  # noqa: E402
from torch_train import load_unet  # noqa: E402


def load_vae(path: str):
    from diffusers import AutoencoderKL

    with torch.device("meta"):
        vae = AutoencoderKL(**SDXL_VAE)
    names = list(vae.state_dict().keys())
    to_diffusers = dict(zip(sgm.vae_to_sgm(dict(vae.state_dict()), SDXL_VAE).keys(), names))
    sd = {}
    with safe_open(path, framework="pt") as f:
        for sgm_name, name in to_diffusers.items():
            t = f.get_tensor(sgm_name).float()
            target = vae.state_dict()[name]
            sd[name] = t.reshape(target.shape)  # LDM 1×1-conv attention weights → Linear
    vae.load_state_dict(sd, assign=True)
    return vae


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint")
    ap.add_argument("embeddings")
    ap.add_argument("latents")
    ap.add_argument("--steps", type=int, default=25)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--autocast", choices=["off", "bf16"], default="off",
                    help="bf16: run under torch.autocast('cpu', dtype=torch.bfloat16), what a CPU user picks")
    args = ap.parse_args()
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.autocast == "bf16")
    torch.set_num_threads(args.threads)
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLPipeline

    t0 = time.time()
    unet, _ = load_unet(args.checkpoint)
    vae = load_vae(args.checkpoint)
    sched = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                   num_train_timesteps=1000, timestep_spacing="leading", steps_offset=1)
    pipe = StableDiffusionXLPipeline(vae=vae, text_encoder=None, text_encoder_2=None, tokenizer=None,
                                     tokenizer_2=None, unet=unet, scheduler=sched)
    pipe.set_progress_bar_config(disable=True)
    emb = load_file(args.embeddings)
    latents = load_file(args.latents)["latents"]
    h, w = latents.shape[2] * 8, latents.shape[3] * 8
    print(f"setup {time.time() - t0:.1f} s", flush=True)
    with torch.no_grad(), autocast:
        t1 = time.time()
        out = pipe(prompt_embeds=emb["prompt_embeds"], pooled_prompt_embeds=emb["pooled_prompt_embeds"],
                   negative_prompt_embeds=emb["negative_prompt_embeds"],
                   negative_pooled_prompt_embeds=emb["negative_pooled_prompt_embeds"],
                   latents=latents, num_inference_steps=args.steps, guidance_scale=5.0, height=h, width=w,
                   output_type="latent").images
        t2 = time.time()
        image = vae.decode(out / vae.config.scaling_factor).sample.float()
        t3 = time.time()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(f"diffusers {'bf16 autocast' if args.autocast == 'bf16' else 'fp32'} {h}px: {(t2 - t1) / args.steps:.2f} s/step over {args.steps} steps, decode {t3 - t2:.2f} s, "
          f"peak RSS {peak / 1e9:.2f} GB, finite {bool(torch.isfinite(image).all())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
