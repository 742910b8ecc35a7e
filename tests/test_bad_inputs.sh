#!/bin/sh
# Bad input never crashes nabla: each case below must exit with the given
# status and print exactly one line on stderr containing the given words.
# Prints "test_bad_inputs: N cases" and fails naming every case that did not.
set -u
BUILD=${BUILD:-build}
nabla=$(pwd)/$BUILD/nabla
t=$(mktemp -d /tmp/nabla-bad.XXXXXX) || exit 1
trap 'rm -rf "$t"' EXIT
fail=0
cases=0

# case WANT_STATUS WORDS ARGS...
case_() {
    want=$1 words=$2; shift 2
    cases=$((cases + 1))
    "$nabla" "$@" > "$t/out" 2> "$t/err"
    st=$?
    lines=$(wc -l < "$t/err")
    if [ "$st" != "$want" ] || [ "$lines" != 1 ] || ! grep -qF -- "$words" "$t/err"; then
        echo "test_bad_inputs: 'nabla $*': exit $st (want $want), $lines stderr lines, expected '$words':"
        sed 's/^/    /' "$t/err" | head -n 5
        fail=1
    fi
}

# a u32 big-endian as printf octal escapes
be32() { printf "$(printf '\\%03o\\%03o\\%03o\\%03o' $(($1 >> 24 & 255)) $(($1 >> 16 & 255)) $(($1 >> 8 & 255)) $(($1 & 255)))"; }
# an IDX directory: images (n x 2 x 2) and labels, with optional damage
make_idx() { # make_idx DIR N_IMAGES N_LABELS MAGIC LABEL
    mkdir -p "$1"
    { be32 "$4"; be32 "$2"; be32 2; be32 2; i=0; while [ $i -lt $(($2 * 4)) ]; do printf '\001'; i=$((i + 1)); done; } > "$1/train-images-idx3-ubyte"
    { be32 2049; be32 "$3"; i=0; while [ $i -lt "$3" ]; do printf "$(printf '\\%03o' "$5")"; i=$((i + 1)); done; } > "$1/train-labels-idx1-ubyte"
}

printf 'input 2\nlinear 8\nrelu\nlinear 2\nloss softmax_cross_entropy\n' > "$t/ok.nn"
printf 'input 1 2 2\nflatten\nlinear 10\nloss softmax_cross_entropy\n' > "$t/img.nn"

# ---- model specs ----
case_ 1 "$t/none.nn: No such file" train "$t/none.nn" --data xor
mkdir "$t/dir.nn"; case_ 1 "dir.nn" train "$t/dir.nn" --data xor
: > "$t/empty.nn"; case_ 1 "empty model spec" train "$t/empty.nn" --data xor
printf 'input 2\nlinaer 8\nloss mse\n' > "$t/a.nn"; case_ 1 "a.nn:2: 'linaer 8': unknown layer" train "$t/a.nn" --data xor
printf 'input 2\nlinear eight\nloss mse\n' > "$t/b.nn"; case_ 1 "b.nn:2: 'linear eight': value 'eight' is not a number" train "$t/b.nn" --data xor
printf 'linear 8\nloss mse\n' > "$t/c.nn"; case_ 1 "c.nn:1" train "$t/c.nn" --data xor
printf 'input 2\nloss mse\nlinear 2\n' > "$t/d.nn"; case_ 1 "d.nn:3: 'linear 2': nothing can follow" train "$t/d.nn" --data xor
printf 'input 2\nlinear 2\nloss hinge\n' > "$t/e.nn"; case_ 1 "unknown loss 'hinge'" train "$t/e.nn" --data xor
printf 'input 2\nconv2d 4 kernel=3\nloss mse\n' > "$t/f.nn"; case_ 1 "f.nn:2: 'conv2d 4 kernel=3': conv2d needs input of shape" train "$t/f.nn" --data xor
printf 'input 2\nlinear 2 bais=0\nloss mse\n' > "$t/g.nn"; case_ 1 "unknown option 'bais'" train "$t/g.nn" --data xor
printf 'input 2\0\nlinear 2\nloss mse\n' > "$t/h.nn"; case_ 1 "NUL byte" train "$t/h.nn" --data xor
printf 'input 2\nlinear 2 # caf\351\nloss mse\n' > "$t/i.nn"; case_ 1 "i.nn:2: the line is not valid UTF-8" train "$t/i.nn" --data xor
printf 'input 1 8 8\nmaxpool 16\nloss mse\n' > "$t/j.nn"; case_ 1 "j.nn:2: 'maxpool 16'" train "$t/j.nn" --data xor

# ---- data ----
case_ 1 "$t/nodata" train "$t/ok.nn" --data "$t/nodata"
mkdir "$t/emptydir"; case_ 1 "emptydir" train "$t/ok.nn" --data "$t/emptydir"
make_idx "$t/idx-ok" 4 4 2051 1
head -c 30 "$t/idx-ok/train-images-idx3-ubyte" > "$t/trunc"; mkdir "$t/idx-trunc"
cp "$t/trunc" "$t/idx-trunc/train-images-idx3-ubyte"; cp "$t/idx-ok/train-labels-idx1-ubyte" "$t/idx-trunc/"
case_ 1 "train-images-idx3-ubyte" train "$t/img.nn" --data "$t/idx-trunc"
make_idx "$t/idx-magic" 4 4 2049 1; case_ 1 "bad magic" train "$t/img.nn" --data "$t/idx-magic"
make_idx "$t/idx-count" 4 3 2051 1; case_ 1 "idx-count" train "$t/img.nn" --data "$t/idx-count"
mkdir "$t/idx-huge"; { be32 2051; be32 4294967295; be32 65535; be32 65535; } > "$t/idx-huge/train-images-idx3-ubyte"
cp "$t/idx-ok/train-labels-idx1-ubyte" "$t/idx-huge/"; case_ 1 "train-images-idx3-ubyte" train "$t/img.nn" --data "$t/idx-huge"
make_idx "$t/idx-label" 4 4 2051 200; case_ 1 "201 classes but the model outputs 10" train "$t/img.nn" --data "$t/idx-label"
printf 'a,b,label\n1,nan,0\n' > "$t/nan.csv"; case_ 1 "nan.csv:2: column 2" train "$t/ok.nn" --data "$t/nan.csv"
: > "$t/empty.csv"; case_ 1 "empty.csv" train "$t/ok.nn" --data "$t/empty.csv"
printf 'a,b,label\n1,2,0\n1,2\n' > "$t/ragged.csv"; case_ 1 "ragged.csv:3" train "$t/ok.nn" --data "$t/ragged.csv"
printf 'a,b,label\n1,2,0\n3,abc,1\n' > "$t/text.csv"; case_ 1 "text.csv:3: column 2" train "$t/ok.nn" --data "$t/text.csv"
printf 'a,b,label\n1,2,0.5\n' > "$t/frac.csv"; case_ 1 "frac.csv:2" train "$t/ok.nn" --data "$t/frac.csv"
printf 'a,b,label\n1,2,-1\n' > "$t/neg.csv"; case_ 1 "neg.csv:2" train "$t/ok.nn" --data "$t/neg.csv"
printf 'a,b,label\n' > "$t/head.csv"; case_ 1 "head.csv" train "$t/ok.nn" --data "$t/head.csv"
printf 'input 3\nlinear 2\nloss softmax_cross_entropy\n' > "$t/three.nn"; case_ 1 "model's input is [3]" train "$t/three.nn" --data xor
printf 'input 1\nlinear 2\nloss softmax_cross_entropy\n' > "$t/one.nn"; case_ 1 "real-valued targets" train "$t/one.nn" --data sine

# ---- options ----
case_ 2 "--epochs 0" train "$t/ok.nn" --data xor --epochs 0
case_ 2 "--batch -1" train "$t/ok.nn" --data xor --batch -1
case_ 2 "--lr abc" train "$t/ok.nn" --data xor --lr abc
case_ 2 "unknown option '--learning-rate'" train "$t/ok.nn" --data xor --learning-rate 0.1
case_ 2 "'--data' needs a value" train "$t/ok.nn" --data
case_ 1 "unknown optimizer 'adamax'" train "$t/ok.nn" --data xor --optimizer adamax
case_ 1 "unknown schedule 'linear'" train "$t/ok.nn" --data xor --schedule linear
case_ 2 "--val-split 1.5" train "$t/ok.nn" --data xor --val-split 1.5
case_ 2 "usage: nabla train" train
case_ 2 "unknown command 'fit'" fit "$t/ok.nn"

# ---- checkpoints ----
"$nabla" train "$t/ok.nn" --data xor --epochs 1 --quiet --out "$t/good.safetensors" > /dev/null || fail=1
case_ 1 "$t/none.safetensors" eval "$t/none.safetensors" --data xor
printf 'this is not a checkpoint\n' > "$t/text.safetensors"; case_ 1 "text.safetensors" eval "$t/text.safetensors" --data xor
head -c 100 "$t/good.safetensors" > "$t/trunc.safetensors"; case_ 1 "trunc.safetensors" eval "$t/trunc.safetensors" --data xor
# a valid safetensors file with no spec in its metadata
printf '\020\000\000\000\000\000\000\000{}              ' > "$t/nospec.safetensors"
case_ 1 "not a nabla checkpoint" eval "$t/nospec.safetensors" --data xor
printf 'input 2\nlinear 3\nloss softmax_cross_entropy\n' > "$t/other.nn"
case_ 1 "another model spec" train "$t/other.nn" --data spiral --resume "$t/good.safetensors"
case_ 1 "would not continue exactly" train "$t/ok.nn" --data xor --resume "$t/good.safetensors" --seed 2
mkdir "$t/dir.safetensors"; case_ 1 "dir.safetensors" predict "$t/dir.safetensors" xor
case_ 1 "$t/none.nn" info "$t/none.nn"
case_ 1 "$t/no/such/dir/m.safetensors" train "$t/ok.nn" --data xor --epochs 1 --quiet --out "$t/no/such/dir/m.safetensors"
case_ 1 "$t/no/such/dir/log.csv" train "$t/ok.nn" --data xor --epochs 1 --quiet --log "$t/no/such/dir/log.csv"
case_ 1 "samples have 1 values, the model takes 2" predict "$t/good.safetensors" sine

echo "test_bad_inputs: $cases bad inputs, each one line and the right exit status"
exit $fail
