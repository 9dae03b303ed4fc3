#!/usr/bin/env bash
# Seconds per training step and peak memory of `tlkit train` against the same recipe in PyTorch eager
# (torch_train.py), on the full-size SDXL UNet with random weights (Benchmarks/make_sdxl_random.py).
# A full run is hours; this times a prefix (STEPS steps after one warm-up step) and the README/BENCHMARKS
# extrapolate to the paper's 800 steps.
#   RES=512 STEPS=3 Benchmarks/train/run.sh        # tlkit and PyTorch at 512 px
#   RES=1024 STEPS=2 Benchmarks/train/run.sh       # 1024 px: tlkit --recompute on, PyTorch gradient checkpointing
# PRECISION (tlkit: bf16 by default, or fp32) and AUTOCAST (PyTorch runs: "off bf16" by default, i.e. fp32
# eager and bf16 autocast, one after the other in the same run).
set -euo pipefail
cd "$(dirname "$0")/../.."
DATA=${DATA:-$HOME/tlkit-bench-data}
PY=${PY:-python3}
RES=${RES:-512}
STEPS=${STEPS:-3}
WHICH=${WHICH:-both}
PRECISION=${PRECISION:-bf16}
AUTOCAST=${AUTOCAST:-off bf16}
mkdir -p "$DATA"
if [ -z "${TLKIT:-}" ]; then swift build -c release --product tlkit >/dev/null; fi
T=${TLKIT:-.build/release/tlkit}
CKPT="$DATA/sdxl-random-base.safetensors"
[ -f "$CKPT" ] || $PY Benchmarks/make_sdxl_random.py checkpoint "$CKPT"
OUT=$(mktemp -d "$DATA/bench-train.XXXXXX")
trap 'rm -rf "$OUT"' EXIT
RECOMPUTE=off; CHECKPOINTING=
if [ "$RES" -ge 1024 ]; then RECOMPUTE=on; CHECKPOINTING=--checkpointing; fi

if [ "$WHICH" != pytorch ]; then
  # One warm-up step plus STEPS timed ones; the JSON lines carry each step's seconds.
  /usr/bin/time -f "%M" -o "$OUT/rss" $T train --model "$CKPT" --image Fixtures/images/demo.jpg --class mug \
    --output "$OUT/run" --resolution "$RES" --steps $((STEPS + 1)) --checkpoint-every 100000 --recompute $RECOMPUTE \
    --precision "$PRECISION" --json >"$OUT/steps.jsonl" 2>"$OUT/stderr" || { cat "$OUT/stderr"; exit 1; }
  grep -E "memory|peak" "$OUT/stderr" || true
  # TLKIT_PROFILE=1 in the environment: show the per-operation profile tlkit printed.
  if [ -n "${TLKIT_PROFILE:-}" ]; then sed -n '/operation profile/,$p' "$OUT/stderr"; fi
  $PY - "$OUT/steps.jsonl" "$(cat "$OUT/rss")" "$RES" "$PRECISION" <<'PYEOF'
import json, sys
steps = [s for s in map(json.loads, open(sys.argv[1])) if s.get("event") == "step"]
timed = [s["seconds"] for s in steps[1:]]
print(f"tlkit {sys.argv[4]} {sys.argv[3]}px: {sum(timed) / len(timed):.2f} s/step over {len(timed)} steps "
      f"(warm-up {steps[0]['seconds']:.2f} s), peak RSS {int(sys.argv[2]) * 1024 / 1e9:.2f} GB")
PYEOF
fi
if [ "$WHICH" != tlkit ]; then
  for mode in $AUTOCAST; do
    /usr/bin/time -f "pytorch peak RSS (time): %M KB" $PY Benchmarks/train/torch_train.py "$CKPT" --resolution "$RES" \
      --steps "$STEPS" $CHECKPOINTING --autocast "$mode"
  done
fi
