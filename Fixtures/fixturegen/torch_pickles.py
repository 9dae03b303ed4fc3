"""Group `pickles`: `torch.save` archives for the restricted pickle reader.

- adapters/torch/lora.pt: the kohya fixture's tensors saved with torch.save (a LoRA as `lora.pt`).
- adapters/torch/layouts.pt + reference/torch_layouts.safetensors: views (transposed, offset, strided),
  f16/bf16/f64/int64, a Parameter, nested dicts and a plain number, with their contiguous values.
- adapters/torch/hostile-system.pt: a torch.save archive whose pickle calls os.system to create
  /tmp/tlkit-hostile-pickle-ran; the reader must refuse it without running anything.
"""

from __future__ import annotations

import collections

import torch

from .common import Context, load_safetensors, log, save_safetensors

MARKER = "/tmp/tlkit-hostile-pickle-ran"


class _Hostile:
    def __reduce__(self):
        import os

        return (os.system, (f"touch {MARKER}",))


def build(ctx: Context) -> None:
    out = ctx.adapters / "torch"
    out.mkdir(parents=True, exist_ok=True)
    kohya = load_safetensors(ctx.adapters / "kohya" / "kohya_from_peft.safetensors")
    torch.save(collections.OrderedDict(sorted(kohya.items())), out / "lora.pt")

    base = torch.arange(24, dtype=torch.float32).reshape(4, 6) / 7
    layouts = {
        "transposed": base.t(),
        "offset": base.reshape(-1)[5:17],
        "strided": base[::2, 1::2],
        "half": base.to(torch.float16)[1],
        "bf16": base.to(torch.bfloat16).t()[2],
        "double": base.double()[:, :2],
        "long": torch.arange(5, dtype=torch.int64) - 2,
        "param": torch.nn.Parameter(base[:2].clone()),
        "nested": {"inner": {"x": base[3]}},
        "scalar": torch.tensor(2.5),
    }
    saved = dict(layouts, number=3)
    torch.save(saved, out / "layouts.pt")
    flat = {}
    for key, value in layouts.items():
        if isinstance(value, dict):
            flat["nested.inner.x"] = value["inner"]["x"]
        else:
            flat[key] = value.detach().contiguous()
    save_safetensors(flat, ctx.reference / "torch_layouts.safetensors")

    torch.save({"weights": torch.ones(2), "payload": _Hostile()}, out / "hostile-system.pt")
    log("pickles: lora.pt, layouts.pt, hostile-system.pt")
