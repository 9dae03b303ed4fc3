#!/usr/bin/env bash
# VAE encode and decode of one SIZE² image (default 1024) with a full-size SDXL VAE (random weights,
# 83.7 M parameters): tlkit (Float32 on Engine ops) against diffusers' AutoencoderKL in float32, same
# machine, same thread count. Prints a correctness check first (both sides on one 128×96 input).
#
#   Benchmarks/vae/run.sh [SIZE] [RUNS]
#
# Environment:
#   DATA     folder of inputs (default $HOME/tlkit-bench-data; the VAE is generated there if missing)
#   PYTHON   python with torch, diffusers, safetensors (default python3: the fixture environment)
#   THREADS  threads for both sides (default: all cores)
#
# Each side runs in its own process under `/usr/bin/time -v`: best of RUNS (default 2) seconds per phase,
# peak RSS of the whole process (weights included: 335 MB in Float32).
set -euo pipefail

cd "$(dirname "$0")/../.."
SIZE=${1:-1024}
RUNS=${2:-2}
DATA=${DATA:-$HOME/tlkit-bench-data}
PYTHON=${PYTHON:-python3}
VAE=$DATA/sdxl-vae-random
BENCH=.build/release/tlkit-vae-bench

[[ -x /usr/bin/time ]] || { echo "needs GNU time: apt-get install -y time" >&2; exit 2; }
[[ -x $BENCH ]] || swift build -c release --product tlkit-vae-bench
[[ -d $VAE ]] || "$PYTHON" Benchmarks/vae/vae_torch.py make "$VAE"

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

echo "correctness (scale-relative, tlkit vs diffusers, 128×96):"
"$PYTHON" Benchmarks/vae/vae_torch.py reference "$VAE" "$TMP/reference.safetensors"
"$BENCH" check "$VAE" "$TMP/reference.safetensors" | sed 's/^/  /'

run() {
  local name=$1; shift
  /usr/bin/time -v -o "$TMP/time" "$@" > "$TMP/out"
  awk -v name="$name" '
    /^encode / { encode = $2 } /^decode / { decode = $2 }
    END { printf "%-6s encode %7.2f s   decode %7.2f s", name, encode, decode }' "$TMP/out"
  awk -F': ' '/Maximum resident set size/ { printf "   peak RSS %6.0f MB\n", $2 / 1024 }' "$TMP/time"
}

echo "one ${SIZE}×${SIZE} image, best of $RUNS, threads ${THREADS:-all}:"
run tlkit "$BENCH" time "$VAE" "$SIZE" "$RUNS"
run torch "$PYTHON" Benchmarks/vae/vae_torch.py time "$VAE" "$SIZE" "$RUNS"
