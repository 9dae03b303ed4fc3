#!/usr/bin/env bash
# Library import: `tlkit add DIR -r` of COUNT (default 200) mixed fp16 LoRAs (SD 1.5, SDXL, FLUX.1, 20-300 MB
# each times SIZE_SCALE) against `zstd -3 -T2` of the same files, one after the other (target: add at least
# half zstd's throughput). The page cache is warmed first, so both read from memory.
#
#   Benchmarks/catalog/mixed_add.sh [WORKDIR]      (COUNT, SIZE_SCALE, RUNS: best of RUNS, default 2)
#
# SIZE_SCALE=1 writes about 32 GB; 0.1 keeps the mix and the module structure (smaller ranks) at about 3 GB.
# Needs a release build of tlkit (swift build -c release --product tlkit; another binary: TLKIT=/path/to/tlkit),
# python3 with numpy, zstd and bc.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
work=${1:-/tmp/tlkit-mixed-add-bench}
TLKIT=${TLKIT:-$root/.build/release/tlkit}
export COUNT=${COUNT:-200} SIZE_SCALE=${SIZE_SCALE:-1.0}
RUNS=${RUNS:-2}

now() { date +%s.%N; }
rate() { echo "scale=0; $1 / 1000000 / ($2)" | bc; }   # bytes, seconds -> MB/s

mkdir -p "$work"
stamp="$work/tree/.made-$COUNT-$SIZE_SCALE"
if [ ! -f "$stamp" ]; then
  rm -rf "$work/tree"
  python3 "$here/mixed_tree.py" "$work/tree" "$COUNT"
  touch "$stamp"
fi
mapfile -t files < <(find "$work/tree" -name '*.safetensors' | sort)
raw=$(stat -c %s "${files[@]}" | paste -sd+ | bc)
echo "$COUNT files, $(echo "scale=1; $raw / 1000000" | bc) MB (SIZE_SCALE=$SIZE_SCALE); load $(cut -d' ' -f1-3 /proc/loadavg)"
cat "${files[@]}" > /dev/null

best_z=0 best_a=0
for run in $(seq "$RUNS"); do
  rm -rf "$work/z3"; mkdir -p "$work/z3"
  t0=$(now); for f in "${files[@]}"; do zstd -q -3 -T2 -f "$f" -o "$work/z3/$(basename "$f").zst"; done; tz=$(echo "$(now) - $t0" | bc)
  rm -rf "$work/z3"
  cat="$work/library.sqlite"; rm -f "$cat" "$cat-wal" "$cat-shm"
  t0=$(now); "$TLKIT" add "$work/tree" -r --catalog "$cat" >/dev/null 2>"$work/add.log"; ta=$(echo "$(now) - $t0" | bc)
  z=$(rate "$raw" "$tz") a=$(rate "$raw" "$ta")
  echo "run $run: zstd -3 -T2 $z MB/s ($tz s), tlkit add -r $a MB/s ($ta s), $(echo "scale=0; 100 * $a / $z" | bc) %; $(tail -1 "$work/add.log")"
  [ "$z" -gt "$best_z" ] && best_z=$z
  [ "$a" -gt "$best_a" ] && best_a=$a
done
echo "best: zstd -3 -T2 $best_z MB/s, tlkit add -r $best_a MB/s = $(echo "scale=0; 100 * $best_a / $best_z" | bc) % of zstd (target >= 50 %); load $(cut -d' ' -f1-3 /proc/loadavg)"
