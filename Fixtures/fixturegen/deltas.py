"""Name tables, readers for the fixture adapter files, and float64 ΔW references.

All name conversion goes through `Names`, built from the model's module list (never by guessing).
Canonical module = `<component>.<diffusers module path>`, text encoders with `text_model.`:
  unet.down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q
  text_encoder.text_model.encoder.layers.0.self_attn.q_proj
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

import torch
import yaml

from . import tlora_official as official
from .common import Context, check, load_safetensors, randn, read_metadata, save_safetensors, write_json

UNET_PROJ = ("to_q", "to_k", "to_v", "to_out.0")
TE_PROJ = ("q_proj", "k_proj", "v_proj", "out_proj")
TE_TO_ATTN_PROCS = {"q_proj": "to_q", "k_proj": "to_k", "v_proj": "to_v", "out_proj": "to_out"}
KOHYA_PREFIX = {"unet": "lora_unet", "text_encoder": "lora_te1", "text_encoder_2": "lora_te2"}

TLORA_TIMESTEPS = [0, 1, 250, 500, 750, 999]
# Modules whose full ΔW matrices are stored (every module gets a probe product ΔW·x).
SPOT_MODULES = [
    "unet.down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q",  # PEFT rank_pattern (r=2)
    "unet.down_blocks.2.attentions.1.transformer_blocks.1.attn2.to_k",  # cross-attention 128x128
    "unet.mid_block.attentions.0.transformer_blocks.0.attn1.to_out.0",  # PEFT alpha_pattern
    "unet.up_blocks.1.attentions.2.transformer_blocks.1.attn2.to_v",    # last adapted attention
]


@dataclass
class Names:
    unet_modules: list
    te_modules: list
    shapes: dict  # canonical -> (out, in)
    te1_flat: bool
    _kohya: dict = field(default_factory=dict)
    _attn_procs: dict = field(default_factory=dict)
    _official: dict = field(default_factory=dict)

    @classmethod
    def from_pipeline(cls, pipe) -> "Names":
        unet_mods, te_mods, shapes = [], [], {}
        for mname, mod in pipe.unet.named_modules():
            if isinstance(mod, torch.nn.Linear) and ".attentions." in mname and mname.endswith(UNET_PROJ) \
                    and ".transformer_blocks." in mname:
                c = f"unet.{mname}"
                unet_mods.append(c)
                shapes[c] = tuple(mod.weight.shape)
        te1_flat = not hasattr(pipe.text_encoder, "text_model")
        for comp in ("text_encoder", "text_encoder_2"):
            model = getattr(pipe, comp)
            flat = not hasattr(model, "text_model")
            for mname, mod in model.named_modules():
                if isinstance(mod, torch.nn.Linear) and mname.endswith(TE_PROJ) and ".self_attn." in mname:
                    c = f"{comp}.{'text_model.' if flat else ''}{mname}"
                    te_mods.append(c)
                    shapes[c] = tuple(mod.weight.shape)
        n = cls(unet_mods, te_mods, shapes, te1_flat)
        for c in unet_mods + te_mods:
            n._kohya[n.kohya_name(c)] = c
            for which in ("down", "up"):
                n._attn_procs[n.attn_procs_key(c, which)] = c
        for c in unet_mods:
            path, proj = c[len("unet."):].rsplit(".", 1) if not c.endswith("to_out.0") else (c[len("unet."):-len(".to_out.0")], "to_out")
            n._official[f"{path}.processor.{proj}_lora"] = c
        return n

    @property
    def all_modules(self) -> list:
        return self.unet_modules + self.te_modules

    def canonical(self, comp: str, mname: str) -> str:
        c = f"{comp}.{'text_model.' if comp == 'text_encoder' and self.te1_flat and not mname.startswith('text_model.') else ''}{mname}"
        check(c in self.shapes, f"unknown module {c}")
        return c

    @staticmethod
    def kohya_name(canon: str) -> str:
        comp, path = canon.split(".", 1)
        return f"{KOHYA_PREFIX[comp]}_{path.replace('.', '_')}"

    @staticmethod
    def attn_procs_key(canon: str, which: str) -> str:
        if canon.startswith("unet."):
            if canon.endswith(".to_out.0"):
                path, proj = canon[: -len(".to_out.0")], "to_out"
            else:
                path, proj = canon.rsplit(".", 1)
            return f"{path}.processor.{proj}_lora.{which}.weight"
        path, proj = canon.rsplit(".", 1)
        return f"{path}.{TE_TO_ATTN_PROCS[proj]}_lora.{which}.weight"

    def from_kohya(self, name: str) -> str:
        return self._kohya[name]

    def from_attn_procs(self, key: str) -> str:
        return self._attn_procs[key]

    def from_official(self, adapter_path: str) -> str:
        return self._official[adapter_path]


# ----------------------------------------------------------------------------- readers

def _peft_alpha(meta: dict, comp: str, rel: str) -> float:
    pattern = meta.get(f"{comp}.alpha_pattern") or {}
    for key, val in pattern.items():  # PEFT's get_pattern_key semantics
        if re.match(rf"(.*\.)?({key})$", rel):
            return float(val)
    return float(meta[f"{comp}.lora_alpha"])


def read_peft(path, names: Names) -> dict:
    sd = load_safetensors(path)
    meta = json.loads(read_metadata(path)["lora_adapter_metadata"])
    mods = {}
    for k in sd:
        if not k.endswith(".lora_A.weight"):
            continue
        base = k[: -len(".lora_A.weight")]
        comp, rel = base.split(".", 1)
        canon = names.canonical(comp, rel)
        down, up = sd[k], sd[f"{base}.lora_B.weight"]
        rel_cfg = rel[len("text_model."):] if comp == "text_encoder" and names.te1_flat and rel.startswith("text_model.") else rel
        alpha = _peft_alpha(meta, comp, rel_cfg)
        mods[canon] = {"type": "lowrank", "down": down, "up": up, "alpha": alpha, "scale": alpha / down.shape[0]}
    return mods


def read_kohya(path, names: Names) -> dict:
    sd = load_safetensors(path)
    mods = {}
    for k in sd:
        if k.endswith(".lora_down.weight"):
            name = k[: -len(".lora_down.weight")]
            down, up = sd[k], sd[f"{name}.lora_up.weight"]
            alpha = float(sd[f"{name}.alpha"].item()) if f"{name}.alpha" in sd else float(down.shape[0])
            mods[names.from_kohya(name)] = {"type": "lowrank", "down": down, "up": up, "alpha": alpha,
                                            "scale": alpha / down.shape[0]}
    return mods


def read_attn_procs(path, names: Names) -> dict:
    sd = load_safetensors(path)
    mods = {}
    for k in sd:
        if k.endswith(".down.weight"):
            canon = names.from_attn_procs(k)
            up = sd[k[: -len("down.weight")] + "up.weight"]
            mods[canon] = {"type": "lowrank", "down": sd[k], "up": up, "alpha": None, "scale": 1.0}
    return mods


def read_official(path, names: Names) -> dict:
    sd = load_safetensors(path)
    mods = {}
    for k in sd:
        for leaf, kind in ((".q_layer.weight", "ortho"), (".down.weight", "masked")):
            if k.endswith(leaf):
                ap = k[: -len(leaf)]
                canon = names.from_official(ap)
                if kind == "ortho":
                    mods[canon] = {"type": "ortho", "q": sd[f"{ap}.q_layer.weight"], "p": sd[f"{ap}.p_layer.weight"],
                                   "lambda": sd[f"{ap}.lambda_layer"][0], "q0": sd[f"{ap}.base_q.weight"],
                                   "p0": sd[f"{ap}.base_p.weight"], "lambda0": sd[f"{ap}.base_lambda"][0]}
                else:
                    mods[canon] = {"type": "masked", "down": sd[f"{ap}.down.weight"], "up": sd[f"{ap}.up.weight"]}
    return mods


def module_rank(m: dict) -> int:
    return (m["q"] if m["type"] == "ortho" else m["down"]).shape[0]


def delta(m: dict, mask) -> torch.Tensor:
    """ΔW in float64. mask: float [R] (None = all ones)."""
    d = lambda x: x.double()  # noqa: E731
    if m["type"] == "lowrank":
        return m["scale"] * d(m["up"]) @ d(m["down"])
    R = module_rank(m)
    mk = torch.ones(R, dtype=torch.float64) if mask is None else mask.double().reshape(R)
    if m["type"] == "masked":
        return d(m["up"]) @ torch.diag(mk) @ d(m["down"])
    return (d(m["p"]) @ torch.diag(d(m["lambda"]) * mk) @ d(m["q"])
            - d(m["p0"]) @ torch.diag(d(m["lambda0"]) * mk) @ d(m["q0"]))


# ----------------------------------------------------------------------------- references

def _schedule(ctx: Context, aid: str):
    hp_path = ctx.adapters / aid / "logs" / "hparams.yml"
    hp = yaml.safe_load(hp_path.read_text())
    return {"max_rank": hp["lora_rank"], "min_rank": hp["min_rank"], "rank_alpha": hp["alpha_rank_scale"],
            "timesteps": official.MAX_TIMESTEP}


def read_all(ctx: Context, names: Names) -> dict:
    a = ctx.adapters
    refs = {
        "peft": read_peft(a / "peft" / "pytorch_lora_weights.safetensors", names),
        "kohya": read_kohya(a / "kohya" / "kohya_from_peft.safetensors", names),
        "attn-procs": read_attn_procs(a / "attn-procs" / "pytorch_lora_weights.safetensors", names),
        "official-ortho": read_official(a / "official-ortho" / "checkpoint-20" / "pytorch_lora_weights.safetensors", names),
        "official-vanilla": read_official(a / "official-vanilla" / "checkpoint-20" / "pytorch_lora_weights.safetensors", names),
    }
    flat = read_peft(a / "peft-flat-te" / "pytorch_lora_weights.safetensors", names)
    check(set(flat) == set(refs["peft"]), "peft-flat-te modules differ from peft")
    for aid, mods in refs.items():
        want = set(names.all_modules) if aid in ("peft", "kohya", "attn-procs") else set(names.unet_modules)
        check(set(mods) == want, f"{aid}: module set differs ({len(mods)} vs {len(want)})")
    return refs


def write_references(ctx: Context, names: Names, refs: dict) -> None:
    out = {}
    probes = {}
    for n_in in sorted({s[1] for s in names.shapes.values()}):
        probes[n_in] = randn((n_in,), f"probe/in{n_in}")
        out[f"probe/in{n_in}"] = probes[n_in]
    index = {}
    for aid, mods in refs.items():
        sched = _schedule(ctx, aid) if aid.startswith("official-") else None
        ts = TLORA_TIMESTEPS if sched else [0]
        ranks_at = {}
        for canon, m in mods.items():
            for t in ts:
                mask = official.sigma_mask(t, module_rank(m), sched["min_rank"], sched["rank_alpha"])[0] if sched else None
                if sched:
                    ranks_at[str(t)] = int(mask.sum().item())
                D = delta(m, mask)
                check(D.abs().max().item() > 0, f"{aid}/{canon}/t{t}: ΔW is zero")
                out[f"{aid}/{canon}/t{t}/probe"] = (D @ probes[D.shape[1]].double()).float()
                if canon in SPOT_MODULES or not canon.startswith("unet."):
                    out[f"{aid}/{canon}/t{t}"] = D.float()
        index[aid] = _index_entry(ctx, aid, mods, sched, ts, ranks_at)
    index["peft-flat-te"] = _flat_entry(index["peft"])
    index["official-ortho-nohparams"] = _nohparams_entry(index["official-ortho"])
    save_safetensors(out, ctx.reference / "adapters_delta.safetensors", {"format": "pt"})
    write_json({
        "conventions": {
            "full": "<adapter-id>/<canonical module>/t<T>: ΔW(t) [out, in] F32 (computed in float64); stored for "
                    "the spot modules and every text-encoder module",
            "probe": "<adapter-id>/<canonical module>/t<T>/probe: ΔW(t) @ probe/in<in> [out] F32 (float64 "
                     "product), stored for every module of every adapter",
            "probe_vectors": "probe/in<N> [N] F32",
            "canonical_module": "unet.<diffusers module path> | text_encoder.text_model.<...> | text_encoder_2.text_model.<...>",
            "lowrank": "ΔW = (alpha / rank) · up · down (alpha absent → rank)",
            "official_ortho": "ΔW(t) = P diag(λ ⊙ m(t)) Q − P0 diag(λ0 ⊙ m(t)) Q0",
            "official_vanilla": "ΔW(t) = up diag(m(t)) down (no scale)",
            "mask": "m(t)[i] = 1 for i < r(t), r(t) = int(((1000 − t)/1000)^rank_alpha · (R − min_rank)) + min_rank in float32",
        },
        "spot_modules": SPOT_MODULES,
        "adapters": index,
    }, ctx.reference / "adapters_index.json")


def _summary(mods: dict):
    ranks = sorted({module_rank(m) for m in mods.values()})
    comps = {}
    for c in mods:
        comp = c.split(".", 1)[0]
        comps[comp] = comps.get(comp, 0) + 1
    return ranks, comps


def _index_entry(ctx, aid, mods, sched, ts, ranks_at) -> dict:
    ranks, comps = _summary(mods)
    odd_ranks = {c: module_rank(m) for c, m in mods.items() if module_rank(m) != max(ranks)}
    e = {"module_count": len(mods), "modules_per_component": comps, "ranks": ranks, "rank_exceptions": odd_ranks,
         "timesteps": ts, "dtype": "F32"}
    if aid == "peft":
        alphas = {c: m["alpha"] for c, m in mods.items()}
        e.update(path="adapters/peft/pytorch_lora_weights.safetensors", format="peft", kind="lora",
                 alpha={"unet": 8.0, "text_encoder": 4.0, "text_encoder_2": 4.0},
                 alpha_exceptions={c: a for c, a in alphas.items() if c.startswith("unet.") and a != 8.0},
                 scale={"unet": 2.0, "text_encoder": 1.0, "text_encoder_2": 1.0},
                 metadata_keys=["format", "lora_adapter_metadata"],
                 inspect={"kind": "lora", "format": "peft", "rank": 4, "alpha": 8.0, "schedule": None},
                 notes="written by StableDiffusionXLPipeline.save_lora_weights; text_encoder keys carry text_model. "
                       "(published layout); rank_pattern gives one module rank 2 (scale 8/2 = 4), alpha_pattern "
                       "gives one module alpha 12 (scale 3)")
    elif aid == "kohya":
        e.update(path="adapters/kohya/kohya_from_peft.safetensors", format="kohya", kind="lora",
                 alpha="= rank of each module, stored as 0-dim I64 tensors", scale=1.0, metadata_keys=[],
                 naming="diffusers block names (lora_unet_down_blocks_1_attentions_0_...), not SGM names",
                 inspect={"kind": "lora", "format": "kohya", "rank": 4, "alpha": 4.0, "schedule": None},
                 notes="diffusers convert_state_dict_to_kohya(peft file): it writes alpha = rank and so drops the "
                       "PEFT lora_alpha; ΔW here = up·down = ΔW(peft)/scale(peft)")
    elif aid == "attn-procs":
        e.update(path="adapters/attn-procs/pytorch_lora_weights.safetensors", format="attn-procs", kind="lora",
                 alpha=None, scale=1.0, metadata_keys=["format"],
                 inspect={"kind": "lora", "format": "attn-procs", "rank": 4, "alpha": None, "schedule": None},
                 notes="PEFT factors renamed to old diffusers attn-procs keys (unet.<attn>.processor.to_q_lora.down"
                       ".weight; text_encoder*.text_model....self_attn.to_q_lora.down.weight); no alpha → scale 1, "
                       "so ΔW equals the kohya fixture's")
    else:
        method = "tlora" if aid == "official-ortho" else "vanilla-tlora"
        e.update(path=f"adapters/{aid}/checkpoint-20/pytorch_lora_weights.safetensors", format="tlora-official",
                 kind="tlora", method=method, hparams=f"adapters/{aid}/logs/hparams.yml", schedule=sched,
                 rank_at=ranks_at, metadata_keys=["format"], trigger_phrase="sks dog",
                 inspect={"kind": "tlora", "format": "tlora-official", "method": method, "rank": sched["max_rank"],
                          "schedule": sched, "trigger_phrase": "sks dog"},
                 notes="official layout (no unet. prefix), F32; factors perturbed from their init (simulated "
                       "training), base_* are the initial values")
    return e


def _flat_entry(peft: dict) -> dict:
    e = dict(peft)
    e.update(path="adapters/peft-flat-te/pytorch_lora_weights.safetensors", delta_ref="peft",
             notes="identical tensors to peft, but text_encoder keys WITHOUT text_model. (what diffusers 0.42 + "
                   "transformers >= 5.6 write, CLIPTextModel being flattened); no own entries in adapters_delta")
    return e


def _nohparams_entry(ortho: dict) -> dict:
    e = {k: v for k, v in ortho.items() if k not in ("hparams", "schedule", "rank_at")}
    e.update(path="adapters/official-ortho-nohparams/pytorch_lora_weights.safetensors", delta_ref="official-ortho",
             schedule=None, timesteps=[0],
             inspect={"kind": "tlora", "format": "tlora-official", "method": "tlora", "rank": 8, "schedule": None},
             notes="same file as official-ortho/checkpoint-20 without logs/hparams.yml: schedule unknown (min_rank "
                   "must come from --min-rank; the official inference silently assumes 1); ΔW at t=0 equals "
                   "official-ortho's")
    return e
