#!/bin/sh
# make bench: the same workloads in nabla and in PyTorch, in the same run,
# alternating, REPS times each (default 3), medians; one table of rates and
# ratios, and peak resident memory per workload. A benchmark, not a test: it
# never fails on speed.
#   PYTHON=...        the Python with torch (default Debian's /usr/bin/python3)
#   REPS=N BENCH_SECONDS=S THREADS=N
set -u
BUILD=${BUILD:-build}
PYTHON=${PYTHON:-/usr/bin/python3}
REPS=${REPS:-3}
S=${BENCH_SECONDS:-2}
T=${THREADS:-$(nproc)}
bench=$BUILD/bench
# PyTorch at its best on this kind of machine: OpenBLAS told the CPU's real
# kernel family where it has AVX-512 (Debian's 0.3.21 does not recognise
# recent models), torch's threads for the ops and one OpenBLAS thread (two
# would oversubscribe the cores)
if grep -q avx512f /proc/cpuinfo 2>/dev/null; then coretype=SkylakeX; else coretype=${OPENBLAS_CORETYPE:-}; fi
torch_env="OPENBLAS_CORETYPE=$coretype OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=$T"
have_torch=1
$PYTHON -c "import torch" 2>/dev/null || { echo "bench: $PYTHON cannot import torch: nabla only"; have_torch=0; }
tv=$([ $have_torch = 1 ] && $PYTHON -c "import torch; print(torch.__version__)")

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p"; }

tmp=$(mktemp -d /tmp/nabla-bench.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) CPUs; nabla threads $T; PyTorch ${tv:-none} ($T torch threads, 1 OpenBLAS thread, OPENBLAS_CORETYPE=${coretype:-unset}); medians of $REPS runs of ${S}s"
printf '%-24s %14s %14s %8s %12s %12s\n' workload nabla PyTorch ratio "nabla MB" "PyTorch MB"
# round-robin: every repetition runs every workload once, nabla then PyTorch,
# so that a slow spell of the machine (minutes of CPU steal on a shared
# host) costs each workload one repetition instead of all of one's
workloads="mlp64 mlp256 cnn64 xor"
for w in $workloads; do : > "$tmp/n.$w"; : > "$tmp/t.$w"; done
r=0
while [ $r -lt "$REPS" ]; do
    for w in $workloads; do
        "$bench" $w --threads "$T" --seconds "$S" >> "$tmp/n.$w" || echo "rate=nan rss_kb=0" >> "$tmp/n.$w"
        if [ $have_torch = 1 ]; then
            env $torch_env $PYTHON bench/torch_bench.py $w --threads "$T" --seconds "$S" >> "$tmp/t.$w" ||
                echo "rate=nan rss_kb=0" >> "$tmp/t.$w"
        fi
    done
    r=$((r + 1))
done
for w in $workloads; do
    nr=$(field rate < "$tmp/n.$w" | median); nm=$(field rss_kb < "$tmp/n.$w" | median)
    tr=$(field rate < "$tmp/t.$w" | median); tm=$(field rss_kb < "$tmp/t.$w" | median)
    case $w in xor) unit="steps/s" ;; *) unit="samples/s" ;; esac
    awk -v w="$w ($unit)" -v a="$nr" -v b="$tr" -v am="$nm" -v bm="$tm" 'BEGIN {
        printf "%-24s %14.0f %14s %8s %12.1f %12s\n", w, a, (b == "nan" ? "-" : sprintf("%.0f", b)),
            (b == "nan" || b == 0 ? "-" : sprintf("%.2fx", a / b)), am / 1024, (bm == "nan" ? "-" : sprintf("%.1f", bm / 1024)) }'
done
for n in 256 512 1024 2048; do
    : > "$tmp/n"; : > "$tmp/t"
    r=0
    while [ $r -lt "$REPS" ]; do
        "$bench" gemm $n --threads "$T" --seconds 1 >> "$tmp/n"
        env OPENBLAS_CORETYPE=$coretype "$bench" gemm $n --threads "$T" --seconds 1 --openblas >> "$tmp/t" 2>/dev/null || echo "rate=nan" >> "$tmp/t"
        r=$((r + 1))
    done
    nr=$(field rate < "$tmp/n" | median); tr=$(field rate < "$tmp/t" | median)
    awk -v w="sgemm $n (GFLOP/s)" -v a="$nr" -v b="$tr" 'BEGIN {
        printf "%-24s %14.1f %14s %8s   (against OpenBLAS)\n", w, a, (b == "nan" ? "-" : sprintf("%.1f", b)),
            (b == "nan" || b == 0 ? "-" : sprintf("%.2fx", a / b)) }'
done
