#!/usr/bin/env python3
"""PyTorch eager counterpart of `tlkit train`'s step: the same recipe on the full-size SDXL UNet.

    python Benchmarks/train/torch_train.py CHECKPOINT.safetensors --resolution 512 --steps 3 [--checkpointing]

Loads the UNet of a single-file SDXL checkpoint (e.g. Benchmarks/make_sdxl_random.py's random-weight one)
in float32, attaches rank-64 T-LoRA adapters (the official processors, re-implemented in
Fixtures/fixturegen/tlora_official.py) to every attention projection, and runs training steps exactly as
the official trainer does after its data pipeline: add_noise at a uniform integer t, the r(t) mask, the
ε-prediction MSE, backward, AdamW(1e-4, wd 1e-4). The VAE encode and the text encoders run once per run
in both tools and are left out: latents and conditioning are random tensors of the right shapes. Prints
seconds per step (after one warm-up step) and the peak RSS. `--checkpointing` turns on diffusers'
gradient checkpointing (what 1024 px needs to fit).
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "Fixtures"))
sys.path.insert(0, str(REPO / "Benchmarks"))

from fixturegen import sgm, tlora_official as official  # noqa: E402
from make_sdxl_random import SDXL_UNET  # noqa: E402


def load_unet(path: str):
    from diffusers import DDPMScheduler, UNet2DConditionModel
    from safetensors import safe_open

    with torch.device("meta"):
        unet = UNet2DConditionModel(**SDXL_UNET)
    names = list(unet.state_dict().keys())
    mapped = sgm.unet_to_sgm({k: None for k in names}, SDXL_UNET)
    to_diffusers = dict(zip(mapped.keys(), names))
    sd = {}
    with safe_open(path, framework="pt") as f:
        for sgm_name, name in to_diffusers.items():
            sd[name] = f.get_tensor(sgm_name).float()
    unet.load_state_dict(sd, assign=True)
    sched = DDPMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000)
    return unet, sched


def quick_svd(m, full_matrices=True):
    """Orthonormal U, Vᴴ from QR and sorted random singular values: the official init's shapes and
    properties without 560 full SVDs (setup is not timed; the step is identical)."""
    rows, cols = m.shape
    u = torch.linalg.qr(torch.randn(rows, rows))[0]
    v = torch.linalg.qr(torch.randn(cols, cols))[0]
    s = torch.sort(torch.rand(min(rows, cols)) * m.std() * rows ** 0.5, descending=True).values
    return u, s, v


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint")
    ap.add_argument("--resolution", type=int, default=512)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--rank", type=int, default=64)
    ap.add_argument("--min-rank", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--checkpointing", action="store_true")
    ap.add_argument("--autocast", choices=["off", "bf16"], default="off",
                    help="bf16: forward under torch.autocast('cpu', dtype=torch.bfloat16), what a CPU user picks")
    ap.add_argument("--profile", action="store_true",
                    help="print torch.profiler's per-operator table for the steps after the warm-up one")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    t0 = time.time()
    unet, sched = load_unet(args.checkpoint)
    unet.requires_grad_(False)
    torch.linalg.svd = quick_svd  # see quick_svd
    procs = official.make_processors(unet, "ortho_lora", args.rank)
    unet.set_attn_processor(dict(procs))  # diffusers pops from the dict it is given
    if args.checkpointing:
        unet.enable_gradient_checkpointing()
    unet.train()
    params = [p for proc in procs.values() for p in proc.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-4)
    print(f"setup {time.time() - t0:.1f} s, {sum(p.numel() for p in params):,} trainable parameters", flush=True)

    h = args.resolution // 8
    z0 = torch.randn(1, 4, h, h)
    context = torch.randn(1, 77, 2048)
    pooled = torch.randn(1, 1280)
    time_ids = torch.tensor([[args.resolution] * 2 + [0, 0] + [args.resolution] * 2], dtype=torch.float32)
    times = []
    profiler = None
    for step in range(args.steps + 1):
        if step == 1 and args.profile:
            profiler = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU])
            profiler.__enter__()
        t_start = time.time()
        noise = torch.randn_like(z0)
        t = torch.randint(0, 1000, (1,))
        noisy = sched.add_noise(z0, noise, t)
        mask = official.sigma_mask(t[0], args.rank, args.min_rank, 1.0)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.autocast == "bf16"):
            pred = unet(noisy, t, encoder_hidden_states=context,
                        added_cond_kwargs={"text_embeds": pooled, "time_ids": time_ids},
                        cross_attention_kwargs={"sigma_mask": mask}).sample
        loss = F.mse_loss(pred.float(), noise.float(), reduction="mean")
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        dt = time.time() - t_start
        if step > 0:
            times.append(dt)
        print(f"step {step}{' (warm-up)' if step == 0 else ''}: {dt:.2f} s, t={int(t)}, loss {loss.item():.4f}", flush=True)
    if profiler is not None:
        profiler.__exit__(None, None, None)
        print(profiler.key_averages().table(sort_by="self_cpu_time_total", row_limit=30))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(f"pytorch {'bf16 autocast' if args.autocast == 'bf16' else 'fp32'} {args.resolution}px: {sum(times) / len(times):.2f} s/step over {len(times)} steps, peak RSS {peak / 1e9:.2f} GB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
