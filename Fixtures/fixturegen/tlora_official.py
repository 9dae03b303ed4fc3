"""Re-implementation of the official T-LoRA SDXL adapters (ControlGenAI/T-LoRA, MIT).

Mirrors tlora/model/lora.py (LoRALinearLayer, OrthogonalLoRALinearLayer, LoRACrossAttnProcessor),
the rank mask of tlora/trainer_sdxl.py, the processor set-up of LoraTrainerSDXL.setup_model and the
checkpoint layout written by diffusers 0.25 `unet.save_attn_procs` (keys `<processor name>.<param>`,
metadata {"format": "pt"}). Written from the method description; no code copied.
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn as nn
import yaml

PROJS = ("to_q", "to_k", "to_v", "to_out")  # adapter names: <proj>_lora
MAX_TIMESTEP = 1000


def rank_at(t, max_rank: int, min_rank: int, alpha: float, max_timestep: int = MAX_TIMESTEP) -> int:
    """r(t) exactly as the official trainer computes it: torch float32 arithmetic, int() truncation."""
    tt = torch.tensor(t)  # int64 for integer t (training), float32 for float t (sampling)
    return int(((max_timestep - tt) / max_timestep) ** alpha * (max_rank - min_rank)) + min_rank


def sigma_mask(t, max_rank: int, min_rank: int, alpha: float) -> torch.Tensor:
    m = torch.zeros((1, max_rank))
    m[:, : rank_at(t, max_rank, min_rank, alpha)] = 1.0
    return m


class VanillaLoRALinear(nn.Module):
    """Official `lora`: y = up(down(x) * mask); down ~ N(0, (1/r)^2), up = 0."""

    def __init__(self, in_features, out_features, rank, sig_type=None):
        super().__init__()
        self.rank = rank
        self.down = nn.Linear(in_features, rank, bias=False)
        self.up = nn.Linear(rank, out_features, bias=False)
        nn.init.normal_(self.down.weight, std=1 / rank)
        nn.init.zeros_(self.up.weight)

    def forward(self, x, mask=None):
        if mask is None:
            mask = torch.ones((1, self.rank))
        dtype = self.down.weight.dtype
        return self.up(self.down(x.to(dtype)) * mask.to(x.device)).to(x.dtype)


class OrthoLoRALinear(nn.Module):
    """Official `ortho_lora`: y = P((lambda*m) * Qx) - P0((lambda0*m) * Q0 x).

    Init: M ~ N(0, (1/r)^2) of shape (in, out); u, s, vh = svd(M) (full matrices);
    `last`: Q = u[-r:], P = vh[:, -r:], lambda = s[-r:]; base_* are deep copies.
    """

    def __init__(self, in_features, out_features, rank, sig_type="last"):
        super().__init__()
        self.rank = rank
        self.q_layer = nn.Linear(in_features, rank, bias=False)
        self.p_layer = nn.Linear(rank, out_features, bias=False)
        self.lambda_layer = nn.Parameter(torch.ones(1, rank))
        base_m = torch.normal(size=(in_features, out_features), mean=0, std=1 / rank)
        u, s, v = torch.linalg.svd(base_m)
        if sig_type == "last":
            sl_u = sl_v = sl_s = slice(-rank, None)
        elif sig_type == "principal":
            sl_u = sl_v = sl_s = slice(0, rank)
        elif sig_type == "middle":
            st = [math.ceil((n - rank) / 2) for n in (u.shape[0], v.shape[1], s.shape[0])]
            sl_u, sl_v, sl_s = (slice(a, a + rank) for a in st)
        else:
            raise ValueError(sig_type)
        self.q_layer.weight.data = u[sl_u].clone()
        self.p_layer.weight.data = v[:, sl_v].clone()
        self.lambda_layer.data = s[None, sl_s].clone()
        self.base_p = copy.deepcopy(self.p_layer)
        self.base_q = copy.deepcopy(self.q_layer)
        self.base_lambda = copy.deepcopy(self.lambda_layer)
        for p in self.parameters():
            p.data = p.data.contiguous()
        self.base_p.requires_grad_(False)
        self.base_q.requires_grad_(False)
        self.base_lambda.requires_grad_(False)

    def forward(self, x, mask=None):
        if mask is None:
            mask = torch.ones((1, self.rank))
        dtype = self.q_layer.weight.dtype
        m = mask.to(x.device)
        h = self.p_layer(self.q_layer(x.to(dtype)) * self.lambda_layer * m)
        h0 = self.base_p(self.base_q(x.to(dtype)) * self.base_lambda * m)
        return (h - h0).to(x.dtype)


LAYERS = {"lora": VanillaLoRALinear, "ortho_lora": OrthoLoRALinear}


class TLoRAAttnProcessor(nn.Module):
    """Official LoRACrossAttnProcessor: classic (baddbmm) attention with adapters on q, k, v, out."""

    def __init__(self, hidden_size, cross_attention_dim, rank, layer_cls, sig_type):
        super().__init__()
        kv_in = cross_attention_dim or hidden_size
        self.to_q_lora = layer_cls(hidden_size, hidden_size, rank, sig_type=sig_type)
        self.to_k_lora = layer_cls(kv_in, hidden_size, rank, sig_type=sig_type)
        self.to_v_lora = layer_cls(kv_in, hidden_size, rank, sig_type=sig_type)
        self.to_out_lora = layer_cls(hidden_size, hidden_size, rank, sig_type=sig_type)

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, scale=1.0, sigma_mask=None):
        batch, seq, _ = hidden_states.shape
        attention_mask = attn.prepare_attention_mask(attention_mask, seq, batch)
        query = attn.to_q(hidden_states) + scale * self.to_q_lora(hidden_states, sigma_mask)
        query = attn.head_to_batch_dim(query)
        ctx = encoder_hidden_states if encoder_hidden_states is not None else hidden_states
        key = attn.to_k(ctx) + scale * self.to_k_lora(ctx, sigma_mask)
        value = attn.to_v(ctx) + scale * self.to_v_lora(ctx, sigma_mask)
        key = attn.head_to_batch_dim(key)
        value = attn.head_to_batch_dim(value)
        probs = attn.get_attention_scores(query, key, attention_mask)
        hidden_states = attn.batch_to_head_dim(torch.bmm(probs, value))
        hidden_states = attn.to_out[0](hidden_states) + scale * self.to_out_lora(hidden_states, sigma_mask)
        return attn.to_out[1](hidden_states)


def make_processors(unet, trainer_type: str, lora_rank: int, sig_type: str = "last") -> dict:
    """As LoraTrainerSDXL.setup_model: one processor per attention, in unet.attn_processors order."""
    layer_cls = LAYERS[trainer_type]
    cfg = unet.config
    procs = {}
    for name in unet.attn_processors.keys():
        cross = None if name.endswith("attn1.processor") else cfg.cross_attention_dim
        if name.startswith("mid_block"):
            hidden = cfg.block_out_channels[-1]
        elif name.startswith("up_blocks"):
            hidden = list(reversed(cfg.block_out_channels))[int(name[len("up_blocks.")])]
        else:
            hidden = cfg.block_out_channels[int(name[len("down_blocks.")])]
        rank = min(cross, hidden, lora_rank) if cross else min(hidden, lora_rank)
        procs[name] = TLoRAAttnProcessor(hidden, cross, rank, layer_cls, sig_type)
    return procs


def checkpoint_state_dict(procs: dict) -> dict:
    """Keys as AttnProcsLayers.state_dict(): `<processor name>.<adapter>.<param>`."""
    sd = {}
    for name, proc in procs.items():
        for k, v in proc.state_dict().items():
            sd[f"{name}.{k}"] = v.detach().clone().contiguous()
    return sd


def load_into_processors(procs: dict, sd: dict) -> None:
    for name, proc in procs.items():
        sub = {k[len(name) + 1:]: v for k, v in sd.items() if k.startswith(name + ".")}
        proc.load_state_dict(sub, strict=True)


def canonical_module(proc_name: str, proj: str) -> str:
    """`down_blocks...attn1.processor` + `to_out` -> `unet.down_blocks...attn1.to_out.0`."""
    base = proc_name[: -len(".processor")]
    return f"unet.{base}.{'to_out.0' if proj == 'to_out' else proj}"


def hparams(trainer_type: str, lora_rank: int, min_rank: int, alpha_rank_scale: float, steps: int,
            checkpointing_steps: int, exp_hex: str) -> dict:
    """vars(args) of train.py after LoraTrainerSDXL.setup_exp (what yaml.dump writes to hparams.yml)."""
    exp_name = f"00001-{exp_hex}-dog_example_t{trainer_type}{lora_rank}"
    output_dir = f"/home/user/T-LoRA/trained-tlora_dog/{exp_name}"
    argv = [
        "/opt/conda/envs/tlora/bin/python", "train.py",
        "--pretrained_model_name_or_path=stabilityai/stable-diffusion-xl-base-1.0",
        "--train_data_dir=dog_example", "--output_dir=trained-tlora_dog", "--mixed_precision=no",
        f"--trainer_type={trainer_type}", "--trainer_class=sdxl_tlora", f"--num_train_epochs={steps}",
        f"--checkpointing_steps={checkpointing_steps}", "--resolution=1024", "--placeholder_token=sks",
        "--class_name=dog", "--seed=0", f"--lora_rank={lora_rank}", f"--min_rank={min_rank}",
        f"--alpha_rank_scale={alpha_rank_scale}", "--sig_type=last", "--one_image=02.jpg",
    ]
    return {
        "adam_beta1": 0.9, "adam_beta2": 0.999, "adam_epsilon": 1e-08, "adam_weight_decay": 0.0001,
        "alpha_rank_scale": float(alpha_rank_scale), "argv": argv, "checkpointing_steps": checkpointing_steps,
        "class_data_dir": None, "class_name": "dog", "dataloader_num_workers": 1, "exp_name": exp_name,
        "learning_rate": 0.0001, "logging_dir": f"{output_dir}/logs", "lora_rank": lora_rank,
        "min_rank": min_rank, "mixed_precision": "no", "num_train_epochs": steps,
        "num_val_imgs_per_prompt": 5, "one_image": "02.jpg", "output_dir": output_dir,
        "placeholder_token": "sks", "pretrained_model_name_or_path": "stabilityai/stable-diffusion-xl-base-1.0",
        "prior_loss_weight": 1.0, "project_name": "tlora", "resolution": 1024, "revision": None, "seed": 0,
        "sig_type": "last", "train_batch_size": 1, "train_data_dir": "dog_example", "trainer_class": "sdxl_tlora",
        "trainer_type": trainer_type, "validation_prompts": None, "wandb_api_key": None,
        "with_prior_preservation": False,
    }


def dump_hparams(d: dict) -> str:
    return yaml.dump(d)  # PyYAML defaults, as the official trainer (sorted keys, block style)
