#!/bin/sh
# The nabla binary: version, help, usage errors and their exit codes.
set -u
BUILD=${BUILD:-build}
nabla=$BUILD/nabla
fail=0
expect() { # expect WANT_STATUS PATTERN ARGS...: runs nabla ARGS, checks status and output
    want=$1 pat=$2; shift 2
    out=$("$nabla" "$@" 2>&1); st=$?
    if [ "$st" != "$want" ]; then echo "test_cli: 'nabla $*' exited $st, expected $want"; fail=1; fi
    if ! printf '%s' "$out" | grep -q -- "$pat"; then echo "test_cli: 'nabla $*' printed '$out', expected '$pat'"; fail=1; fi
}
expect 0 "^nabla [0-9]" version
expect 0 "^nabla [0-9]" --version
expect 0 "usage: nabla" help
expect 2 "usage: nabla"
expect 2 "unknown command 'frobnicate'" frobnicate
exit $fail
