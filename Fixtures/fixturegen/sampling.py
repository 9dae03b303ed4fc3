"""Group `sampling`: Euler discrete scheduler values and full SDXL denoising runs with diffusers.

The pipeline is `StableDiffusionXLPipeline` from models/tiny-sdxl (fp16 files upcast to float32) with its
own `EulerDiscreteScheduler` (SDXL's config: scaled-linear betas, leading spacing, steps_offset 1).
Runs: 64×64 px (latents 8×8), STEPS steps, guidance GUIDANCE, two images per prompt, the same initial
latents and prompt embeddings, `output_type="latent"`. Writes
  reference/sampling_inputs.safetensors     latents [2,4,8,8]; prompt_embeds [1,77,128],
                                            pooled_prompt_embeds [1,64] and the negative pair
                                            (the embeddings file `tlkit sample --embeddings` reads)
  reference/sampling_outputs.safetensors    final latents per run, scheduler values, torch.randn draws,
                                            the VAE decode of the first base image
  reference/sampling_kohya_ff.safetensors   a kohya LoRA on to_k, ff and proj_in/proj_out of every
                                            transformer, for the merge-into-weights path
  reference/sampling_index.json             what every key means, measured adapter effects
"""

from __future__ import annotations

import torch

from . import tlora_official as official
from .adapters import OFFICIAL, PEFT_FILE, load_pipeline
from .common import Context, check, log, randn, save_safetensors, write_json

HEIGHT = WIDTH = 64
STEPS = 5
GUIDANCE = 5.0
IMAGES = 2
PROMPT = "a photo of sks dog riding a bike"
NEGATIVE = "blurry, low quality"
SCHEDULE_STEPS = [25, 30, 50, 7, 1]
RANDN_SEEDS = {"seed42_1x4x8x8": (42, (1, 4, 8, 8)), "seed7_2x4x8x8": (7, (2, 4, 8, 8)),
               "seed12345_3x5x7": (12345, (3, 5, 7)), "seed4294967297_1x4x4x4": (2**32 + 1, (1, 4, 4, 4))}
PEFT_SCALE_IN_COMBINATION = 0.5


def _run(pipe, inp: dict, **kw) -> torch.Tensor:
    args = dict(height=HEIGHT, width=WIDTH, num_inference_steps=STEPS, guidance_scale=GUIDANCE,
                num_images_per_prompt=IMAGES, latents=inp["latents"].clone(), output_type="latent")
    if "prompt" not in kw:
        args.update(prompt_embeds=inp["prompt_embeds"], pooled_prompt_embeds=inp["pooled_prompt_embeds"],
                    negative_prompt_embeds=inp["negative_prompt_embeds"],
                    negative_pooled_prompt_embeds=inp["negative_pooled_prompt_embeds"])
    args.update(kw)
    with torch.no_grad():
        return pipe(**args).images.float()


class _PerStepMask:
    """Sets the official processors' `sigma_mask` from the timestep of every UNet call, as the official
    T-LoRA pipeline does inside its loop (one mask for both guidance halves)."""

    def __init__(self, rank: int, min_rank: int, alpha: float):
        self.rank, self.min_rank, self.alpha = rank, min_rank, alpha
        self.ranks = []

    def __call__(self, module, args, kwargs):
        t = args[1] if len(args) > 1 else kwargs["timestep"]
        mask = official.sigma_mask(t.item() if torch.is_tensor(t) else t, self.rank, self.min_rank, self.alpha)
        self.ranks.append(int(mask.sum().item()))
        cak = dict(kwargs.get("cross_attention_kwargs") or {})
        cak["sigma_mask"] = mask
        kwargs["cross_attention_kwargs"] = cak
        return args, kwargs


def _official_ortho(ctx: Context, pipe):
    from safetensors.torch import load_file

    ttype, rank, min_rank, alpha, _ = OFFICIAL["official-ortho"]
    procs = official.make_processors(pipe.unet, ttype, rank)
    official.load_into_processors(procs, load_file(str(ctx.adapters / "official-ortho" / "checkpoint-20" / PEFT_FILE)))
    hook = _PerStepMask(rank, min_rank, alpha)
    return procs, hook


def _kohya_ff(ctx: Context, path) -> int:
    """A rank-2 LoRA on the transformer Linears other than q/v/out (the PEFT fixture covers those), saved
    as diffusers' kohya conversion in float16 (small)."""
    from diffusers.utils import convert_state_dict_to_kohya
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    pipe = load_pipeline(ctx)
    targets = ["to_k", "proj_in", "proj_out", "ff.net.0.proj", "ff.net.2"]
    pipe.unet.add_adapter(LoraConfig(r=2, lora_alpha=1, target_modules=targets, init_lora_weights=True))
    with torch.no_grad():
        for name, p in pipe.unet.named_parameters():
            if ".lora_A." in name:
                p.copy_(randn(p.shape, f"sampling/kohya_ff/{name}", p.shape[1] ** -0.5))
            elif ".lora_B." in name:
                p.copy_(randn(p.shape, f"sampling/kohya_ff/{name}", 0.05))
    sd = {f"unet.{k}": v for k, v in get_peft_model_state_dict(pipe.unet).items()}
    kohya = {k: v.half() for k, v in convert_state_dict_to_kohya(sd).items()}
    save_safetensors(kohya, path)
    return len(sd) // 2


def build(ctx: Context) -> None:
    from diffusers import EulerDiscreteScheduler

    log("sampling: scheduler values and denoising runs")
    ref = ctx.reference
    pipe = load_pipeline(ctx)
    check(isinstance(pipe.scheduler, EulerDiscreteScheduler), "pipeline scheduler is not Euler discrete")
    pipe.set_progress_bar_config(disable=True)

    # Embeddings from the fixture text encoders (the negative pair is a real prompt, not zeros, so the
    # guidance halves differ), and initial latents as diffusers' `latents=` takes them.
    with torch.no_grad():
        pe, npe, ppe, nppe = pipe.encode_prompt(PROMPT, device="cpu", num_images_per_prompt=1,
                                                do_classifier_free_guidance=True, negative_prompt=NEGATIVE)
    inp = {"latents": randn((IMAGES, 4, HEIGHT // 8, WIDTH // 8), "sampling/latents"),
           "prompt_embeds": pe.float(), "pooled_prompt_embeds": ppe.float(),
           "negative_prompt_embeds": npe.float(), "negative_pooled_prompt_embeds": nppe.float()}

    out = {}
    # Scheduler values for several step counts.
    sched = EulerDiscreteScheduler.from_config(pipe.scheduler.config)
    for n in SCHEDULE_STEPS:
        sched.set_timesteps(n, device="cpu")
        out[f"scheduler/{n}/timesteps"] = sched.timesteps.float()
        out[f"scheduler/{n}/sigmas"] = sched.sigmas.float()
        out[f"scheduler/{n}/init_noise_sigma"] = torch.tensor([float(sched.init_noise_sigma)])
    out["scheduler/alphas_cumprod"] = sched.alphas_cumprod.float()

    # torch's CPU generator (what `--seed` reproduces).
    for key, (seed, shape) in RANDN_SEEDS.items():
        out[f"randn/{key}"] = torch.randn(shape, generator=torch.Generator("cpu").manual_seed(seed), dtype=torch.float32)

    # Denoising runs.
    out["final/base"] = _run(pipe, inp)
    out["final/prompt"] = _run(pipe, inp, prompt=PROMPT)  # no negative prompt: zero uncond embeddings
    pipe.load_lora_weights(str(ctx.adapters / "peft"), weight_name=PEFT_FILE, adapter_name="peft")
    out["final/peft"] = _run(pipe, inp)
    out["final/peft-prompt"] = _run(pipe, inp, prompt=PROMPT)  # the LoRA's text-encoder modules act too
    default = pipe.unet.attn_processors
    procs, hook = _official_ortho(ctx, pipe)
    pipe.unet.set_attn_processor(dict(procs))
    handle = pipe.unet.register_forward_pre_hook(hook, with_kwargs=True)
    pipe.set_adapters(["peft"], [PEFT_SCALE_IN_COMBINATION])
    out["final/peft0.5+official-ortho"] = _run(pipe, inp)
    pipe.unload_lora_weights()
    hook.ranks.clear()
    out["final/official-ortho"] = _run(pipe, inp)
    ortho_ranks = list(hook.ranks)
    handle.remove()
    pipe.unet.set_attn_processor(dict(default))
    kohya_path = ref / "sampling_kohya_ff.safetensors"
    n_ff = _kohya_ff(ctx, kohya_path)
    pipe.load_lora_weights(str(kohya_path), adapter_name="kohya_ff")
    loaded = sum(1 for n, _ in pipe.unet.named_modules() if n.endswith(".lora_A.kohya_ff"))
    check(loaded == n_ff, f"kohya ff LoRA: {loaded} of {n_ff} modules loaded by diffusers")
    out["final/kohya-ff"] = _run(pipe, inp)
    pipe.unload_lora_weights()

    # The decoded image of the first base result (what `-o OUT.png` writes before quantisation).
    with torch.no_grad():
        first = out["final/base"][:1]
        out["decoded/base0"] = pipe.vae.decode(first / pipe.vae.config.scaling_factor).sample.float()

    effects = {}
    for k, v in out.items():
        check(bool(torch.isfinite(v).all()), f"{k} is not finite")
        if k.startswith("final/") and k != "final/base":
            effects[k] = ((v - out["final/base"]).norm() / out["final/base"].norm()).item()
            check(effects[k] > 1e-3, f"{k}: no visible effect ({effects[k]:.2e})")
    sched.set_timesteps(STEPS, device="cpu")
    expected = [official.rank_at(t.item(), 8, 4, 1.0) for t in sched.timesteps]
    check(ortho_ranks == expected, f"per-step ranks {ortho_ranks}, expected {expected}")
    save_safetensors(inp, ref / "sampling_inputs.safetensors", {"format": "pt"})
    save_safetensors(out, ref / "sampling_outputs.safetensors", {"format": "pt"})
    write_json({
        "pipeline": "StableDiffusionXLPipeline(models/tiny-sdxl, float32), EulerDiscreteScheduler from its config",
        "settings": {"height": HEIGHT, "width": WIDTH, "steps": STEPS, "guidance": GUIDANCE,
                     "num_images_per_prompt": IMAGES, "output_type": "latent",
                     "time_ids": [HEIGHT, WIDTH, 0, 0, HEIGHT, WIDTH]},
        "inputs": {"file": "reference/sampling_inputs.safetensors", "prompt": PROMPT, "negative_prompt": NEGATIVE,
                   "latents": "[2,4,8,8] passed as latents= (the pipeline multiplies by init_noise_sigma)",
                   "embeddings": "pipe.encode_prompt(prompt, negative_prompt=...) of the fixture text encoders"},
        "outputs": {
            "file": "reference/sampling_outputs.safetensors",
            "final/<run>": "[2,4,8,8] final latents (output_type='latent')",
            "runs": {
                "base": "no adapter, embeddings from the inputs file",
                "prompt": f"no adapter, prompt={PROMPT!r}, no negative prompt (zero uncond embeddings)",
                "peft": "adapters/peft via pipe.load_lora_weights (scale 1)",
                "peft-prompt": "adapters/peft (UNet and text-encoder modules), prompt text, no negative prompt",
                "official-ortho": "official processors, sigma_mask set per UNet call from the scheduler timestep",
                "peft0.5+official-ortho": f"both: the PEFT LoRA at set_adapters weight {PEFT_SCALE_IN_COMBINATION} "
                                          "and the official ortho T-LoRA (scale 1, per-step mask)",
                "kohya-ff": "reference/sampling_kohya_ff.safetensors (rank 2, alpha 1, fp16; to_k, ff, proj_in/out)",
            },
            "official_ortho_ranks_per_step": ortho_ranks,
            "scheduler/<n>/timesteps|sigmas|init_noise_sigma": f"set_timesteps(n) for n in {SCHEDULE_STEPS}",
            "scheduler/alphas_cumprod": "[1000]",
            "randn/seed<S>_<shape>": "torch.randn(shape, generator=torch.Generator('cpu').manual_seed(S))",
            "decoded/base0": "vae.decode(final/base[:1] / scaling_factor).sample, float [1,3,64,64] in [-1, 1]-ish",
        },
        "effects_rel_to_base": effects,
    }, ref / "sampling_index.json")
    log(f"sampling: done; effects {({k: round(v, 4) for k, v in effects.items()})}, ortho ranks {ortho_ranks}")
