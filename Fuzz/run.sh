#!/usr/bin/env bash
# Fuzzes the safetensors reader and the format detectors with libFuzzer + AddressSanitizer.
#   Fuzz/run.sh [SECONDS]     (default 600)
# Seeds come from Fuzz/seeds/ and the adapter fixtures; crashing inputs land in Fuzz/regressions/,
# which the test suite replays (FuzzRegressionTests).
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_TO_RUN=${1:-600}
# SwiftPM instruments only the executable for --sanitize fuzzer; coverage of the libraries is asked for explicitly.
TLKIT_FUZZ=1 swift build --scratch-path .build-fuzz --product tlkit-fuzz --sanitize fuzzer --sanitize address \
    -Xswiftc -sanitize-coverage=edge,inline-8bit-counters,pc-table,trace-cmp
mkdir -p Fuzz/corpus-work
cp -n Fuzz/seeds/* Fuzz/corpus-work/ 2>/dev/null || true
find Fixtures/adapters -name '*.safetensors' -size -200k -exec cp -n {} Fuzz/corpus-work/ \; 2>/dev/null || true
.build-fuzz/debug/tlkit-fuzz Fuzz/corpus-work -max_total_time="$SECONDS_TO_RUN" -max_len=65536 -timeout=10 \
    -artifact_prefix=Fuzz/regressions/ -print_final_stats=1
