#!/usr/bin/env bash
# The main job on the embedded default, on a fresh machine: installs what the build needs, builds tlkit,
# and runs it on the small SDXL-architecture model and the T-LoRA checkpoint in Fixtures/ (random
# weights): identify them, convert the T-LoRA to a standard kohya LoRA with its timestep schedule folded
# into metadata, check the conversion is exact, and keep the result in a catalog in a temporary folder.
set -euo pipefail
cd "$(dirname "$0")/.."
./Scripts/install-deps.sh
swift build -c release --product tlkit >/dev/null
TLKIT=.build/release/tlkit
WORK=$(mktemp -d "${TMPDIR:-/tmp}/tlkit-demo.XXXXXX")
export TLKIT_CATALOG="$WORK/catalog.sqlite"

echo "== the fixture model (single file and diffusers folder) and a T-LoRA trained on it" >&2
$TLKIT inspect Fixtures/models/tiny-sdxl.safetensors Fixtures/adapters/official-ortho

echo "== convert the T-LoRA to kohya (exact: rank-2R fold, schedule in tlora.* metadata)" >&2
$TLKIT convert Fixtures/adapters/official-ortho --to kohya --title "sks dog" -o "$WORK/sks-dog.kohya.safetensors"
$TLKIT diff Fixtures/adapters/official-ortho "$WORK/sks-dog.kohya.safetensors" --timesteps 999,500,0

echo "== keep both in the catalog" >&2
$TLKIT add Fixtures/adapters/official-ortho --name sks-dog --tag demo
$TLKIT add "$WORK/sks-dog.kohya.safetensors" --name sks-dog --tag demo --tag kohya
$TLKIT list
$TLKIT verify

echo >&2
echo "made: $WORK/sks-dog.kohya.safetensors (kohya LoRA with the T-LoRA schedule in its metadata)" >&2
echo "      $TLKIT_CATALOG (catalog holding sks-dog@1, the T-LoRA, and sks-dog@2, the kohya file)" >&2
