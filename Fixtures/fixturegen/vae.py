"""Encoder and decoder references of the fixture VAE (diffusers AutoencoderKL, float32).

Non-square sizes and a batch of two, so that height/width or batch mix-ups cannot pass:
  images     [2, 3, 64, 48]  smooth random images in [-1, 1] (tanh of upsampled noise)
  mean       [2, 4, 8, 6]    posterior mean of vae.encode(images)
  logvar     [2, 4, 8, 6]    posterior log-variance (clamped to [-30, 20], as diffusers does)
  noise      [2, 4, 8, 6]    standard normal noise
  sample     [2, 4, 8, 6]    mean + exp(0.5 * logvar) * noise (DiagonalGaussianDistribution.sample)
  latents    [2, 4, 8, 6]    decoder input: random latents at the scale of unscaled SDXL latents
  decoded    [2, 3, 64, 48]  vae.decode(latents).sample (the pipeline divides by scaling_factor before)
"""

from __future__ import annotations

import torch

from .common import assert_no_zero_tensors, check, log, randn, save_safetensors


@torch.no_grad()
def build(ctx) -> None:
    from diffusers import AutoencoderKL

    vae = AutoencoderKL.from_pretrained(str(ctx.pipeline_dir / "vae"), torch_dtype=torch.float32,
                                        local_files_only=True).eval()
    coarse = randn((2, 3, 8, 6), "vae/images", 1.5)
    images = torch.tanh(torch.nn.functional.interpolate(coarse, size=(64, 48), mode="bicubic", align_corners=False))
    posterior = vae.encode(images).latent_dist
    noise = randn((2, 4, 8, 6), "vae/noise")
    latents = randn((2, 4, 8, 6), "vae/latents") / vae.config.scaling_factor
    out = {
        "images": images,
        "mean": posterior.mean,
        "logvar": posterior.logvar,
        "noise": noise,
        "sample": posterior.mean + posterior.std * noise,
        "latents": latents,
        "decoded": vae.decode(latents).sample,
    }
    check(float(images.abs().max()) <= 1.0, "images outside [-1, 1]")
    check(float(posterior.logvar.std()) > 0.01, "logvar is constant")
    assert_no_zero_tensors(out, "vae")
    path = ctx.reference / "vae.safetensors"
    save_safetensors({k: v.float() for k, v in out.items()}, path,
                     metadata={"scaling_factor": str(vae.config.scaling_factor)})
    log(f"[vae] decoded std {out['decoded'].std():.4f}, mean std {out['mean'].std():.4f} -> {path.name}")
