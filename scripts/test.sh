#!/bin/sh
# The whole test suite: installs what the tests need when it is missing,
# fuzzes every parser (FUZZ_SECONDS each, 60 by default; 0 skips), then runs
# every test plain and under AddressSanitizer + UBSan. The last line is the
# sanitizer run's "N passed, M failed".
set -eu
cd "$(dirname "$0")/.."
sh scripts/deps.sh make gcc libc6-dev pkg-config zlib1g-dev python3 python3-numpy python3-torch \
    dataset-fashion-mnist clang libclang-rt-dev chromium graphviz valgrind libopenmpi-dev openmpi-bin
if [ "${FUZZ_SECONDS:-60}" != 0 ]; then make fuzz FUZZ_SECONDS="${FUZZ_SECONDS:-60}"; fi
make test
make test SAN=1
