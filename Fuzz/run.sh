#!/usr/bin/env bash
# Fuzzes tlkit's readers with libFuzzer + AddressSanitizer.
#   Fuzz/run.sh [TARGET] [SECONDS]     (TARGET: reader (default), adapters or catalog; SECONDS default 600)
#   reader    the safetensors reader and the format detectors   (seeds: Fuzz/seeds/, adapter fixtures)
#   adapters  every adapter reader into the adapter model        (seeds: Fuzz/seeds-adapters/)
#   catalog   damaged blob rows as the catalog's rebuild decodes them (seeds: Fuzz/seeds-catalog/)
# Crashing inputs land in Fuzz/regressions/TARGET/ (reader: Fuzz/regressions/), which the suite replays.
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET=reader
if [[ $# -gt 0 && ! $1 =~ ^[0-9]+$ ]]; then TARGET=$1; shift; fi
SECONDS_TO_RUN=${1:-600}
case $TARGET in
    reader) PRODUCT=tlkit-fuzz; SEEDS=Fuzz/seeds; REGRESSIONS=Fuzz/regressions ;;
    adapters|catalog) PRODUCT=tlkit-fuzz-$TARGET; SEEDS=Fuzz/seeds-$TARGET; REGRESSIONS=Fuzz/regressions/$TARGET ;;
    *) echo "unknown target '$TARGET' (reader, adapters or catalog)" >&2; exit 2 ;;
esac
# SwiftPM instruments only the executable for --sanitize fuzzer; coverage of the libraries is asked for explicitly.
TLKIT_FUZZ=1 swift build --scratch-path .build-fuzz --product "$PRODUCT" --sanitize fuzzer --sanitize address \
    -Xswiftc -sanitize-coverage=edge,inline-8bit-counters,pc-table,trace-cmp
WORK=Fuzz/corpus-work/$TARGET
mkdir -p "$WORK" "$REGRESSIONS"
cp -n "$SEEDS"/* "$WORK"/ 2>/dev/null || true
if [[ $TARGET != catalog ]]; then
    find Fixtures/adapters -name '*.safetensors' -size -200k -exec cp -n {} "$WORK"/ \; 2>/dev/null || true
fi
.build-fuzz/debug/"$PRODUCT" "$WORK" -max_total_time="$SECONDS_TO_RUN" -max_len=65536 -timeout=10 \
    -artifact_prefix="$REGRESSIONS"/ -print_final_stats=1
