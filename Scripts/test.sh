#!/usr/bin/env bash
# Builds and runs the whole test suite. Numeric kernels are slow unoptimised, so the tests run as a
# release build with testability enabled (still asserting everything a debug build would).
set -euo pipefail
cd "$(dirname "$0")/.."
./Scripts/install-deps.sh
swift build --build-tests -c release -Xswiftc -enable-testing
# The bf16 tests run oneDNN in-process: its OpenMP threads must not busy-wait between products (Engine's
# Parallel.restartWithPassiveOpenMPIfNeeded explains why; tlkit itself sets this for train and sample).
export OMP_WAIT_POLICY=PASSIVE
swift test --skip-build -c release -Xswiftc -enable-testing "$@"
