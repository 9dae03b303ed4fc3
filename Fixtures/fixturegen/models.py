"""Group `models`: the tiny SDXL-architecture pipeline with random weights.

Writes
  models/tiny-sdxl/                       diffusers folder in the published SDXL layout (fp16)
  models/tiny-sdxl.safetensors            single-file SGM checkpoint (fp16)
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import torch

from . import sgm
from .common import (
    Context,
    assert_no_zero_tensors,
    check,
    load_safetensors,
    log,
    randomize_module,
    round_to,
    save_safetensors,
    write_json,
)
from .configs import (
    SCHEDULER_CONFIG,
    SCHEDULER_EXTRA,
    SGM_METADATA,
    TE1_CONFIG,
    TE2_CONFIG,
    UNET_CONFIG,
    VAE_CONFIG,
)
from .vocab import write_tokenizer_dirs

LOGIT_SCALE = 4.6052  # ln(100), as in OpenCLIP checkpoints after training
TE_FILE = "model.safetensors"
DIFFUSERS_FILE = "diffusion_pytorch_model.safetensors"
SAFETENSORS_METADATA = {"format": "pt"}


def make_models():
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    unet = UNet2DConditionModel(**UNET_CONFIG)
    vae = AutoencoderKL(**VAE_CONFIG)
    te1 = CLIPTextModel(CLIPTextConfig(**TE1_CONFIG))
    te2 = CLIPTextModelWithProjection(CLIPTextConfig(**TE2_CONFIG))
    for model, tag in ((unet, "unet"), (vae, "vae"), (te1, "text_encoder"), (te2, "text_encoder_2")):
        randomize_module(model, tag)
        round_to(model, torch.float16)  # float32 copies now hold exactly the stored fp16 values
        model.eval()
    sched = EulerDiscreteScheduler(**SCHEDULER_CONFIG)
    return unet, vae, te1, te2, sched


def published_te_state_dict(model) -> dict:
    """State dict in the published naming: keys under `text_model.` (+ `text_projection.`)."""
    sd = model.state_dict()
    if not hasattr(model, "text_model"):  # transformers >= 5.6 flattens CLIPTextModel
        sd = {f"text_model.{k}": v for k, v in sd.items()}
    return {k: v for k, v in sd.items() if not k.endswith("position_ids")}


def write_pipeline(ctx: Context, unet, vae, te1, te2, sched) -> None:
    from diffusers import StableDiffusionXLPipeline
    from transformers import CLIPTokenizer

    out = ctx.pipeline_dir
    with tempfile.TemporaryDirectory() as tmp:
        write_tokenizer_dirs(Path(tmp), ctx.vocab_gz)
        tok1 = CLIPTokenizer.from_pretrained(Path(tmp) / "tokenizer")
        tok2 = CLIPTokenizer.from_pretrained(Path(tmp) / "tokenizer_2")
    pipe = StableDiffusionXLPipeline(
        vae=vae, text_encoder=te1, text_encoder_2=te2, tokenizer=tok1, tokenizer_2=tok2,
        unet=unet, scheduler=sched, force_zeros_for_empty_prompt=True, add_watermarker=False,
    )
    if out.exists():
        shutil.rmtree(out)
    pipe.to(torch.float16)
    pipe.save_pretrained(out, safe_serialization=True)
    pipe.to(torch.float32)

    # text encoders: published layout keeps the `text_model.` level in the keys
    for sub, model in (("text_encoder", te1), ("text_encoder_2", te2)):
        for f in (out / sub).glob("*.safetensors"):
            f.unlink()
        sd = {k: v.to(torch.float16) for k, v in published_te_state_dict(model).items()}
        save_safetensors(sd, out / sub / TE_FILE, SAFETENSORS_METADATA)
    # tokenizers: vocab.json + merges.txt + tokenizer_config.json + special_tokens_map.json only
    write_tokenizer_dirs(out, ctx.vocab_gz)
    # scheduler: add the legacy keys SDXL's scheduler_config.json carries
    sc_path = out / "scheduler" / "scheduler_config.json"
    sc = json.loads(sc_path.read_text())
    sc.update(SCHEDULER_EXTRA)
    write_json(sc, sc_path)
    # model_index.json: sort keys for stable diffs
    mi_path = out / "model_index.json"
    write_json(json.loads(mi_path.read_text()), mi_path)


def expected_tensors(unet, vae, te1, te2) -> dict:
    return {
        "unet": {k: v.to(torch.float16) for k, v in unet.state_dict().items()},
        "vae": {k: v.to(torch.float16) for k, v in vae.state_dict().items()},
        "text_encoder": {k: v.to(torch.float16) for k, v in published_te_state_dict(te1).items()},
        "text_encoder_2": {k: v.to(torch.float16) for k, v in published_te_state_dict(te2).items()},
    }


def write_single_file(ctx: Context, exp: dict) -> Path:
    sd = {}
    sd.update(sgm.unet_to_sgm(exp["unet"], UNET_CONFIG))
    sd.update(sgm.vae_to_sgm(exp["vae"], VAE_CONFIG))
    sd.update(sgm.te1_to_sgm(exp["text_encoder"]))
    sd.update(sgm.te2_to_sgm(exp["text_encoder_2"], TE2_CONFIG["num_hidden_layers"], LOGIT_SCALE))
    n_in = sum(len(v) for v in exp.values())
    check(len(sd) == n_in + 1 - TE2_CONFIG["num_hidden_layers"] * 4, "SGM key count mismatch")  # qkv stacked, +logit_scale
    path = ctx.models / "tiny-sdxl.safetensors"
    save_safetensors(sd, path, SGM_METADATA)
    return path



def _compare(got: dict, want: dict, what: str) -> None:
    check(set(got) == set(want), f"{what}: key sets differ: {sorted(set(got) ^ set(want))[:8]}")
    for k, w in want.items():
        g = got[k]
        check(tuple(g.shape) == tuple(w.shape), f"{what}: {k} shape {tuple(g.shape)} != {tuple(w.shape)}")
        check(torch.equal(g.float(), w.float()), f"{what}: {k} differs")


def verify_pipeline_folder(ctx: Context, exp: dict) -> None:
    from diffusers import StableDiffusionXLPipeline

    out = ctx.pipeline_dir
    for sub, f in (("unet", DIFFUSERS_FILE), ("vae", DIFFUSERS_FILE), ("text_encoder", TE_FILE), ("text_encoder_2", TE_FILE)):
        raw = load_safetensors(out / sub / f)
        check(all(v.dtype == torch.float16 for v in raw.values()), f"{sub}: not all fp16")
        _compare(raw, exp[sub], f"{sub} file")
        assert_no_zero_tensors(raw, sub)
    pipe = StableDiffusionXLPipeline.from_pretrained(out, dtype=torch.float32, local_files_only=True)
    _compare(pipe.unet.state_dict(), exp["unet"], "loaded unet")
    _compare(pipe.vae.state_dict(), exp["vae"], "loaded vae")
    _compare(published_te_state_dict(pipe.text_encoder), exp["text_encoder"], "loaded text_encoder")
    _compare(published_te_state_dict(pipe.text_encoder_2), exp["text_encoder_2"], "loaded text_encoder_2")
    for tok, pad in ((pipe.tokenizer, 49407), (pipe.tokenizer_2, 0)):
        ids = tok("a photo of sks dog", padding="max_length", max_length=tok.model_max_length, truncation=True).input_ids
        check(len(ids) == 77 and ids[0] == 49406 and ids[-1] == pad, f"tokenizer output {ids[:10]}")
        check(len(tok) == 49408, "tokenizer size")
    log(f"  tokenizer ids: {ids[:8]}")
    sanity_forward(pipe)


@torch.no_grad()
def sanity_forward(pipe) -> None:
    g = torch.Generator().manual_seed(0)
    lat = torch.randn(1, 4, 16, 16, generator=g)
    ehs = torch.randn(1, 77, 128, generator=g)
    cond = {"text_embeds": torch.randn(1, 64, generator=g), "time_ids": torch.tensor([[64.0, 64, 0, 0, 64, 64]])}
    for t in (999, 500, 0):
        y = pipe.unet(lat, t, encoder_hidden_states=ehs, added_cond_kwargs=cond).sample
        check(bool(torch.isfinite(y).all()), "UNet output not finite")
        check(0.1 < y.std().item() < 10 and y.abs().max().item() < 100, f"UNet output not O(1): std {y.std():.3g}")
        log(f"  unet t={t}: std {y.std():.4f} max {y.abs().max():.4f}")
    prompt_embeds, _, pooled, _ = pipe.encode_prompt("a photo of sks dog", do_classifier_free_guidance=False)
    check(prompt_embeds.shape == (1, 77, 128) and pooled.shape == (1, 64), "encode_prompt shapes")
    check(bool(torch.isfinite(prompt_embeds).all()) and 0.1 < prompt_embeds.std().item() < 10, "prompt embeds not O(1)")
    log(f"  prompt_embeds std {prompt_embeds.std():.4f}, pooled std {pooled.std():.4f}")
    img = pipe.vae.decode(torch.randn(1, 4, 8, 8, generator=g) / pipe.vae.config.scaling_factor).sample
    check(img.shape == (1, 3, 64, 64) and bool(torch.isfinite(img).all()) and img.abs().max() < 100, "VAE decode")
    post = pipe.vae.encode(img.clamp(-1, 1)).latent_dist
    check(post.mean.shape == (1, 4, 8, 8) and bool(torch.isfinite(post.mean).all()), "VAE encode")
    log(f"  vae decode std {img.std():.4f}, encode mean std {post.mean.std():.4f}")


def verify_single_file(ctx: Context, path: Path, exp: dict) -> None:
    """Load the SGM file back with diffusers and compare every tensor with the diffusers folder."""
    from diffusers import StableDiffusionXLPipeline
    from diffusers.loaders.single_file_utils import convert_open_clip_checkpoint

    raw = load_safetensors(path)
    check(all(v.dtype == torch.float16 for v in raw.values()), "single file: not all fp16")
    pipe = StableDiffusionXLPipeline.from_single_file(
        str(path), config=str(ctx.pipeline_dir), local_files_only=True, dtype=torch.float32
    )
    _compare(pipe.unet.state_dict(), exp["unet"], "single-file unet")
    _compare(pipe.vae.state_dict(), exp["vae"], "single-file vae")
    _compare(published_te_state_dict(pipe.text_encoder), exp["text_encoder"], "single-file text_encoder")
    # diffusers picks the CLIP converter by hidden width; both fixture encoders are 64 wide, so its
    # from_single_file also takes embedders.0 for text_encoder_2. Check our OpenCLIP block with
    # diffusers' own converter instead.
    te2 = convert_open_clip_checkpoint(pipe.text_encoder_2, raw, prefix=sgm.TE2_PREFIX)
    _compare(te2, exp["text_encoder_2"], "single-file text_encoder_2 (convert_open_clip_checkpoint)")
    wrong = not torch.equal(
        pipe.text_encoder_2.state_dict()["text_model.encoder.layers.0.self_attn.q_proj.weight"],
        exp["text_encoder_2"]["text_model.encoder.layers.0.self_attn.q_proj.weight"].float(),
    )
    log(f"  from_single_file text_encoder_2 {'MIS-loaded (expected, see README)' if wrong else 'loaded correctly'}")



def build(ctx: Context) -> None:
    log("models: building random-weight tiny SDXL")
    unet, vae, te1, te2, sched = make_models()
    exp = expected_tensors(unet, vae, te1, te2)
    write_pipeline(ctx, unet, vae, te1, te2, sched)
    verify_pipeline_folder(ctx, exp)
    sf = write_single_file(ctx, exp)
    verify_single_file(ctx, sf, exp)
    write_index(ctx, exp)
    log("models: done")


def write_index(ctx: Context, exp: dict) -> None:
    from transformers import CLIPTokenizer

    sf = load_safetensors(ctx.models / "tiny-sdxl.safetensors")
    prompts = ["a photo of sks dog", "A Photo of SKS Dog!", ""]
    tokens = {}
    for sub in ("tokenizer", "tokenizer_2"):
        tok = CLIPTokenizer.from_pretrained(ctx.pipeline_dir / sub)
        tokens[sub] = {p: tok(p, padding="max_length", max_length=77, truncation=True).input_ids for p in prompts}
    write_json({
        "files": {
            "diffusers": "models/tiny-sdxl/ (published SDXL layout, fp16)",
            "single_file": "models/tiny-sdxl.safetensors (SGM naming, fp16, ModelSpec metadata)",
        },
        "parameters": {k: sum(v.numel() for v in d.values()) for k, d in exp.items()},
        "tensors": {**{k: len(d) for k, d in exp.items()}, "single_file": len(sf)},
        "single_file_prefixes": {"unet": sgm.UNET_PREFIX, "vae": sgm.VAE_PREFIX, "text_encoder": sgm.TE1_PREFIX,
                                 "text_encoder_2": sgm.TE2_PREFIX},
        "configs": {"unet": _plain(UNET_CONFIG), "vae": _plain(VAE_CONFIG), "text_encoder": TE1_CONFIG,
                    "text_encoder_2": TE2_CONFIG, "scheduler": SCHEDULER_CONFIG, "logit_scale": LOGIT_SCALE},
        "derived": {
            "attention_processors": 44, "adapted_linears_q_k_v_out": 176, "head_dim": 64,
            "heads_per_level": [1, 1, 2], "transformer_blocks": 22,
            "latent_downscale": 8, "unet_downscale": 4,
        },
        "inspect": {
            "single_file": {"kind": "checkpoint", "format": "sgm", "base": "sdxl", "dtype": "F16"},
            "diffusers_unet": {"kind": "checkpoint", "format": "diffusers", "base": "sdxl", "dtype": "F16"},
        },
        "token_ids": tokens,
    }, ctx.reference / "models_index.json")


def _plain(d: dict) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}
