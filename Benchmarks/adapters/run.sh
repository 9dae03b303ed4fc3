#!/usr/bin/env bash
# Times tlkit's adapter commands on full-size SDXL random-weight files (see Benchmarks/make_sdxl_random.py):
# convert (official rank-64 T-LoRA → kohya, against cp), diff of two rank-64 LoRAs, SVD merge of three
# rank-64 LoRAs to rank 64, and baking a LoRA into the 6.9 GB checkpoint. Prints wall time and peak RSS.
set -euo pipefail
cd "$(dirname "$0")/../.."
DATA=${DATA:-$HOME/tlkit-bench-data}
mkdir -p "$DATA"
PY=${PY:-python3}
swift build -c release --product tlkit >/dev/null
T=.build/release/tlkit
[ -f "$DATA/sdxl-random-base.safetensors" ] || $PY Benchmarks/make_sdxl_random.py checkpoint "$DATA/sdxl-random-base.safetensors"
[ -d "$DATA/sdxl-random-tlora-r64" ] || $PY Benchmarks/make_sdxl_random.py official-tlora "$DATA/sdxl-random-tlora-r64" --rank 64 --seed 0 --drift 0.001 --step 1000
for s in 1 2 3; do
  [ -f "$DATA/sdxl-random-kohya-r64-s$s.safetensors" ] || $PY Benchmarks/make_sdxl_random.py kohya-lora "$DATA/sdxl-random-kohya-r64-s$s.safetensors" --rank 64 --seed $s
done
. "$(dirname "$0")/measure.sh"
TLORA="$DATA/sdxl-random-tlora-r64/checkpoint-1000/pytorch_lora_weights.safetensors"
cat "$TLORA" >/dev/null   # warm the page cache for both contenders
measure "cp of the official T-LoRA (743 MB)" cp "$TLORA" "$OUT/copy.safetensors"
rm -f "$OUT/copy.safetensors"; sync
# tlkit's output is on disk when it exits (fsync before the rename), so compare with a copy that is too.
measure "cp + sync of the official T-LoRA" sh -c "cp '$TLORA' '$OUT/copy.safetensors' && sync"
sync
measure "convert official T-LoRA → kohya" $T convert "$DATA/sdxl-random-tlora-r64" --to kohya -o "$OUT/tlora.kohya.safetensors"
measure "diff two rank-64 LoRAs" $T diff "$DATA/sdxl-random-kohya-r64-s1.safetensors" "$DATA/sdxl-random-kohya-r64-s2.safetensors" || true
measure "svd merge of three rank-64 LoRAs to rank 64" $T merge "$DATA/sdxl-random-kohya-r64-s1.safetensors" \
  "$DATA/sdxl-random-kohya-r64-s2.safetensors" "$DATA/sdxl-random-kohya-r64-s3.safetensors" --method svd --rank 64 -o "$OUT/merged.safetensors"
measure "bake a rank-64 LoRA into the 6.9 GB checkpoint" $T merge "$DATA/sdxl-random-kohya-r64-s1.safetensors" \
  --into "$DATA/sdxl-random-base.safetensors" -o "$OUT/baked.safetensors"
