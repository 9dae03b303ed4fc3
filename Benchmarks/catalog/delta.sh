#!/usr/bin/env bash
# Catalog benchmark for training-run checkpoints stored against reference tensors (xor+shuffleN+zstd):
# a series of official-layout T-LoRA checkpoints whose trainable tensors drift from their frozen twins
# and from the previous checkpoint by DRIFT of their spread per checkpoint. Reports the catalog's stored
# size against `zstd -19 --long` of the files, `add` speed against `zstd -3 -T2`, and checks `get`
# and `verify`.
#
#   Benchmarks/catalog/delta.sh [WORKDIR]
#   (SCALE=0.125 CHECKPOINTS=3 DRIFT=0.008 ZSTD19_FILES=1 REPEATS=3; TLKIT=/path/to/tlkit,
#    BEFORE=/path/to/an/older/tlkit)
#
# Needs a release build of tlkit, python3 with numpy (the inputs come from generate.py), zstd and bc.
# `zstd -19 --long` runs on ZSTD19_FILES files and its ratio is applied to the rest (the checkpoints are
# alike in size and content). BEFORE, when given, stores the same series with another tlkit binary
# (e.g. a build without reference encoding) for comparison.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
work=${1:-/tmp/tlkit-catalog-delta}
TLKIT=${TLKIT:-$root/.build/release/tlkit}
export SCALE=${SCALE:-0.125} CHECKPOINTS=${CHECKPOINTS:-3} DRIFT=${DRIFT:-0.008} LORAS=0
ZSTD19_FILES=${ZSTD19_FILES:-1}

now() { date +%s.%N; }
mb() { echo "scale=1; $1 / 1000000" | bc; }
rate() { echo "scale=0; $1 / 1000000 / ($2)" | bc; }   # bytes, seconds -> MB/s
size() { stat -c %s "$@" | paste -sd+ | bc; }

mkdir -p "$work"
stamp="$SCALE $CHECKPOINTS $DRIFT"
if [ "$(cat "$work/inputs" 2>/dev/null)" != "$stamp" ]; then
  echo "generating inputs in $work (SCALE=$SCALE CHECKPOINTS=$CHECKPOINTS DRIFT=$DRIFT)" >&2
  rm -rf "$work/series"
  python3 "$here/generate.py" "$work"
  echo "$stamp" > "$work/inputs"
fi
sync
files=("$work/series"/ckpt-*.safetensors)
raw=$(size "${files[@]}")
echo "== series: ${#files[@]} checkpoints, $(mb "$raw") MB raw, drift $DRIFT of each tensor's spread per checkpoint"

z19raw=0; z19=0
for f in "${files[@]:0:$ZSTD19_FILES}"; do
  zstd -q -19 --long -T2 -f "$f" -o "$work/tmp.zst"
  z19raw=$((z19raw + $(size "$f"))); z19=$((z19 + $(size "$work/tmp.zst")))
done
z19total=$(echo "$z19 * $raw / $z19raw" | bc)
echo "zstd -19 --long -T2: $(echo "scale=1; 100 * $z19 / $z19raw" | bc)% of raw (on $ZSTD19_FILES files); all files ≈ $(mb "$z19total") MB"

# add speed: REPEATS rounds of zstd -3 -T2, then each binary's adds into a fresh catalog, best of each
# (the rounds interleave, so a busy machine slows all of them alike).
best() { if [ -z "$1" ] || [ "$(echo "$2 < $1" | bc)" = 1 ]; then echo "$2"; else echo "$1"; fi; }
store() {   # binary label -> seconds
  local cat="$work/$2.sqlite"; rm -f "$cat" "$cat-wal" "$cat-shm"
  local t0; t0=$(now)
  for f in "${files[@]}"; do "$1" add "$f" --name run --catalog "$cat" >/dev/null 2>&1; done
  echo "$(now) - $t0" | bc
}
t3=""; tb=""; ta=""
for _ in $(seq 1 "${REPEATS:-3}"); do
  t0=$(now); for f in "${files[@]}"; do zstd -q -3 -T2 -f "$f" -o "$work/tmp.zst"; done; t3=$(best "$t3" "$(echo "$(now) - $t0" | bc)")
  [ -n "${BEFORE:-}" ] && tb=$(best "$tb" "$(store "$BEFORE" before)")
  ta=$(best "$ta" "$(store "$TLKIT" tlkit)")
done
echo "zstd -3 -T2: $(rate "$raw" "$t3") MB/s (best of ${REPEATS:-3})"
report() {   # label seconds
  local stored; stored=$(size "$work/$1.sqlite")
  echo "$1: add $(rate "$raw" "$2") MB/s = $(echo "scale=0; 100 * $t3 / $2" | bc)% of zstd -3 -T2; catalog $(mb "$stored") MB = $(echo "scale=1; 100 * $stored / $raw" | bc)% of raw = $(echo "scale=1; 100 * $stored / $z19total" | bc)% of zstd -19 --long"
}
[ -n "${BEFORE:-}" ] && report before "$tb"
report tlkit "$ta"

cat="$work/tlkit.sqlite"
for v in $(seq 1 ${#files[@]}); do
  "$TLKIT" get "run@$v" -o "$work/out.safetensors" --catalog "$cat" 2>/dev/null
  cmp -s "$work/out.safetensors" "${files[$((v - 1))]}" || { echo "run@$v: get is NOT byte-identical"; exit 1; }
done
echo "get: all ${#files[@]} versions byte-identical"
"$TLKIT" verify --catalog "$cat" >/dev/null 2>&1 && echo "verify: intact" || { echo "verify: FAILED"; exit 1; }
if command -v sqlite3 >/dev/null; then
  echo "stored blobs by codec:"
  sqlite3 "$cat" "SELECT codec, count(*), sum(raw_size), sum(stored_size), printf('%.1f%%', 100.0 * sum(stored_size) / sum(raw_size)) FROM blobs GROUP BY codec"
fi
