#!/usr/bin/env bash
# oneDNN's bf16 matmul and 3x3 convolution peak on this machine, beside OpenBLAS's sgemm (2 threads).
#   Benchmarks/bf16/run.sh
set -euo pipefail
cd "$(dirname "$0")"
OUT=$(mktemp -d); trap 'rm -rf "$OUT"' EXIT
cc -O2 peak.c -o "$OUT/peak" -ldnnl -lopenblas
OMP_NUM_THREADS=${THREADS:-2} OPENBLAS_NUM_THREADS=${THREADS:-2} OMP_WAIT_POLICY=PASSIVE "$OUT/peak"
