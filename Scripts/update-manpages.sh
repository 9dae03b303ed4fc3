#!/usr/bin/env bash
# Regenerates Manpages/ from the argument parser (swift-argument-parser's generate-manual plugin) and
# records the command-line interface they describe in Manpages/tlkit.interface.json; a test fails when
# the interface of the built tlkit no longer matches that record (stale man pages).
set -euo pipefail
cd "$(dirname "$0")/.."
DATE=2026-11-29   # fixed, so regenerating unchanged pages changes nothing
swift build --product tlkit
swift package plugin generate-manual --multi-page --date "$DATE" --configuration debug >/dev/null
rm -f Manpages/*.1
cp .build/plugins/GenerateManual/outputs/tlkit/*.1 Manpages/
.build/debug/tlkit --experimental-dump-help > Manpages/tlkit.interface.json
ls Manpages
