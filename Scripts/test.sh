#!/usr/bin/env bash
# Builds and runs the whole test suite. Numeric kernels are slow unoptimised, so the tests run as a
# release build with testability enabled (still asserting everything a debug build would).
set -euo pipefail
cd "$(dirname "$0")/.."
./Scripts/install-deps.sh
swift build --build-tests -c release -Xswiftc -enable-testing
swift test --skip-build -c release -Xswiftc -enable-testing "$@"
