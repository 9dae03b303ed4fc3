#!/usr/bin/env bash
# SDXL's conditioning of one prompt with both text encoders (CLIP ViT-L + OpenCLIP ViT-bigG, random
# weights, 817 M parameters) from a full-size single-file checkpoint: tlkit (Float32 on Engine ops)
# against transformers' CLIPTextModel / CLIPTextModelWithProjection in float32, same machine, same
# thread count. Both outputs are compared (scale-relative) after the timings.
#
#   Benchmarks/text_encoders/run.sh CHECKPOINT [RUNS] [PROMPT]
#
# Environment:
#   PYTHON   python with torch, transformers, safetensors (default python3: the fixture environment)
#   THREADS  threads for both sides (default 2)
#
# CHECKPOINT: e.g. Benchmarks/make_sdxl_random.py's sdxl-random-base.safetensors. Each side runs in its
# own process under `/usr/bin/time -v`: load seconds, encode seconds (best of RUNS, default 3, after one
# warm-up) and peak RSS of the whole process (weights included: 3.3 GB in Float32).
set -euo pipefail

cd "$(dirname "$0")/../.."
CHECKPOINT=${1:?usage: run.sh CHECKPOINT [RUNS] [PROMPT]}
RUNS=${2:-3}
PROMPT=${3:-a photo of a ceramic mug on a wooden table, soft morning light, 35mm, highly detailed}
PYTHON=${PYTHON:-python3}
export THREADS=${THREADS:-2}
BENCH=.build/release/tlkit-te-bench

[[ -x /usr/bin/time ]] || { echo "needs GNU time: apt-get install -y time" >&2; exit 2; }
[[ -x $BENCH ]] || swift build -c release --product tlkit-te-bench

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

report() {
  awk -v name="$1" '
    /^load / { load = $2 } /^encode / { encode = $2 }
    END { printf "%-6s load %6.2f s   encode %7.3f s", name, load, encode }' "$TMP/$1.out"
  awk -F': ' '/Maximum resident set size/ { printf "   peak RSS %6.0f MB\n", $2 / 1024 }' "$TMP/$1.time"
}

echo "one prompt, both encoders, best of $RUNS, threads $THREADS:"
/usr/bin/time -v -o "$TMP/tlkit.time" "$BENCH" "$CHECKPOINT" "$PROMPT" "$RUNS" > "$TMP/tlkit.out"
report tlkit
/usr/bin/time -v -o "$TMP/torch.time" "$PYTHON" Benchmarks/text_encoders/te_torch.py \
  "$CHECKPOINT" "$PROMPT" "$RUNS" --compare "$TMP/tlkit.out" > "$TMP/torch.out"
report torch
echo "correctness (scale-relative, tlkit vs transformers):"
awk '/^(context|pooled) / { printf "  tlkit %s[:4] %.6f %.6f %.6f %.6f\n", $1, $2, $3, $4, $5 }' "$TMP/tlkit.out"
grep '\[:4\]' "$TMP/torch.out" | sed 's/^/  torch /'
grep 'scale-relative\|size' "$TMP/torch.out" | sed 's/^/  /'
