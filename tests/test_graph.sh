#!/bin/sh
# `nabla graph`: DOT to stdout and to a file (every layer's op, parameters,
# edges; Graphviz parses it when installed), .svg through Graphviz (well-
# formed XML), --step values and gradients from a spec and a checkpoint,
# and clear errors: no Graphviz, a bad extension, usage.
set -u
BUILD=${BUILD:-build}
PYTHON=${PYTHON:-python3}
nabla=$BUILD/nabla
fail=0
tmp=$(mktemp -d /tmp/nabla-graph.XXXXXX) || exit 1
trap 'rm -rf "$tmp"' EXIT

expect() { # expect WANT_STATUS PATTERN ARGS...: runs nabla ARGS, checks status and output
    want=$1 pat=$2; shift 2
    out=$("$nabla" "$@" 2>&1); st=$?
    if [ "$st" != "$want" ]; then echo "test_graph: 'nabla $*' exited $st, expected $want: $out"; fail=1; fi
    if ! printf '%s' "$out" | grep -q -- "$pat"; then echo "test_graph: 'nabla $*' printed '$out', expected '$pat'"; fail=1; fi
}

expect 0 "^digraph nabla {" graph examples/spiral.nn
expect 0 "4.weight" graph examples/spiral.nn
expect 0 "n11 -> n13" graph examples/spiral.nn
expect 0 "\[8, 64\]" graph examples/spiral.nn --batch 8
expect 0 "conv2d" graph examples/fashion_cnn.nn
expect 2 "usage: nabla graph" graph
expect 2 "expected a whole number" graph examples/spiral.nn --batch 0
expect 1 "must end in .dot, .gv, .svg" graph examples/spiral.nn -o "$tmp/g.txt"
expect 1 "nosuch.nn" graph nosuch.nn -o "$tmp/g.dot"

# a file, -o and --out alike; Graphviz reads it
"$nabla" graph examples/spiral.nn -o "$tmp/g.dot" && "$nabla" graph examples/spiral.nn --out "$tmp/g2.dot" ||
    { echo "test_graph: writing .dot failed"; fail=1; }
cmp -s "$tmp/g.dot" "$tmp/g2.dot" || { echo "test_graph: -o and --out differ"; fail=1; }
[ "$(grep -c ' -> ' "$tmp/g.dot")" = 13 ] || { echo "test_graph: expected 13 edges in $tmp/g.dot"; fail=1; }

# one step on a checkpoint: values and gradients on every box
"$nabla" train examples/xor.nn --data xor --epochs 1 --quiet --out "$tmp/xor.safetensors" >/dev/null || fail=1
expect 0 "grad norm" graph "$tmp/xor.safetensors" --step --batch 4
expect 0 "mean .* std " graph examples/spiral.nn --step

if command -v dot >/dev/null 2>&1; then
    dot -Tsvg "$tmp/g.dot" -o "$tmp/from-dot.svg" || { echo "test_graph: dot cannot read the DOT file"; fail=1; }
    "$nabla" graph examples/fashion_cnn.nn --step --batch 2 -o "$tmp/cnn.svg" || { echo "test_graph: .svg failed"; fail=1; }
    [ ! -e "$tmp/cnn.svg.tmp" ] || { echo "test_graph: the temporary file was left behind"; fail=1; }
    if command -v "$PYTHON" >/dev/null 2>&1; then
        "$PYTHON" -c 'import sys, xml.etree.ElementTree as E
r = E.parse(sys.argv[1]).getroot()
assert r.tag.endswith("svg"), r.tag
texts = " ".join(t.text or "" for t in r.iter() if t.tag.endswith("text"))
assert "conv2d" in texts and "grad norm" in texts, texts[:200]' "$tmp/cnn.svg" ||
            { echo "test_graph: $tmp/cnn.svg is not a well-formed SVG of the network"; fail=1; }
    fi
fi
# without Graphviz: a clear error, and no file
PATH=/nonexistent "$nabla" graph examples/spiral.nn -o "$tmp/none.svg" 2> "$tmp/err.txt"; st=$?
[ "$st" = 1 ] && grep -q "install graphviz" "$tmp/err.txt" && [ ! -e "$tmp/none.svg" ] ||
    { echo "test_graph: without dot: status $st, $(cat "$tmp/err.txt")"; fail=1; }
exit $fail
