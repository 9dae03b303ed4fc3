#!/usr/bin/env python3
"""The PyTorch side of the text-encoder benchmark (Benchmarks/text_encoders/run.sh).

    te_torch.py CHECKPOINT PROMPT [RUNS] [--compare TLKIT_OUTPUT]

Builds transformers' CLIPTextModel and CLIPTextModelWithProjection with SDXL's configs
(Benchmarks/make_sdxl_random.py), loads their weights from a single-file SDXL checkpoint in float32 and
times SDXL's conditioning of one prompt as diffusers' pipeline computes it: the penultimate hidden states
of both encoders concatenated [1, 77, 2048] and the projected pooled embedding of the second [1, 1280].
Tokenizers: CLIPTokenizer from Fixtures/models/tiny-sdxl/tokenizer{,_2} (the real vocabulary and SDXL's
padding: EOS for the first, `!` for the second).

Prints `load SECONDS` (models, weights and tokenizers), `encode SECONDS` (best of RUNS, default 3, after
one warm-up) and the peak RSS in MB. With --compare, also the scale-relative difference
max|tlkit − torch| / max|torch| of both outputs, reading tlkit-te-bench's `context`/`pooled` lines.
THREADS sets torch's thread count (default 2).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "Fixtures"))
sys.path.insert(0, str(REPO / "Benchmarks"))

from fixturegen import sgm  # noqa: E402
from make_sdxl_random import LOGIT_SCALE, SDXL_TE1, SDXL_TE2, published_te  # noqa: E402

TOKENIZERS = REPO / "Fixtures/models/tiny-sdxl"


def te2_from_sgm(sgm_names: set, n_layers: int) -> dict:
    """Published (HF) name -> (OpenCLIP name, how to cut the tensor): the inverse of sgm.te2_to_sgm.
    The fused attention in_proj holds q, k, v stacked along dim 0; the text projection is transposed."""
    oc = sgm.TE2_PREFIX
    out = {
        "text_model.embeddings.token_embedding.weight": (oc + "token_embedding.weight", None),
        "text_model.embeddings.position_embedding.weight": (oc + "positional_embedding", None),
        "text_model.final_layer_norm.weight": (oc + "ln_final.weight", None),
        "text_model.final_layer_norm.bias": (oc + "ln_final.bias", None),
        "text_projection.weight": (oc + "text_projection", "t"),
    }
    rename = {"self_attn.out_proj": "attn.out_proj", "layer_norm1": "ln_1", "layer_norm2": "ln_2",
              "mlp.fc1": "mlp.c_fc", "mlp.fc2": "mlp.c_proj"}
    for i in range(n_layers):
        hf, block = f"text_model.encoder.layers.{i}.", f"{oc}transformer.resblocks.{i}."
        for kind in ("weight", "bias"):
            for j, p in enumerate("qkv"):
                out[f"{hf}self_attn.{p}_proj.{kind}"] = (f"{block}attn.in_proj_{kind}", j)
            for a, b in rename.items():
                out[f"{hf}{a}.{kind}"] = (f"{block}{b}.{kind}", None)
    # Every OpenCLIP tensor the forward mapping writes is read back (logit_scale is not a model weight).
    used = {name for name, _ in out.values()} | {oc + "logit_scale"}
    assert used == sgm_names, sorted(used ^ sgm_names)[:5]
    return out


def load_weights(model, f, mapping: dict) -> None:
    """mapping: published name -> (checkpoint name, cut). Loads in float32 with assign=True (meta model)."""
    flat = not hasattr(model, "text_model")  # transformers >= 5.6 flattens CLIPTextModel
    sd = {}
    for name, (source, cut) in mapping.items():
        t = f.get_tensor(source).float()
        if cut == "t":
            t = t.t().contiguous()
        elif cut is not None:
            t = t.chunk(3, dim=0)[cut].contiguous()
        sd[name.removeprefix("text_model.") if flat and name.startswith("text_model.") else name] = t
    model.load_state_dict(sd, assign=True, strict=False)
    missing = [k for k in model.state_dict() if k not in sd and not k.endswith("position_ids")]
    assert not missing, missing[:5]


def load(path: str):
    from safetensors import safe_open
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

    with torch.device("meta"):
        te1 = CLIPTextModel(CLIPTextConfig(**SDXL_TE1))
        te2 = CLIPTextModelWithProjection(CLIPTextConfig(**SDXL_TE2))
    meta1 = published_te(te1)
    meta2 = published_te(te2)
    names1 = sgm.te1_to_sgm(meta1)
    names2 = sgm.te2_to_sgm(meta2, SDXL_TE2["num_hidden_layers"], LOGIT_SCALE)
    with safe_open(path, framework="pt") as f:
        load_weights(te1, f, {hf: (name, None) for hf, name in zip(meta1, names1)})
        load_weights(te2, f, te2_from_sgm(set(names2), SDXL_TE2["num_hidden_layers"]))
    for m in (te1, te2):  # position_ids is a non-persistent buffer, left on the meta device
        emb = getattr(m, "text_model", m).embeddings
        if getattr(emb, "position_ids", None) is not None and emb.position_ids.is_meta:
            emb.register_buffer("position_ids", torch.arange(emb.position_embedding.num_embeddings).unsqueeze(0),
                                persistent=False)
    tok1 = CLIPTokenizer.from_pretrained(TOKENIZERS / "tokenizer")
    tok2 = CLIPTokenizer.from_pretrained(TOKENIZERS / "tokenizer_2")
    return te1.eval(), te2.eval(), tok1, tok2


@torch.no_grad()
def conditioning(te1, te2, tok1, tok2, prompt: str):
    def ids(tok):
        return tok(prompt, padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids
    out1 = te1(ids(tok1), output_hidden_states=True)
    out2 = te2(ids(tok2), output_hidden_states=True)
    context = torch.cat([out1.hidden_states[-2], out2.hidden_states[-2]], dim=-1)
    return context, out2.text_embeds


def read_tlkit(path: str) -> dict:
    values = {}
    for line in Path(path).read_text().splitlines():
        name, *rest = line.split()
        if name in ("context", "pooled"):
            values[name] = torch.tensor([float(v) for v in rest])
    return values


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint")
    ap.add_argument("prompt")
    ap.add_argument("runs", nargs="?", type=int, default=3)
    ap.add_argument("--compare", metavar="TLKIT_OUTPUT")
    args = ap.parse_args()
    torch.set_num_threads(int(os.environ.get("THREADS", "2")))

    start = time.perf_counter()
    models = load(args.checkpoint)
    load_s = time.perf_counter() - start
    context, pooled = conditioning(*models, args.prompt)  # warm-up
    encode_s = float("inf")
    for _ in range(max(1, args.runs)):
        start = time.perf_counter()
        context, pooled = conditioning(*models, args.prompt)
        encode_s = min(encode_s, time.perf_counter() - start)
    print(f"load {load_s:.2f}\nencode {encode_s:.3f}")
    print(f"peak_rss_mb {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f}")
    print("context[:4]", " ".join(f"{v:.6f}" for v in context.flatten()[:4].tolist()))
    print("pooled[:4]", " ".join(f"{v:.6f}" for v in pooled.flatten()[:4].tolist()))
    if args.compare:
        theirs = read_tlkit(args.compare)
        for name, ours in (("context", context), ("pooled", pooled)):
            other = theirs[name]
            if other.numel() != ours.numel():
                print(f"{name} size {other.numel()} vs torch {ours.numel()}")
                continue
            ref = ours.flatten().double()
            err = (other.double() - ref).abs().max() / ref.abs().max()
            print(f"{name} scale-relative {err.item():.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
