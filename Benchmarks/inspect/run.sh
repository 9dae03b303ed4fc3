#!/usr/bin/env bash
# Benchmark `tlkit inspect --json` on full-size SDXL files (wall time and peak RSS).
#
#   Benchmarks/inspect/run.sh [RUNS]
#
# Environment:
#   TLKIT   tlkit binary            (default .build/release/tlkit; built if missing)
#   DATA    folder of inputs        (default $HOME/tlkit-bench-data; generated if missing)
#   PYTHON  python with torch, diffusers, transformers, safetensors, numpy, PyYAML
#           (default python3: the fixture environment, see Fixtures/README.md)
#
#   SYSTEM_COLD  1 (default): also measure after `sync; echo 3 > /proc/sys/vm/drop_caches` when
#           that is permitted (drops every cached page on the machine); 0 skips it.
#
# For every input: one warm-up run, then RUNS (default 5) measured runs with `/usr/bin/time -v`
# (page cache warm). Then RUNS "file-cold" runs: before each, the input's pages are evicted with
# `dd iflag=nocache count=0` (posix_fadvise DONTNEED on that one file; no root needed; tlkit's own
# binary and libraries stay cached). Then RUNS "system-cold" runs after a global drop_caches.
set -euo pipefail

cd "$(dirname "$0")/../.."
RUNS=${1:-5}
TLKIT=${TLKIT:-.build/release/tlkit}
DATA=${DATA:-$HOME/tlkit-bench-data}
PYTHON=${PYTHON:-python3}
GEN=Benchmarks/make_sdxl_random.py

CKPT=$DATA/sdxl-random-base.safetensors
TLORA=$DATA/sdxl-random-tlora-r64/checkpoint-1000/pytorch_lora_weights.safetensors
KOHYA=$DATA/sdxl-random-kohya-r32.safetensors

[[ -x /usr/bin/time ]] || { echo "needs GNU time: apt-get install -y time" >&2; exit 2; }
[[ -x $TLKIT ]] || swift build -c release --product tlkit
[[ -f $CKPT ]] || "$PYTHON" $GEN checkpoint "$CKPT"
[[ -f $TLORA ]] || "$PYTHON" $GEN official-tlora "$DATA/sdxl-random-tlora-r64" --rank 64 --seed 0 --drift 0.001 --step 1000
[[ -f $KOHYA ]] || "$PYTHON" $GEN kohya-lora "$KOHYA" --rank 32

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

SYSTEM_COLD=${SYSTEM_COLD:-1}
if [[ $SYSTEM_COLD == 1 ]] && ! (sync && echo 3 > /proc/sys/vm/drop_caches) 2>/dev/null; then
  echo "drop_caches refused: system-cold runs skipped" >&2
  SYSTEM_COLD=0
fi

evict_file() { dd if="$1" iflag=nocache count=0 status=none; }
evict_all() { sync; echo 3 > /proc/sys/vm/drop_caches; }

# One measured run -> "wall_seconds max_rss_kb cpu_seconds" (cpu = user + system). Wall time is
# taken around the `time -v` process with bash's microsecond clock (time -v reports centiseconds).
measure() {
  local t0=$EPOCHREALTIME t1
  /usr/bin/time -v -o "$TMP/time" "$TLKIT" inspect --json "$1" > "$TMP/out.json"
  t1=$EPOCHREALTIME
  awk -F': ' -v t0="$t0" -v t1="$t1" '
    /Maximum resident set size/ { rss = $2 }
    /User time \(seconds\)|System time \(seconds\)/ { cpu += $2 }
    END { printf "%.3f %d %.2f\n", t1 - t0, rss, cpu }' "$TMP/time"
}

median() { sort -n | awk '{ v[NR] = $1 } END { printf "%.3f", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

stats() {  # file of "wall rss cpu" lines -> "median_wall min_wall max_wall max_rss_mb median_cpu"
  local med lo hi rss cpu
  med=$(cut -d' ' -f1 "$1" | median)
  lo=$(cut -d' ' -f1 "$1" | sort -n | head -1)
  hi=$(cut -d' ' -f1 "$1" | sort -n | tail -1)
  rss=$(cut -d' ' -f2 "$1" | sort -n | tail -1 | awk '{ printf "%.1f", $1 / 1024 }')
  cpu=$(cut -d' ' -f3 "$1" | median)
  echo "$med $lo $hi $rss $cpu"
}

row() {  # input size cache statsfile
  local med lo hi rss cpu
  read -r med lo hi rss cpu < <(stats "$4")
  printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$1" "$2" "$3" "$med" "$lo" "$hi" "$cpu" "$rss"
}

echo "tlkit: $TLKIT ($(git rev-parse --short HEAD 2>/dev/null || echo '?'))"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
echo "system-cold runs (drop_caches): $([[ $SYSTEM_COLD == 1 ]] && echo yes || echo no)"
echo
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
printf '| input | size | cache | median wall s | min | max | median CPU s | peak RSS MB |\n|---|---|---|---|---|---|---|---|\n'
for f in "$CKPT" "$TLORA" "$KOHYA"; do
  size=$(du -h --apparent-size "$f" | cut -f1)
  measure "$f" > /dev/null  # warm-up
  for _ in $(seq "$RUNS"); do measure "$f"; done > "$TMP/warm"
  row "${f#"$DATA"/}" "$size" warm "$TMP/warm"
  for _ in $(seq "$RUNS"); do evict_file "$f"; measure "$f"; done > "$TMP/cold"
  row "${f#"$DATA"/}" "$size" file-cold "$TMP/cold"
  if [[ $SYSTEM_COLD == 1 ]]; then
    for _ in $(seq "$RUNS"); do evict_all; measure "$f"; done > "$TMP/cold"
    row "${f#"$DATA"/}" "$size" system-cold "$TMP/cold"
  fi
done
echo
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "inspect --json of the checkpoint:"
"$TLKIT" inspect --json "$CKPT"
