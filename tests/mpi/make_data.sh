#!/bin/sh
# make_data.sh DIR TRAIN TEST: a small image-classification set of realistic
# shape for the data-parallel tests and benchmark, and prints the nabla
# options that load it.
# - with Debian's dataset-fashion-mnist: the first TRAIN training and TEST
#   test images of Fashion-MNIST, as IDX files in DIR (1 x 28 x 28, 10 classes);
# - without it: the same shapes generated (a class-dependent band of bright
#   pixels plus noise, from a fixed LCG) as DIR/train.csv and DIR/test.csv.
set -eu
dir=$1 ntrain=$2 ntest=$3
fashion=${FASHION_DIR:-/usr/share/datasets/fashion-mnist}
mkdir -p "$dir"
be32() { # 4 bytes, big-endian, as IDX headers want
    printf "\\$(printf %03o $(($1 >> 24 & 255)))\\$(printf %03o $(($1 >> 16 & 255)))"
    printf "\\$(printf %03o $(($1 >> 8 & 255)))\\$(printf %03o $(($1 & 255)))"
}
if [ -r "$fashion/train-images-idx3-ubyte.gz" ] && [ -r "$fashion/t10k-images-idx3-ubyte.gz" ]; then
    for split in train:"$ntrain" t10k:"$ntest"; do
        name=${split%%:*} n=${split#*:}
        { printf '\000\000\010\003'; be32 "$n"; be32 28; be32 28
          gzip -dc "$fashion/$name-images-idx3-ubyte.gz" | tail -c +17 | head -c $((n * 784)); } > "$dir/$name-images-idx3-ubyte"
        { printf '\000\000\010\001'; be32 "$n"
          gzip -dc "$fashion/$name-labels-idx1-ubyte.gz" | tail -c +9 | head -c "$n"; } > "$dir/$name-labels-idx1-ubyte"
    done
    echo "--data $dir"
else
    for split in train:"$ntrain":1 test:"$ntest":2; do
        name=${split%%:*} rest=${split#*:}; n=${rest%%:*} seed=${rest#*:}
        awk -v n="$n" -v s="$seed" 'BEGIN {
            for (i = 0; i < n; i++) {
                s = (s * 1103515245 + 12345) % 2147483648; c = int(s / 65536) % 10
                line = ""
                for (p = 0; p < 784; p++) {
                    s = (s * 1103515245 + 12345) % 2147483648
                    v = int(s / 65536) % 192
                    if (int(p / 28) >= 2 * c + 3 && int(p / 28) < 2 * c + 8) v += 48
                    line = line v ","
                }
                print line c
            }
        }' > "$dir/$name.csv"
    done
    echo "--data $dir/train.csv --test $dir/test.csv"
fi
