"""Small procedurally drawn test images, Pillow's reference results for them, and the README demo image.

Inputs go to images/test/, Pillow's results to reference/images/ (as lossless 8-bit RGB PNGs), the demo
training image to images/demo.jpg. Everything is drawn here: no photographs, no downloads.

Reference semantics (what tlkit reproduces):
  * decode: ``Image.open`` + ``ImageOps.exif_transpose``; images with alpha (RGBA, LA, palette or gray with
    tRNS) are composited on white with ``Image.alpha_composite`` and converted to RGB; the rest ``convert("RGB")``.
  * 16-bit grayscale: the high byte. Pillow's own ``convert("RGB")`` of mode ``I;16`` saturates every value
    above 255 (a 16-bit photo turns white); tlkit takes the high byte as Pillow does for 16-bit RGB.
  * crop: the square of side min(w, h) at (floor((w - s) / 2), floor((h - s) / 2)).
  * resize: ``Image.resize((w, h), Image.LANCZOS)`` (and BILINEAR, BICUBIC) on the decoded 8-bit RGB image.
    Pillow 13 runs the vertical pass first when the height shrinks by more than twice as many pixels as the
    width (else horizontal first); the non-square cases cover both orders (50x23, 150x40 vertical first;
    30x80, 90x120 horizontal first).
"""

from __future__ import annotations

import io
import json
import math
import zlib

import numpy as np
import PIL
from PIL import Image, ImageDraw, ImageFilter, ImageOps, features

from .common import check, log, seed_for

EXIF_ORIENTATION = 0x0112


def _rng(tag: str) -> np.random.Generator:
    return np.random.default_rng(seed_for(f"images/{tag}"))


def _scene(width: int, height: int, tag: str) -> Image.Image:
    """An RGB test card: smooth gradients, hard edges, thin lines and fine noise (all frequencies)."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    r = 128 + 110 * np.sin(x / width * 2 * math.pi)
    g = 255 * y / max(height - 1, 1)
    b = 128 + 100 * np.cos((x + 2 * y) / 9.0)
    img = np.stack([r, g, b], -1)
    img += _rng(tag).normal(0, 12, img.shape)
    im = Image.fromarray(np.clip(np.round(img), 0, 255).astype(np.uint8), "RGB")
    d = ImageDraw.Draw(im)
    d.rectangle([width // 5, height // 4, width // 2, height * 3 // 4], fill=(250, 20, 30))
    d.ellipse([width // 2, height // 6, width * 9 // 10, height * 5 // 6], fill=(20, 40, 230), outline=(255, 255, 0))
    for i in range(0, width, 7):
        d.line([(i, 0), (i + height // 2, height - 1)], fill=(0, 0, 0), width=1)
    return im


def _exif_bytes(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = orientation
    return exif.tobytes()


def _save_jpeg(im: Image.Image, path, **kw) -> None:
    im.save(path, "JPEG", quality=kw.pop("quality", 92), subsampling=kw.pop("subsampling", 2), **kw)


def _reference_rgb(path) -> Image.Image:
    """Pillow's decode with tlkit's documented semantics (module docstring)."""
    im = Image.open(path)
    im.load()
    im = ImageOps.exif_transpose(im)
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        high = (np.asarray(im, dtype=np.uint32) >> 8).astype(np.uint8)
        return Image.fromarray(high, "L").convert("RGB")
    has_alpha = im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info
    if has_alpha:
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return im.convert("RGB")


def _center_square(im: Image.Image) -> Image.Image:
    s = min(im.size)
    left, top = (im.width - s) // 2, (im.height - s) // 2
    return im.crop((left, top, left + s, top + s))


def _gray16(width: int, height: int) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width]
    v = (x * 65535 // (width - 1)) ^ (y * 977)
    return (v % 65536).astype(np.uint16)


def _make_inputs(out) -> dict:
    """Writes the test inputs; returns {file: what it exercises}."""
    what = {}
    scene = _scene(97, 61, "photo")

    _save_jpeg(scene, out / "photo-orient6.jpg", exif=_exif_bytes(6))
    what["photo-orient6.jpg"] = "97x61 RGB JPEG (4:2:0), EXIF orientation 6 (little-endian TIFF)"
    small = _scene(13, 7, "orient")
    for o in range(1, 9):
        _save_jpeg(small, out / f"orient{o}.jpg", quality=95, subsampling=0, exif=_exif_bytes(o))
        what[f"orient{o}.jpg"] = f"13x7 RGB JPEG (4:4:4), EXIF orientation {o}"
    # A big-endian ("MM") TIFF header, as many cameras write: Pillow writes "II", so patch bytes by hand.
    big = bytearray(b"Exif\x00\x00MM\x00\x2a\x00\x00\x00\x08\x00\x01\x01\x12\x00\x03\x00\x00\x00\x01\x00\x08\x00\x00"
                    b"\x00\x00\x00\x00")
    _save_jpeg(small, out / "orient8-bigendian.jpg", quality=95, subsampling=0, exif=bytes(big))
    what["orient8-bigendian.jpg"] = "13x7 RGB JPEG, big-endian EXIF orientation 8"

    small.save(out / "exif-orient6.png", exif=_exif_bytes(6))
    what["exif-orient6.png"] = "13x7 RGB PNG with an eXIf chunk, orientation 6 (Pillow honours it too)"

    gray = _scene(45, 33, "gray").convert("L")
    _save_jpeg(gray, out / "gray.jpg")
    what["gray.jpg"] = "45x33 grayscale JPEG"
    cmyk = _scene(24, 18, "cmyk").convert("CMYK")
    _save_jpeg(cmyk, out / "cmyk.jpg", subsampling=0)
    what["cmyk.jpg"] = "24x18 CMYK JPEG (Adobe, inverted)"

    rgb = _scene(40, 30, "rgb")
    rgb.save(out / "rgb.png")
    what["rgb.png"] = "40x30 8-bit RGB PNG"
    rgb16 = np.asarray(_scene(40, 30, "rgb16"), dtype=np.uint16) * 257 + _rng("rgb16lo").integers(0, 257, (30, 40, 3))
    _write_png16_rgb(out / "rgb16.png", rgb16.astype(np.uint16))
    what["rgb16.png"] = "40x30 16-bit RGB PNG (Pillow keeps the high byte)"
    Image.fromarray(_gray16(37, 21)).save(out / "gray16.png")
    what["gray16.png"] = "37x21 16-bit grayscale PNG"

    alpha = np.clip(_rng("alpha").integers(0, 256, (30, 40)) + np.linspace(-128, 128, 40)[None, :], 0, 255)
    rgba = np.dstack([np.asarray(_scene(40, 30, "rgba")), alpha.astype(np.uint8)])
    Image.fromarray(rgba, "RGBA").save(out / "rgba.png")
    what["rgba.png"] = "40x30 RGBA PNG, every alpha level"
    la = Image.merge("LA", [_scene(33, 20, "la").convert("L"), Image.fromarray(alpha[:20, :33].astype(np.uint8))])
    la.save(out / "gray-alpha.png")
    what["gray-alpha.png"] = "33x20 gray + alpha PNG"
    pal = _scene(31, 23, "palette").quantize(colors=16, dither=Image.Dither.NONE)
    pal.save(out / "palette-trns.png", transparency=bytes([0, 64, 128, 200] + [255] * 12))
    what["palette-trns.png"] = "31x23 16-colour palette PNG with a tRNS of 4 partial alphas"
    Image.fromarray((np.indices((9, 14)).sum(0) % 2 * 255).astype(np.uint8)).convert("1").save(out / "bilevel.png")
    what["bilevel.png"] = "14x9 1-bit PNG"

    data = (out / "photo-orient6.jpg").read_bytes()
    (out / "truncated.jpg").write_bytes(data[: len(data) // 2])
    what["truncated.jpg"] = "the first half of photo-orient6.jpg"
    png = bytearray((out / "rgb.png").read_bytes())
    idat = png.index(b"IDAT")
    png[idat + 40] ^= 0xFF
    (out / "corrupt.png").write_bytes(bytes(png))
    what["corrupt.png"] = "rgb.png with one IDAT byte flipped (CRC error)"
    (out / "truncated.png").write_bytes(bytes((out / "rgb.png").read_bytes()[:300]))
    what["truncated.png"] = "the first 300 bytes of rgb.png"
    Image.new("P", (4, 4)).save(out / "tiny.gif")
    what["tiny.gif"] = "a GIF (unsupported)"
    if features.check("webp"):
        Image.new("RGB", (4, 4)).save(out / "tiny.webp")
        what["tiny.webp"] = "a WebP (unsupported)"
    (out / "not-an-image.txt").write_bytes(b"just some text, not an image\n")
    what["not-an-image.txt"] = "text"
    return what


def _write_png16_rgb(path, pixels: np.ndarray) -> None:
    """Pillow cannot write 16-bit RGB PNGs, so build one by hand (filter 0, one IDAT)."""
    import struct

    h, w, _ = pixels.shape
    raw = b"".join(b"\x00" + pixels[row].astype(">u2").tobytes() for row in range(h))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw, 9))
                     + chunk(b"IEND", b""))


def _demo(path) -> None:
    """A stylised coffee mug on a table (512 x 384), the README demo's training image."""
    w, h = 512, 384
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    wall = np.stack([200 - 40 * y / h, 215 - 30 * y / h, 235 - 10 * y / h + 8 * np.sin(x / 23)], -1)
    table = np.stack([150 + 20 * np.sin(x / 40 + y / 9), 100 + 12 * np.sin(x / 40 + y / 9), 60 + 0 * x], -1)
    img = np.where((y > 250)[..., None], table, wall)
    img += _rng("demo").normal(0, 3, img.shape)
    im = Image.fromarray(np.clip(np.round(img), 0, 255).astype(np.uint8), "RGB")

    shadow = Image.new("L", (w, h), 0)
    ImageDraw.Draw(shadow).ellipse([170, 285, 370, 330], fill=120)
    im.paste((60, 40, 25), mask=shadow.filter(ImageFilter.GaussianBlur(9)))

    d = ImageDraw.Draw(im)
    body = (196, 52, 44)
    d.ellipse([302, 150, 392, 250], outline=(160, 40, 34), width=18)  # handle
    d.rectangle([180, 120, 330, 300], fill=body)
    d.ellipse([180, 285, 330, 315], fill=body)
    d.ellipse([180, 105, 330, 135], fill=(230, 226, 218))  # rim
    d.ellipse([190, 110, 320, 130], fill=(92, 56, 32))  # coffee
    for i in range(14):  # a soft highlight down the body
        d.line([(205 + i, 140), (205 + i, 290)], fill=(min(255, 196 + 40 - 3 * i), 80 - 2 * i, 70 - 2 * i))
    for k, x0 in enumerate((225, 255, 285)):  # steam
        pts = [(x0 + 10 * math.sin(t / 6 + k), 100 - t * 2) for t in range(0, 35)]
        d.line(pts, fill=(245, 245, 250), width=4)
    d.text((228, 190), "tl", fill=(250, 240, 230), font_size=48)
    im.save(path, "JPEG", quality=90, subsampling=2, optimize=True)


def build(ctx) -> None:
    test_dir = ctx.root / "images" / "test"
    ref_dir = ctx.reference / "images"
    test_dir.mkdir(parents=True, exist_ok=True)
    ref_dir.mkdir(parents=True, exist_ok=True)
    for p in list(test_dir.iterdir()) + list(ref_dir.iterdir()):
        p.unlink()

    inputs = _make_inputs(test_dir)
    _demo(ctx.root / "images" / "demo.jpg")

    decoded = {}
    for name in sorted(inputs):
        if name.startswith(("truncated", "corrupt", "tiny", "not-an")):
            continue
        ref = _reference_rgb(test_dir / name)
        ref.save(ref_dir / f"{name.rsplit('.', 1)[0]}.png")
        decoded[name] = ref

    # Resizing starts from Pillow's decode (stored above as lossless PNG), so it is checked on its own.
    photo = decoded["photo-orient6.jpg"]
    check(photo.size == (61, 97), f"exif_transpose gave {photo.size}")
    square = _center_square(photo)
    square.save(ref_dir / "photo-square.png")
    resized = {
        "photo-square-lanczos32.png": square.resize((32, 32), Image.LANCZOS),
        "photo-square-lanczos128.png": square.resize((128, 128), Image.LANCZOS),
        "photo-lanczos-50x23.png": photo.resize((50, 23), Image.LANCZOS),
        "photo-lanczos-150x40.png": photo.resize((150, 40), Image.LANCZOS),
        "photo-lanczos-30x80.png": photo.resize((30, 80), Image.LANCZOS),
        "photo-lanczos-90x120.png": photo.resize((90, 120), Image.LANCZOS),
        "photo-bilinear-32.png": square.resize((32, 32), Image.BILINEAR),
        "photo-bicubic-32.png": square.resize((32, 32), Image.BICUBIC),
    }
    for name, im in resized.items():
        im.save(ref_dir / name)

    # Checksums of Pillow's own pixels, so a test also knows that it decoded a reference PNG right.
    crc = {f"{n.rsplit('.', 1)[0]}.png": zlib.crc32(np.asarray(im).tobytes()) for n, im in decoded.items()}
    crc.update({n: zlib.crc32(np.asarray(im).tobytes()) for n, im in resized.items()})
    crc["photo-square.png"] = zlib.crc32(np.asarray(square).tobytes())
    index = {
        "rgb_crc32": crc,
        "pillow": PIL.__version__,
        "libjpeg_turbo": features.version("libjpeg_turbo"),
        "inputs": inputs,
        "decoded": {n: f"{n.rsplit('.', 1)[0]}.png" for n in decoded},
        "resized": {
            "photo-square.png": "photo-orient6.png center-cropped to 61x61 at (0, 18)",
            "photo-square-lanczos32.png": "photo-square.png resize((32, 32), LANCZOS)",
            "photo-square-lanczos128.png": "photo-square.png resize((128, 128), LANCZOS)",
            "photo-lanczos-50x23.png": "photo-orient6.png (61x97) resize((50, 23), LANCZOS)",
            "photo-lanczos-150x40.png": "photo-orient6.png (61x97) resize((150, 40), LANCZOS)",
            "photo-lanczos-30x80.png": "photo-orient6.png (61x97) resize((30, 80), LANCZOS)",
            "photo-lanczos-90x120.png": "photo-orient6.png (61x97) resize((90, 120), LANCZOS)",
            "photo-bilinear-32.png": "photo-square.png resize((32, 32), BILINEAR)",
            "photo-bicubic-32.png": "photo-square.png resize((32, 32), BICUBIC)",
        },
    }
    (ref_dir / "index.json").write_text(json.dumps(index, indent=1, sort_keys=True) + "\n")
    total = sum(p.stat().st_size for d in (test_dir, ref_dir) for p in d.iterdir())
    log(f"[images] {len(inputs)} inputs, {len(decoded)} decoded + {len(resized)} resized references, "
        f"{total:,} bytes; demo.jpg {(ctx.root / 'images' / 'demo.jpg').stat().st_size:,} bytes")
