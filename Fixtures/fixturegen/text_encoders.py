"""Forward references of both fixture text encoders (transformers, float32) for a few prompts.

For each prompt p (index i) and encoder e in (text_encoder, text_encoder_2):
  ids_{e}_{i}            [1, 77]      token ids (as float32) from the pipeline's tokenizer / tokenizer_2
  penultimate_{e}_{i}    [1, 77, 64]  hidden_states[-2] (before final_layer_norm; what SDXL uses)
  last_{e}_{i}           [1, 77, 64]  last_hidden_state (after final_layer_norm)
  text_embeds_{i}        [1, 64]      text_encoder_2's pooled output times text_projection
and, for prompt 0 only, text_encoder_2 rebuilt with num_attention_heads 4 (the same weights, head size 16;
the fixture's configs have one head, SDXL's 12 and 20):
  penultimate_heads4_0, last_heads4_0 [1, 77, 64], text_embeds_heads4_0 [1, 64]
The prompts are stored in the metadata ("prompts", a JSON list).
"""

from __future__ import annotations

import json

import torch

from .common import assert_no_zero_tensors, check, log, save_safetensors

PROMPTS = [
    "a photo of sks dog",
    "",
    "a sks dog " + " ".join(f"with a {c} hat and a {c} scarf" for c in
                            ("red", "blue", "green", "yellow", "purple", "orange", "white", "black", "pink", "grey")),
    "crème brûlée, «guillemets» & 😀 — (sks dog:1.2)!?",
]


@torch.no_grad()
def build(ctx) -> None:
    from transformers import CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

    pipe = ctx.pipeline_dir
    encoders = {
        "text_encoder": (CLIPTextModel, "tokenizer"),
        "text_encoder_2": (CLIPTextModelWithProjection, "tokenizer_2"),
    }
    out = {}
    for name, (cls, tok_dir) in encoders.items():
        model = cls.from_pretrained(str(pipe / name), torch_dtype=torch.float32, local_files_only=True).eval()
        tok = CLIPTokenizer.from_pretrained(str(pipe / tok_dir), local_files_only=True)
        full = tok(PROMPTS)["input_ids"]
        check(any(len(e) > 77 for e in full), "no prompt is over 77 tokens")
        for i, prompt in enumerate(PROMPTS):
            ids = tok([prompt], padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids
            res = model(input_ids=ids, output_hidden_states=True)
            out[f"ids_{name}_{i}"] = ids.to(torch.float32)
            out[f"penultimate_{name}_{i}"] = res.hidden_states[-2].float()
            out[f"last_{name}_{i}"] = res.last_hidden_state.float()
            if name == "text_encoder_2":
                out[f"text_embeds_{i}"] = res.text_embeds.float()
    model = CLIPTextModelWithProjection.from_pretrained(
        str(pipe / "text_encoder_2"), torch_dtype=torch.float32, local_files_only=True, num_attention_heads=4).eval()
    check(model.config.num_attention_heads == 4, "heads override not applied")
    res = model(input_ids=out["ids_text_encoder_2_0"].to(torch.long), output_hidden_states=True)
    out["penultimate_heads4_0"] = res.hidden_states[-2].float()
    out["last_heads4_0"] = res.last_hidden_state.float()
    out["text_embeds_heads4_0"] = res.text_embeds.float()
    check(not torch.allclose(out["last_heads4_0"], out["last_text_encoder_2_0"]), "4 heads should differ from 1")
    assert_no_zero_tensors({k: v for k, v in out.items() if not k.startswith("ids_")}, "text_encoders")
    path = ctx.reference / "text_encoders.safetensors"
    save_safetensors(out, path, metadata={"prompts": json.dumps(PROMPTS, ensure_ascii=False)})
    log(f"[text_encoders] {len(PROMPTS)} prompts, {len(out)} tensors -> {path.name}")
