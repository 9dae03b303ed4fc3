#!/usr/bin/env python3
"""Build tlkit's reference fixtures with PyTorch + diffusers + transformers + PEFT.

Run from the repository root, inside the pinned virtual environment (see Fixtures/README.md):

    python Fixtures/make_fixtures.py                      # every group, in order
    python Fixtures/make_fixtures.py --only adapters,unet # rebuild some groups
    python Fixtures/make_fixtures.py --check DIR [--against Fixtures/adapters/peft]
    python Fixtures/make_fixtures.py --check-all --tlkit .build/release/tlkit

Deterministic: fixed seeds, one CPU thread; rerunning writes identical files.
Groups depend on the files of earlier groups (models -> adapters -> unet), never on memory.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from fixturegen import adapters, bases, check, dora, fused_qkv, ia3, images, lycoris_families, models, peft_families, sampling, text_encoders, tlora_foreign, tokenizer, torch_pickles, training, unet_ref, vae  # noqa: E402
from fixturegen.common import Context, canonicalize_tree, log, setup_torch  # noqa: E402

# Order matters: later groups read the files written by earlier ones.
GROUPS = {
    "models": models.build,      # tiny SDXL: diffusers folder, SGM single file, bf16 UNet
    "adapters": adapters.build,  # PEFT, kohya, attn-procs, official T-LoRA + delta references
    "bases": bases.build,  # LoRAs of SD 1.x/2.x, SD3, FLUX.1, SDXL derivatives, a language model
    "fused": fused_qkv.build,  # FLUX.1/SD3 LoRAs on fused q,k,v projections and their parts, diffusers' reading of them
    "families": lycoris_families.build,  # LyCORIS LoCon/LoHa/LoKr/DoRA files + ΔW references
    "dora": dora.build,  # a PEFT DoRA adapter + the weights PEFT merges
    "ia3": ia3.build,  # LyCORIS and PEFT (IA)³ adapters + the weights each merges
    "peft_families": peft_families.build,  # PEFT LoHa/LoKr adapters (save_pretrained) + ΔW references
    "pickles": torch_pickles.build,  # torch.save archives (a LoRA, tensor layouts, a hostile pickle)
    "tlora_foreign": tlora_foreign.build,  # LyCORIS T-LoRA and the official FLUX lora.pt + ΔW references
    "unet": unet_ref.build,      # UNet forward/backward references with and without adapters
    "tokenizer": tokenizer.build,  # token ids of both tokenizers for 200+ prompts
    "text_encoders": text_encoders.build,  # hidden states / pooled projection of both text encoders
    "training": training.build,  # the training recipe's loss, gradients and AdamW steps
    "images": images.build,  # test images drawn with Pillow, Pillow's decode/resize results, the demo image
    "vae": vae.build,            # VAE posterior (mean, logvar, sample) and decoder output
    "sampling": sampling.build,  # Euler scheduler values, diffusers SDXL denoising runs, torch.randn draws
}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", help=f"comma-separated groups to build ({','.join(GROUPS)})")
    ap.add_argument("--check", metavar="DIR", help="load a kohya/PEFT LoRA from DIR with diffusers and compare")
    ap.add_argument("--against", metavar="ADAPTER", default=str(HERE / "adapters" / "peft"),
                    help="reference adapter (file or folder) for --check; default: the PEFT fixture")
    ap.add_argument("--check-all", action="store_true",
                    help="run tlkit's convert/merge outputs through diffusers and compare UNet outputs (needs --tlkit)")
    ap.add_argument("--tlkit", metavar="BIN", help="the tlkit executable for --check-all")
    ap.add_argument("--root", default=str(HERE), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    setup_torch()
    ctx = Context(root=Path(args.root))
    if args.check_all:
        if not args.tlkit:
            ap.error("--check-all needs --tlkit BIN")
        return check.run_all(ctx, Path(args.tlkit).resolve())
    if args.check:
        return check.run(ctx, Path(args.check), Path(args.against))

    names = list(GROUPS) if not args.only else [g.strip() for g in args.only.split(",") if g.strip()]
    unknown = [g for g in names if g not in GROUPS]
    if unknown:
        ap.error(f"unknown group(s) {unknown}; known: {list(GROUPS)}")
    for name in GROUPS:  # always in dependency order
        if name in names:
            t0 = time.time()
            GROUPS[name](ctx)
            canonicalize_tree(ctx.root)  # stable metadata key order (see common.canonicalize_header)
            log(f"[{name}] {time.time() - t0:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
