#!/usr/bin/env bash
# Times the exact LoHa → LoRA and LoKr → LoRA conversion of full-size SDXL LyCORIS files with random
# weights (Benchmarks/make_sdxl_random.py lycoris-loha / lycoris-lokr: every kohya linear module at
# lora_dim 8 and every resnet/sampler convolution at conv_dim 4, fp16), against `cp` + `sync` of the
# input and of a file the size of the output. Prints wall time, user CPU and peak RSS.
set -euo pipefail
cd "$(dirname "$0")/../.."
DATA=${DATA:-$HOME/tlkit-bench-data}
mkdir -p "$DATA"
PY=${PY:-python3}
T=${TLKIT:-.build/release/tlkit}
[ -x "$T" ] || { swift build -c release --product tlkit >/dev/null; T=.build/release/tlkit; }
for algo in loha lokr; do
  [ -f "$DATA/sdxl-random-$algo-r8.safetensors" ] || $PY Benchmarks/make_sdxl_random.py lycoris-$algo "$DATA/sdxl-random-$algo-r8.safetensors" --rank 8 --conv-rank 4
done
. "$(dirname "$0")/measure.sh"
for algo in loha lokr; do
  IN="$DATA/sdxl-random-$algo-r8.safetensors"
  cat "$IN" >/dev/null   # warm the page cache
  sync
  measure "cp + sync of the $algo input ($(du -h "$IN" | cut -f1))" sh -c "cp '$IN' '$OUT/copy.safetensors' && sync"
  rm -f "$OUT/copy.safetensors"; sync
  measure "convert $algo → kohya (exact)" $T convert "$IN" --to kohya -o "$OUT/$algo.kohya.safetensors"
  CONVERTED="$OUT/$algo.kohya.safetensors"
  sync
  measure "cp + sync of the output ($(du -h "$CONVERTED" | cut -f1))" sh -c "cp '$CONVERTED' '$OUT/copy.safetensors' && sync"
  rm -f "$OUT/copy.safetensors" "$CONVERTED"; sync
  measure "convert $algo → kohya --rank 16 (SVD, error reported)" $T convert "$IN" --to kohya --rank 16 -o "$OUT/$algo.r16.safetensors"
  rm -f "$OUT/$algo.r16.safetensors"; sync
done
