#!/bin/sh
# The main job: build nabla, then train a network on Fashion-MNIST (Debian's
# dataset-fashion-mnist, installed when missing) and print its test accuracy.
#   sh scripts/train-fashion.sh          the MLP (about 20 s on one core)
#   sh scripts/train-fashion.sh cnn      the convolutional network
set -eu
cd "$(dirname "$0")/.."
model=${1:-mlp}
sh scripts/deps.sh make gcc libc6-dev zlib1g-dev dataset-fashion-mnist
make -s
exec build/nabla train "examples/fashion_$model.nn" --data fashion-mnist --epochs 10 --schedule cosine \
    --out "fashion_$model.safetensors"
