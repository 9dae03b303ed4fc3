#!/usr/bin/env bash
# The main job on the embedded default, on a fresh machine: installs what the build needs, builds tlkit,
# fine-tunes the small SDXL-architecture model in Fixtures/ (random weights) with T-LoRA on the shipped
# demo image, samples an image with it, converts the result to a standard kohya LoRA with its timestep schedule folded into
# metadata, checks the conversion is exact, and keeps both in a catalog in a temporary folder.
set -euo pipefail
cd "$(dirname "$0")/.."
./Scripts/install-deps.sh
swift build -c release --product tlkit >/dev/null
TLKIT=.build/release/tlkit
WORK=$(mktemp -d "${TMPDIR:-/tmp}/tlkit-demo.XXXXXX")
export TLKIT_CATALOG="$WORK/catalog.sqlite"
MODEL=Fixtures/models/tiny-sdxl.safetensors

echo "== the model: a single-file SDXL checkpoint (tiny, random weights)" >&2
$TLKIT inspect "$MODEL"

echo "== T-LoRA fine-tune on Fixtures/images/demo.jpg (rank 8, min rank 4, 200 steps at 256 px)" >&2
$TLKIT train --model "$MODEL" --image Fixtures/images/demo.jpg --token sks --class mug \
  --rank 8 --min-rank 4 --steps 200 --checkpoint-every 100 --resolution 256 \
  --output "$WORK/sks-mug" --add-to-catalog sks-mug

echo "== sample with the adapter masked by r(t) at every step (random weights: expect noise)" >&2
$TLKIT sample --model "$MODEL" --prompt "a photo of sks mug" --adapter "$WORK/sks-mug/adapter.safetensors" \
  --steps 10 --width 256 --height 256 --seed 0 -o "$WORK/sks-mug.png"

echo "== convert to kohya (exact: rank-2R fold, schedule in tlora.* metadata) and check it" >&2
$TLKIT convert "$WORK/sks-mug/adapter.safetensors" --to kohya -o "$WORK/sks-mug.kohya.safetensors"
$TLKIT diff "$WORK/sks-mug/adapter.safetensors" "$WORK/sks-mug.kohya.safetensors" --timesteps 999,500,0

echo "== the catalog: both checkpoints of the run and the kohya file" >&2
$TLKIT add "$WORK/sks-mug.kohya.safetensors" --name sks-mug-kohya --tag demo
$TLKIT list
$TLKIT verify

echo >&2
echo "made: $WORK/sks-mug/ (train.json, checkpoint-100/, checkpoint-200/, adapter.safetensors: the T-LoRA)" >&2
echo "      $WORK/sks-mug.png (a 256 px sample with the T-LoRA, A1111 parameters in the PNG)" >&2
echo "      $WORK/sks-mug.kohya.safetensors (kohya LoRA with the T-LoRA schedule in its metadata)" >&2
echo "      $TLKIT_CATALOG (sks-mug@1, sks-mug@2: the checkpoints; sks-mug-kohya@1)" >&2
