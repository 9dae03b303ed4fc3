#!/usr/bin/env python3
"""The PyTorch side of the VAE benchmark, and its input.

    vae_torch.py make DIR              # a full-size SDXL VAE with random weights (diffusers folder, F32)
    vae_torch.py time DIR SIZE [RUNS]  # diffusers AutoencoderKL encode / decode of one SIZE² image, float32
    vae_torch.py reference DIR OUT     # posterior mean and decoder output of a 128×96 input, for comparison

`time` prints one line per phase: `encode SECONDS` / `decode SECONDS` (best of RUNS, default 2) and the
peak RSS of the process in MB. Threads: torch's default (all cores) unless THREADS is set.
"""

from __future__ import annotations

import os
import resource
import sys
import time

import torch

SDXL_VAE = dict(
    in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(128, 256, 512, 512),
    down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
    layers_per_block=2, norm_num_groups=32, sample_size=1024, scaling_factor=0.13025, force_upcast=True,
)


def smooth_images(batch: int, height: int, width: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    coarse = torch.randn(batch, 3, max(1, height // 8), max(1, width // 8), generator=g) * 1.5
    return torch.tanh(torch.nn.functional.interpolate(coarse, size=(height, width), mode="bicubic"))


def load(folder: str):
    from diffusers import AutoencoderKL
    return AutoencoderKL.from_pretrained(folder, torch_dtype=torch.float32, local_files_only=True).eval()


@torch.no_grad()
def main(argv: list[str]) -> int:
    if "THREADS" in os.environ:
        torch.set_num_threads(int(os.environ["THREADS"]))
    command = argv[1] if len(argv) > 1 else ""
    if command == "make":
        from diffusers import AutoencoderKL
        torch.manual_seed(0)
        AutoencoderKL(**SDXL_VAE).save_pretrained(argv[2], safe_serialization=True)
        return 0
    if command == "time":
        vae, size = load(argv[2]), int(argv[3])
        runs = int(argv[4]) if len(argv) > 4 else 2
        images = smooth_images(1, size, size, 0)
        best_encode = best_decode = float("inf")
        for _ in range(runs):
            t0 = time.perf_counter()
            latents = vae.encode(images).latent_dist.mean
            t1 = time.perf_counter()
            vae.decode(latents).sample
            t2 = time.perf_counter()
            best_encode, best_decode = min(best_encode, t1 - t0), min(best_decode, t2 - t1)
        print(f"encode {best_encode:.2f}")
        print(f"decode {best_decode:.2f}")
        print(f"peak_rss_mb {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f}")
        return 0
    if command == "reference":
        from safetensors.torch import save_file
        vae = load(argv[2])
        images = smooth_images(1, 128, 96, 1)
        latents = torch.randn(1, 4, 16, 12, generator=torch.Generator().manual_seed(2)) / vae.config.scaling_factor
        save_file({"images": images, "mean": vae.encode(images).latent_dist.mean.contiguous(),
                   "latents": latents, "decoded": vae.decode(latents).sample.contiguous()}, argv[3])
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
