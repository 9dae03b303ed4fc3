#!/usr/bin/env bash
# The catalog as a library: imports a tree of COUNT (default 10,000) small synthetic LoRAs with
# `tlkit add -r`, times the re-scan of the unchanged tree (target under 3 s), then times `tlkit dups` on a
# catalog of DUPS_COUNT (default 1,000) of them (target under 10 s).
#
#   Benchmarks/catalog/library.sh [WORKDIR]
#
# Needs a release build of tlkit (swift build -c release --product tlkit; another binary: TLKIT=/path/to/tlkit)
# and python3 (standard library only).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
work=${1:-/tmp/tlkit-library-bench}
TLKIT=${TLKIT:-$root/.build/release/tlkit}
COUNT=${COUNT:-10000} DUPS_COUNT=${DUPS_COUNT:-1000}

now() { date +%s.%N; }
since() { echo "$(now) - $1" | bc; }

rm -rf "$work"; mkdir -p "$work"
python3 "$here/library_tree.py" "$work/tree" "$COUNT"
python3 "$here/library_tree.py" "$work/small" "$DUPS_COUNT"

t0=$(now); "$TLKIT" add -r "$work/tree" --catalog "$work/tree.sqlite" >/dev/null 2>"$work/first.log"
echo "first import of $COUNT files: $(since "$t0") s ($(tail -1 "$work/first.log"))"
t0=$(now); "$TLKIT" add -r "$work/tree" --catalog "$work/tree.sqlite" >/dev/null 2>"$work/second.log"
echo "re-scan of the unchanged tree: $(since "$t0") s ($(tail -1 "$work/second.log"))"

"$TLKIT" add -r "$work/small" --catalog "$work/small.sqlite" >/dev/null 2>&1
t0=$(now); "$TLKIT" dups --json --catalog "$work/small.sqlite" >"$work/dups.json" 2>"$work/dups.log"
echo "dups over $DUPS_COUNT entries: $(since "$t0") s ($(tail -1 "$work/dups.log"))"
