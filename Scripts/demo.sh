#!/usr/bin/env bash
# The main job on the embedded default: builds tlkit and runs it on the small SDXL-architecture model
# in Fixtures/ (random weights). Prints what it made and where.
set -euo pipefail
cd "$(dirname "$0")/.."
./Scripts/install-deps.sh
swift build -c release --product tlkit >/dev/null
TLKIT=.build/release/tlkit
echo "== tlkit inspect: the fixture model in both layouts and the fixture adapters" >&2
$TLKIT inspect Fixtures/models/tiny-sdxl.safetensors Fixtures/models/tiny-sdxl
for adapter in Fixtures/adapters/*/; do $TLKIT inspect "$adapter" || true; done
