#!/bin/sh
# The whole test suite: installs what the tests need when it is missing,
# then runs every test, plain and under AddressSanitizer + UBSan.
set -eu
cd "$(dirname "$0")/.."
sh scripts/deps.sh make gcc libc6-dev pkg-config zlib1g-dev python3 python3-numpy python3-torch \
    dataset-fashion-mnist
make test
make test SAN=1
