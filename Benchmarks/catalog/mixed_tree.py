#!/usr/bin/env python3
"""Writes COUNT (default 200) kohya-named fp16 LoRAs of mixed bases into DIR/<base>/<style>/lora-N.safetensors:
SD 1.5, SDXL and FLUX.1 in turn, each with its real module names and shapes, the rank chosen so the file
is a size drawn evenly from 20-300 MB (times SIZE_SCALE, default 1.0: about 32 GB in all). Factors are
normal fp16 numbers (as compressible as trained factors: zstd takes a few percent, from the exponent
bits). Needs numpy."""
import json
import os
import struct
import sys

import numpy as np


def transformer_block(p, width, context):
    """One UNet transformer block's Linears under kohya prefix `p`: (name, in, out)."""
    mods = [(p + f"attn1_to_{x}", width, width) for x in ("q", "k", "v")] + [(p + "attn1_to_out_0", width, width)]
    mods += [(p + "attn2_to_q", width, width), (p + "attn2_to_k", context, width), (p + "attn2_to_v", context, width),
             (p + "attn2_to_out_0", width, width), (p + "ff_net_0_proj", width, 8 * width), (p + "ff_net_2", 4 * width, width)]
    return mods


def sd15_modules():
    """SD 1.5 UNet attention blocks (kohya names) and CLIP-L layers: (name, in, out)."""
    mods = []
    blocks = [("down_blocks_0", 320, 2), ("down_blocks_1", 640, 2), ("down_blocks_2", 1280, 2),
              ("up_blocks_1", 1280, 3), ("up_blocks_2", 640, 3), ("up_blocks_3", 320, 3), ("mid_block", 1280, 1)]
    for block, width, count in blocks:
        for a in range(count):
            mods += transformer_block(f"lora_unet_{block}_attentions_{a}_transformer_blocks_0_", width, context=768)
    for layer in range(12):
        p = f"lora_te_text_model_encoder_layers_{layer}_"
        mods += [(p + f"self_attn_{x}_proj", 768, 768) for x in ("q", "k", "v", "out")]
        mods += [(p + "mlp_fc1", 768, 3072), (p + "mlp_fc2", 3072, 768)]
    return mods


def sdxl_modules():
    """SDXL UNet transformer blocks in SGM's kohya names (input/middle/output blocks), 2048-wide cross attention."""
    mods = []
    blocks = [(f"input_blocks_{i}_1", 640, 2) for i in (4, 5)] + [(f"input_blocks_{i}_1", 1280, 10) for i in (7, 8)]
    blocks += [("middle_block_1", 1280, 10)] + [(f"output_blocks_{i}_1", 1280, 10) for i in (0, 1, 2)]
    blocks += [(f"output_blocks_{i}_1", 640, 2) for i in (3, 4, 5)]
    for block, width, depth in blocks:
        for t in range(depth):
            mods += transformer_block(f"lora_unet_{block}_transformer_blocks_{t}_", width, context=2048)
    return mods


def flux_modules():
    """FLUX.1 in BFL's kohya names: 19 double blocks (fused qkv) and 38 single blocks (linear1 = q, k, v, MLP)."""
    w, mods = 3072, []
    for i in range(19):
        for s in ("img", "txt"):
            p = f"lora_unet_double_blocks_{i}_{s}_"
            mods += [(p + "attn_qkv", w, 3 * w), (p + "attn_proj", w, w), (p + "mlp_0", w, 4 * w), (p + "mlp_2", 4 * w, w)]
    for i in range(38):
        p = f"lora_unet_single_blocks_{i}_"
        mods += [(p + "linear1", w, 7 * w), (p + "linear2", 5 * w, w)]
    return mods


BASES = [("sd15", sd15_modules(), "sd_v1"), ("sdxl", sdxl_modules(), "sdxl_base_v1-0"), ("flux", flux_modules(), "flux1")]


def write(path, modules, rank, rng, metadata):
    header, offset, sizes = {"__metadata__": metadata}, 0, []
    for name, width, out in modules:
        for key, shape in ((name + ".lora_down.weight", [rank, width]), (name + ".lora_up.weight", [out, rank]), (name + ".alpha", [])):
            n = int(np.prod(shape)) * 2
            header[key] = {"dtype": "F16", "shape": shape, "data_offsets": [offset, offset + n]}
            sizes.append((key, shape))
            offset += n
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text)
        for key, shape in sizes:
            if key.endswith(".alpha"):
                f.write(np.float16(rank).tobytes())
            else:
                std = 0.02 if ".lora_up." in key else shape[1] ** -0.5
                f.write((rng.standard_normal(shape, dtype=np.float32) * std).astype(np.float16).tobytes())


def main():
    root, count = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 200
    scale = float(os.environ.get("SIZE_SCALE", "1.0"))
    rng = np.random.default_rng(20261204)
    total = 0
    for n in range(count):
        base, modules, version = BASES[n % len(BASES)]
        target = rng.uniform(20e6, 300e6) * scale
        per_rank = sum(w + o for _, w, o in modules) * 2
        rank = max(1, round(target / per_rank))
        folder = os.path.join(root, base, f"style-{n % 7}")
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, f"lora-{n}.safetensors")
        write(path, modules, rank, rng, {"ss_base_model_version": version, "ss_network_dim": str(rank)})
        total += os.path.getsize(path)
    print(f"{count} files, {total / 1e6:.0f} MB")


if __name__ == "__main__":
    main()
