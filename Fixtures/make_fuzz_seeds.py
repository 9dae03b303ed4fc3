"""Writes the small seeds of the adapters and catalog fuzz targets (Fuzz/seeds-adapters, Fuzz/seeds-catalog).

Adapter seeds are the reader seeds of each adapter layout, plus the official layout preceded by its
hparams.yml as AdapterProbe reads it. Catalog seeds are blob rows as CatalogProbe reads them: a codec
byte, the raw size (little-endian int64), then the stored bytes, compressed with the zstd command line
tool (which records each frame's content size, as tlkit's encoder does). Standard library only.
"""
import os, re, shutil, struct, subprocess, tempfile

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
adapters = os.path.join(root, "Fuzz", "seeds-adapters")
catalog = os.path.join(root, "Fuzz", "seeds-catalog")
os.makedirs(adapters, exist_ok=True)
os.makedirs(catalog, exist_ok=True)

for name in ["kohya", "peft", "official", "tlkit"]:
    shutil.copy(os.path.join(root, "Fuzz", "seeds", name + ".safetensors"), adapters)
with open(os.path.join(root, "Fixtures", "adapters", "official-ortho", "logs", "hparams.yml"), "rb") as f:
    # The reader seed holds rank-2 factors: its hparams must say so.
    hparams = re.sub(rb"(?m)^lora_rank: \d+", b"lora_rank: 2", f.read())
    hparams = re.sub(rb"(?m)^min_rank: \d+", b"min_rank: 1", hparams)
with open(os.path.join(root, "Fuzz", "seeds", "official.safetensors"), "rb") as f:
    official = f.read()
with open(os.path.join(adapters, "official-hparams.bin"), "wb") as f:
    f.write(b"#hparams\n" + hparams + b"\n#weights\n" + official)

def zstd(data):
    # Compressed from a file, so the frame records its content size (from standard input it would not).
    with tempfile.NamedTemporaryFile() as f:
        f.write(data)
        f.flush()
        return subprocess.run(["zstd", "-q", "-c", "-1", f.name], capture_output=True, check=True).stdout

def shuffle(data, width):
    return b"".join(data[k::width] for k in range(width))

floats = struct.pack("<64f", *[(i % 7 - 3) * 0.125 for i in range(64)])
rows = {
    "raw.bin": (0, floats, floats),
    "zstd.bin": (1, floats, zstd(floats)),
    "shuffle2.bin": (2, floats[:128], zstd(shuffle(floats[:128], 2))),
    "shuffle4.bin": (3, floats, zstd(shuffle(floats, 4))),
    "shuffle8.bin": (4, floats, zstd(shuffle(floats, 8))),
}
for name, (codec, raw, stored) in rows.items():
    with open(os.path.join(catalog, name), "wb") as f:
        f.write(bytes([codec]) + struct.pack("<q", len(raw)) + stored)
