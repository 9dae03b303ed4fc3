#!/usr/bin/env python3
"""Writes COUNT small synthetic kohya LoRAs (SDXL module names, rank 4, float32) into a folder tree
DIR/base-B/style-S/lora-N.safetensors, 100 files per folder. Every tenth file is a copy of the one
before it with its ΔW scaled by 1.0001 (a near-duplicate). Standard library only."""
import json
import os
import random
import struct
import sys

MODULES = [f"lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn1_to_{p}" for p in ("q", "k", "v", "out_0")]
RANK, WIDTH = 4, 64


def write(path, tensors, metadata):
    header, data, offset = {"__metadata__": metadata}, b"", 0
    for name, shape, values in tensors:
        raw = struct.pack(f"<{len(values)}f", *values)
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + len(raw)]}
        data += raw
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + data)


def adapter(seed, scale=1.0):
    rng = random.Random(seed)
    tensors = []
    for m in MODULES:
        tensors.append((f"{m}.lora_down.weight", [RANK, WIDTH], [rng.gauss(0, 0.1) for _ in range(RANK * WIDTH)]))
        tensors.append((f"{m}.lora_up.weight", [WIDTH, RANK], [scale * rng.gauss(0, 0.1) for _ in range(RANK * WIDTH)]))
    return tensors


def main():
    root, count = sys.argv[1], int(sys.argv[2])
    for n in range(count):
        folder = os.path.join(root, f"base-{n // 1000}", f"style-{n // 100 % 10}")
        os.makedirs(folder, exist_ok=True)
        near = n % 10 == 9
        tensors = adapter(n - 1 if near else n, 1.0001 if near else 1.0)
        write(os.path.join(folder, f"lora-{n}.safetensors"), tensors,
              {"ss_base_model_version": "sdxl_base_v1-0", "ss_tag_frequency": json.dumps({f"10_style{n}": {f"style{n}": 3}})})


main()
