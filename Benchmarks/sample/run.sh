#!/usr/bin/env bash
# `tlkit sample` against diffusers' StableDiffusionXLPipeline on the full-size SDXL UNet and VAE with
# random weights, guidance 5, Float32, the same initial latents and prompt embeddings on both sides (text
# encoders left out). 25 steps at 1024 px take most of an hour here, so this times STEPS steps (default 2)
# and the VAE decode; BENCHMARKS.md extrapolates to 25 steps (per-step cost does not depend on t).
#   RES=1024 STEPS=2 Benchmarks/sample/run.sh
# PRECISION (tlkit: bf16 by default, or fp32) and AUTOCAST (diffusers runs: "off bf16" by default, i.e. fp32
# and bf16 autocast, one after the other in the same run).
set -euo pipefail
cd "$(dirname "$0")/../.."
DATA=${DATA:-$HOME/tlkit-bench-data}
PY=${PY:-python3}
RES=${RES:-1024}
STEPS=${STEPS:-2}
WHICH=${WHICH:-both}
PRECISION=${PRECISION:-bf16}
AUTOCAST=${AUTOCAST:-off bf16}
mkdir -p "$DATA"
if [ -z "${TLKIT:-}" ]; then swift build -c release --product tlkit >/dev/null; fi
T=${TLKIT:-.build/release/tlkit}
CKPT="$DATA/sdxl-random-base.safetensors"
[ -f "$CKPT" ] || $PY Benchmarks/make_sdxl_random.py checkpoint "$CKPT"
OUT=$(mktemp -d "$DATA/bench-sample.XXXXXX")
trap 'rm -rf "$OUT"' EXIT
$PY - "$OUT" "$RES" <<'PYEOF'
import sys, torch
from safetensors.torch import save_file
out, res = sys.argv[1], int(sys.argv[2])
g = torch.Generator().manual_seed(0)
e = lambda *s: torch.randn(*s, generator=g)
save_file({"prompt_embeds": e(1, 77, 2048), "pooled_prompt_embeds": e(1, 1280),
           "negative_prompt_embeds": torch.zeros(1, 77, 2048), "negative_pooled_prompt_embeds": torch.zeros(1, 1280)},
          f"{out}/embeddings.safetensors")
save_file({"latents": e(1, 4, res // 8, res // 8)}, f"{out}/latents.safetensors")
PYEOF
if [ "$WHICH" != diffusers ]; then
  /usr/bin/time -f "%M %e" -o "$OUT/rss" $T sample --model "$CKPT" --embeddings "$OUT/embeddings.safetensors" \
    --latents "$OUT/latents.safetensors" --steps "$STEPS" --guidance 5 --width "$RES" --height "$RES" \
    -o "$OUT/image.png" --precision "$PRECISION" --json >"$OUT/steps.jsonl" 2>"$OUT/stderr" || { cat "$OUT/stderr"; exit 1; }
  # TLKIT_PROFILE=1 in the environment: show the per-operation profile tlkit printed.
  if [ -n "${TLKIT_PROFILE:-}" ]; then sed -n '/operation profile/,$p' "$OUT/stderr"; fi
  $PY - "$OUT/steps.jsonl" "$(cat "$OUT/rss")" "$RES" "$PRECISION" <<'PYEOF'
import json, sys
steps = [s for s in map(json.loads, open(sys.argv[1])) if s.get("event") == "step"]
rss, wall = sys.argv[2].split()
per = sum(s["seconds"] for s in steps) / len(steps)
print(f"tlkit {sys.argv[4]} {sys.argv[3]}px: {per:.2f} s/step over {len(steps)} steps, whole run {float(wall):.1f} s "
      f"(load, steps, decode, PNG), peak RSS {int(rss) * 1024 / 1e9:.2f} GB")
PYEOF
fi
if [ "$WHICH" != tlkit ]; then
  for mode in $AUTOCAST; do
    $PY Benchmarks/sample/torch_sample.py "$CKPT" "$OUT/embeddings.safetensors" "$OUT/latents.safetensors" \
      --steps "$STEPS" --autocast "$mode"
  done
fi
