#!/bin/sh
# Data-parallel training on this machine: samples/s of one process and of two
# MPI ranks (docs/distributed.md), for the MLP and the CNN example, medians
# of REPS runs (default 3). Run by `make bench` when MPI is installed; alone:
#   sh bench/mpi.sh            (builds build-mpi with make MPI=1 if needed)
# Columns: one process with one kernel thread and with one per CPU, two ranks
# with one thread each (the same cores), the same with gradient buckets
# overlapping backward (--mpi-bucket-kb 256), and the efficiency of two ranks
# against twice one single-threaded process. Bytes per step per rank are what
# a ring allreduce moves: 4 x parameters x 2(n-1)/n. A benchmark: it never
# fails on speed.
set -u
REPS=${REPS:-3}
MBUILD=${MBUILD:-build-mpi}
command -v mpirun >/dev/null 2>&1 || { echo "bench/mpi.sh: no mpirun (apt-get install libopenmpi-dev openmpi-bin)"; exit 0; }
MAKEFLAGS= ${MAKE:-make} -s MPI=1 BUILD="$MBUILD" all >/dev/null || { echo "bench/mpi.sh: make MPI=1 failed"; exit 1; }
nabla=$MBUILD/nabla
tmp=$(mktemp -d /tmp/nabla-bench-mpi.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
export OMPI_MCA_btl_vader_single_copy_mechanism=none
mpirun="mpirun --oversubscribe --allow-run-as-root --bind-to none"
data=$(sh tests/mpi/make_data.sh "$tmp/data" 8192 16) || exit 1
cpus=$(nproc)

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
rates() { grep -o '[0-9.]* samples/s' | grep -o '^[0-9.]*'; }   # one per epoch line

echo "data-parallel training, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $cpus CPUs; $(mpirun --version 2>/dev/null | head -n 1)"
case $data in *.csv*) what="a generated set (no Fashion-MNIST here)" ;; *) what="Fashion-MNIST" ;; esac
echo "$what, 8192 samples of 1x28x28, global batch 64, Adam; samples/s, medians of $REPS runs"
printf '%-6s %10s %12s %12s %12s %12s %8s %14s\n' model params "1 proc 1 thr" "1 proc ${cpus} thr" "2 ranks" "2r buckets" "effic." "bytes/step/rank"
for net in mlp cnn; do
    case $net in mlp) epochs=4 ;; *) epochs=1 ;; esac
    run="$nabla train examples/fashion_$net.nn $data --epochs $epochs --batch 64 --seed 1"
    : > "$tmp/a"; : > "$tmp/b"; : > "$tmp/c"; : > "$tmp/d"
    r=0
    while [ $r -lt "$REPS" ]; do
        $run --threads 1 2>&1 | grep '^epoch' | rates >> "$tmp/a"
        $run --threads 0 2>&1 | grep '^epoch' | rates >> "$tmp/b"
        $mpirun -np 2 $run --threads 1 2>&1 | grep '^epoch' | rates >> "$tmp/c"
        $mpirun -np 2 $run --threads 1 --mpi-bucket-kb 256 2>&1 | grep '^epoch' | rates >> "$tmp/d"
        r=$((r + 1))
    done
    params=$("$nabla" info examples/fashion_$net.nn | sed -n 's/^total parameters: \([0-9]*\).*/\1/p')
    a=$(median < "$tmp/a") b=$(median < "$tmp/b") c=$(median < "$tmp/c") d=$(median < "$tmp/d")
    awk -v m="$net" -v p="$params" -v a="$a" -v b="$b" -v c="$c" -v d="$d" 'BEGIN {
        printf "%-6s %10d %12.0f %12.0f %12.0f %12.0f %7.0f%% %14.0f\n", m, p, a, b, c, d, 100 * c / (2 * a), 4 * p * 2 * (2 - 1) / 2 }'
done
