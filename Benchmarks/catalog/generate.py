#!/usr/bin/env python3
"""Writes benchmark inputs for the catalog.

series/ckpt-N.safetensors  N = 1..CHECKPOINTS: an official-layout T-LoRA training (F32): per attention
    projection q_layer [R, in], p_layer [out, R], lambda_layer [1, R] trainable and base_q / base_p /
    base_lambda frozen. Frozen tensors are identical in every checkpoint; trainable ones start equal to
    them and drift a little more at every checkpoint.
loras/lora-K.safetensors   K = 1..LORAS: unrelated kohya-style fp16 LoRAs (lora_down / lora_up / alpha).

SCALE shrinks the module count (1.0 = the SDXL UNet's 140 attention blocks x 4 projections, rank 64:
about 743 MB per F32 checkpoint). DRIFT, when set, makes each checkpoint's step a relative one: every
trainable tensor moves by DRIFT times its own standard deviation (e.g. 0.008 for 0.8 % of the spread);
unset, the step is 1e-4 absolute.
"""
import json, os, struct, sys
import numpy as np

out = sys.argv[1]
scale = float(os.environ.get("SCALE", "0.125"))
checkpoints = int(os.environ.get("CHECKPOINTS", "8"))
loras = int(os.environ.get("LORAS", "8"))
drift = os.environ.get("DRIFT")

def write(path, tensors, metadata):
    header, offset, blobs = {"__metadata__": metadata}, 0, []
    order = sorted(tensors, key=lambda kv: kv[0])
    for name, arr in order:
        b = arr.tobytes()
        header[name] = {"dtype": {"float32": "F32", "float16": "F16"}[str(arr.dtype)],
                        "shape": list(arr.shape), "data_offsets": [offset, offset + len(b)]}
        offset += len(b)
        blobs.append(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        for b in blobs:
            f.write(b)

# SDXL UNet transformer blocks: 4 at 640 channels (down 1), 60 at 1280 (down 2, mid, up 0), 6 at 640
# (up 1); each has attn1 and attn2 with four projections: 560 adapted modules.
modules = []
for ch, blocks in [(640, 4), (1280, 60), (640, 6)]:
    for b in range(blocks):
        for attn in ("attn1", "attn2"):
            for proj in ("to_q", "to_k", "to_v", "to_out.0"):
                inp = 2048 if (attn == "attn2" and proj in ("to_k", "to_v")) else ch
                modules.append((f"down.{ch}.{b}.{attn}.processor.{proj}_lora", inp, ch))
count = max(1, int(len(modules) * scale))
modules = modules[:count]
rank = 64

os.makedirs(f"{out}/series", exist_ok=True)
rng = np.random.default_rng(0)
base = {}
for name, inp, outc in modules:
    q, _ = np.linalg.qr(rng.standard_normal((inp, rank)).astype(np.float32))
    p, _ = np.linalg.qr(rng.standard_normal((outc, rank)).astype(np.float32))
    lam = np.sort(rng.random(rank).astype(np.float32))[::-1].copy() * 0.1
    base[name] = (q.T.copy(), p.copy(), lam.reshape(1, rank))
state = {k: (v[0].copy(), v[1].copy(), v[2].copy()) for k, v in base.items()}
for n in range(1, checkpoints + 1):
    tensors = []
    for name, (q0, p0, l0) in base.items():
        q, p, l = state[name]
        for t in (q, p, l):
            step = float(drift) * float(t.std()) if drift else 1e-4
            t += rng.standard_normal(t.shape).astype(np.float32) * np.float32(step)
        tensors += [(f"{name}.q_layer.weight", q), (f"{name}.p_layer.weight", p), (f"{name}.lambda_layer", l),
                    (f"{name}.base_q.weight", q0), (f"{name}.base_p.weight", p0), (f"{name}.base_lambda", l0)]
    write(f"{out}/series/ckpt-{n}.safetensors", tensors, {"tlora.method": "ortho", "tlora.steps": str(100 * n)})

os.makedirs(f"{out}/loras", exist_ok=True)
for k in range(1, loras + 1):
    r = np.random.default_rng(1000 + k)
    tensors = []
    for name, inp, outc in modules:
        key = "lora_unet_" + name.replace(".", "_")
        down = (r.standard_normal((32, inp)) * 0.02).astype(np.float16)
        up = (r.standard_normal((outc, 32)) * 0.005).astype(np.float16)
        tensors += [(key + ".lora_down.weight", down), (key + ".lora_up.weight", up),
                    (key + ".alpha", np.array(16, dtype=np.float16))]
    write(f"{out}/loras/lora-{k}.safetensors", tensors, {"ss_network_dim": "32", "ss_base_model_version": "sdxl_base_v1-0"})
