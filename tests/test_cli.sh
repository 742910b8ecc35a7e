#!/bin/sh
# The nabla command: version, help, usage errors and exit codes; train, eval,
# predict and info on small data; a resumed run equal, byte for byte, to an
# uninterrupted one.
set -u
BUILD=${BUILD:-build}
nabla=$BUILD/nabla
fail=0
tmp=$(mktemp -d /tmp/nabla-cli.XXXXXX) || exit 1
trap 'rm -rf "$tmp"' EXIT

expect() { # expect WANT_STATUS PATTERN ARGS...: runs nabla ARGS, checks status and output
    want=$1 pat=$2; shift 2
    out=$("$nabla" "$@" 2>&1); st=$?
    if [ "$st" != "$want" ]; then echo "test_cli: 'nabla $*' exited $st, expected $want: $out"; fail=1; fi
    if ! printf '%s' "$out" | grep -q -- "$pat"; then echo "test_cli: 'nabla $*' printed '$out', expected '$pat'"; fail=1; fi
}

expect 0 "^nabla [0-9]" version
expect 0 "^nabla [0-9]" --version
expect 0 "usage: nabla" help
expect 2 "usage: nabla"
expect 2 "unknown command 'frobnicate'" frobnicate

# usage errors exit 2
expect 2 "usage: nabla train" train examples/xor.nn
expect 2 "unknown option '--epoch'" train examples/xor.nn --data xor --epoch 3
expect 2 "needs a value" train examples/xor.nn --data
expect 2 "expected a whole number" train examples/xor.nn --data xor --epochs many
expect 2 "usage: nabla eval" eval
# bad input exits 1 with one line naming what and where
expect 1 "nosuch.nn" train nosuch.nn --data xor
printf 'input 2\nlinear 4\nrelu\nconv2d 3 kernel=3\nloss softmax_cross_entropy\n' > "$tmp/bad.nn"
expect 1 "bad.nn:4: 'conv2d 3 kernel=3'" train "$tmp/bad.nn" --data xor
expect 1 "unknown optimizer 'adamax'" train examples/xor.nn --data xor --optimizer adamax
expect 1 "model's input is \[2\]" train examples/xor.nn --data sine
printf 'a,b,label\n1,2,0\n3,x,1\n' > "$tmp/bad.csv"
expect 1 "bad.csv:3: column 2" train examples/xor.nn --data "$tmp/bad.csv"
expect 1 "No such file" eval "$tmp/none.safetensors" --data xor
n=$("$nabla" train examples/xor.nn --data nosuchdir/ 2>&1 | wc -l)
[ "$n" = 1 ] || { echo "test_cli: a bad --data gave $n lines, expected 1"; fail=1; }

# train, then look at the checkpoint every way
expect 0 "test accuracy" train examples/xor.nn --data xor --epochs 30 --optimizer momentum --lr 0.1 \
    --out "$tmp/xor.safetensors" --log "$tmp/xor.csv" --quiet
acc=$("$nabla" train examples/xor.nn --data xor --epochs 30 --optimizer momentum --lr 0.1 --quiet | sed -n 's/^test accuracy \([0-9.]*\).*/\1/p')
awk -v a="$acc" 'BEGIN { exit !(a >= 0.95) }' || { echo "test_cli: xor test accuracy '$acc' below 0.95"; fail=1; }
[ "$(wc -l < "$tmp/xor.csv")" = 31 ] || { echo "test_cli: the metrics log should have a header and 30 rows"; fail=1; }
head -n 1 "$tmp/xor.csv" | grep -q '^epoch,train_loss,train_acc' || { echo "test_cli: bad log header"; fail=1; }
expect 0 "confusion matrix" eval "$tmp/xor.safetensors" --data xor
expect 0 "^accuracy [01]\.[0-9]" eval "$tmp/xor.safetensors" --data xor
expect 0 "total parameters: 42" info "$tmp/xor.safetensors"
expect 0 "linear" info examples/fashion_cnn.nn
out=$("$nabla" predict "$tmp/xor.safetensors" xor --limit 5)
[ "$(printf '%s\n' "$out" | wc -l)" = 6 ] || { echo "test_cli: predict --limit 5 printed: $out"; fail=1; }
printf '%s\n' "$out" | sed -n 2p | grep -Eq '^0,[01],[01],0\.[0-9]{4} [01]\.[0-9]{4}$' || { echo "test_cli: predict line: $out"; fail=1; }

# output that cannot be written is an error, not a silent success
if [ -w /dev/full ]; then
    "$nabla" predict "$tmp/xor.safetensors" xor > /dev/full 2>/dev/null && { echo "test_cli: predict into a full disk exited 0"; fail=1; }
fi
# an IDX directory without a test split trains without a test set
mkdir "$tmp/idx"
/usr/bin/python3 - "$tmp/idx" <<'PY' 2>/dev/null || printf '' > /dev/null
import struct, sys, os
d = sys.argv[1]
n = 20
open(os.path.join(d, "train-images-idx3-ubyte"), "wb").write(struct.pack(">IIII", 0x803, n, 4, 4) + bytes((i * 7) % 256 for i in range(n * 16)))
open(os.path.join(d, "train-labels-idx1-ubyte"), "wb").write(struct.pack(">II", 0x801, n) + bytes(i % 3 for i in range(n)))
PY
if [ -f "$tmp/idx/train-images-idx3-ubyte" ]; then
    printf 'input 1 4 4\nflatten\nlinear 10\nloss softmax_cross_entropy\n' > "$tmp/idx.nn"
    expect 0 "epoch 2/2" train "$tmp/idx.nn" --data "$tmp/idx" --epochs 2
fi

# on a terminal, training shows a live progress bar (script gives it a pty)
if command -v script >/dev/null 2>&1; then
    script -qec "$nabla train examples/xor.nn --data xor --epochs 2" /dev/null > "$tmp/tty.txt" 2>&1
    grep -q "ETA" "$tmp/tty.txt" && grep -q "samples/s" "$tmp/tty.txt" && tr '\r' '\n' < "$tmp/tty.txt" | grep -q '^epoch 1/2 \[' ||
        { echo "test_cli: no progress bar on a terminal"; fail=1; }
    "$nabla" train examples/xor.nn --data xor --epochs 2 2> "$tmp/plain.txt" >/dev/null
    if grep -q "ETA" "$tmp/plain.txt"; then echo "test_cli: progress bar drawn without a terminal"; fail=1; fi
fi

# interrupted and resumed == uninterrupted, byte for byte (dropout and
# batchnorm in the spec; 100 samples in batches of 32 leave a short batch)
cat > "$tmp/r.nn" <<'EOF'
input 2
linear 16
batchnorm
relu
dropout 0.2
linear 3
loss softmax_cross_entropy
EOF
common="--data spiral --batch 32 --optimizer adam --lr 0.01 --seed 5 --quiet"
"$nabla" train "$tmp/r.nn" $common --epochs 5 --out "$tmp/full.safetensors" >/dev/null || fail=1
"$nabla" train "$tmp/r.nn" $common --epochs 2 --out "$tmp/part.safetensors" >/dev/null || fail=1
"$nabla" train "$tmp/r.nn" $common --epochs 5 --resume "$tmp/part.safetensors" --out "$tmp/resumed.safetensors" >/dev/null || fail=1
cmp -s "$tmp/full.safetensors" "$tmp/resumed.safetensors" || { echo "test_cli: resumed run differs from the uninterrupted one"; fail=1; }
printf 'input 2\nlinear 3\nloss softmax_cross_entropy\n' > "$tmp/other.nn"
expect 1 "another model spec" train "$tmp/other.nn" --data spiral --resume "$tmp/part.safetensors"

exit $fail
